"""Gate: decide whether this model may ship, against fixed bounds and against the baseline.

`judge` is the one place the verdict is decided. The gate stage runs it on
every `dvc repro` and writes reports/gates.json and gates.md; the PR report and
`make run` only read that file. Gates come from params.yaml (the section for
the contract's task): absolute floors and ceilings on metrics, the most a
metric may move the wrong way against the baseline revision's committed
metrics, the largest share of drifted columns, and a passing validation.

Gates fail closed: a gate on a metric this run does not produce, a baseline
revision that does not exist, or a drift share that could not be computed
fails with the reason. Relative gates are left unjudged (and say why) only
when the baseline exists but has no committed metrics yet, or measured
another target.

    python -m pipeline.gate [--baseline REV] [--gates-from baseline] [--check] [--show]

`--check` exits 1 when a gate failed (what CI runs). `--gates-from baseline`
judges with the `gates:` section of params.yaml at the baseline revision, so
a pull request cannot lower its own bars; CI does that by default.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, run_main

if TYPE_CHECKING:
    from pipeline.params import GateParams

EXIT_GATE_FAILED = 1
IDENTITY_KEYS = ("task", "target", "classes", "positive")


@dataclass(frozen=True)
class GateResult:
    name: str
    rule: str
    value: float | bool | None
    baseline: float | None
    threshold: float | bool | None
    passed: bool | None  # None: not judged (no comparable baseline); never blocks
    reason: str | None = None


@dataclass(frozen=True)
class Baseline:
    """What the baseline revision offers the relative gates."""

    revision: str
    commit: str | None  # None: the revision does not exist here
    metrics: Mapping[str, float] | None = None  # None: nothing committed there
    identity: Mapping | None = None  # task.json there; None for baselines from before it existed


@dataclass(frozen=True)
class Verdict:
    passed: bool
    task: str
    gates: list[GateResult]
    baseline: dict  # revision, commit, status (compared, no metrics, not comparable, missing) and note
    gates_from: str
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {**asdict(self), "gates": [asdict(g) for g in self.gates]}


def baseline_status(baseline: Baseline, identity: Mapping) -> tuple[str, str]:
    """(status, note): may the relative gates compare with this baseline, and if not, why."""
    rev = baseline.revision
    if baseline.commit is None:
        return "missing", f"the baseline revision {rev!r} does not exist here (fetch it, or pass --baseline)"
    if baseline.metrics is None:
        return "no metrics", f"no baseline: {rev!r} has no committed metrics yet; only absolute gates decide"
    if baseline.identity is not None:
        changed = [key for key in IDENTITY_KEYS if baseline.identity.get(key) != identity.get(key)]
        if changed:
            what = "; ".join(
                f"{key} changed from {baseline.identity.get(key)!r} to {identity.get(key)!r}" for key in changed
            )
            return "not comparable", f"baseline not comparable: {what}"
    return "compared", f"baseline {rev!r} at {baseline.commit[:12]}"


def judge(
    metrics: Mapping[str, float],
    identity: Mapping,
    baseline: Baseline,
    drift_dataset: Mapping,
    validation_passed: bool,
    gates: GateParams,
    gates_from: str = "this branch",
) -> Verdict:
    """Every gate's verdict and the overall one; pure, so each rule is tested without files or git."""
    from pipeline.metrics import LOWER_IS_BETTER

    task = identity["task"]
    section = gates.for_task(task)
    status, note = baseline_status(baseline, identity)
    results: list[GateResult] = []
    if status == "missing":
        results.append(GateResult("baseline revision exists", "baseline", False, None, True, False, note))
    for metric, bound in section.metrics.items():
        value = metrics.get(metric)
        for rule, threshold in (("min", bound.min), ("max", bound.max)):
            if threshold is None:
                continue
            name = f"{metric} {'>=' if rule == 'min' else '<='} {threshold:g}"
            if value is None:
                results.append(GateResult(name, rule, None, None, threshold, False, f"this run has no {metric}"))
                continue
            passed = value >= threshold if rule == "min" else value <= threshold
            results.append(GateResult(name, rule, value, None, threshold, passed))
    for metric, limit in section.regressions.items():
        value = metrics.get(metric)
        allowed = limit.max_rise if metric in LOWER_IS_BETTER else limit.max_drop
        rule = "max_rise" if metric in LOWER_IS_BETTER else "max_drop"
        name = f"{metric} {'rises' if rule == 'max_rise' else 'drops'} at most {allowed:g} vs baseline"
        base = baseline.metrics.get(metric) if status == "compared" and baseline.metrics else None
        if value is None:
            results.append(GateResult(name, rule, None, base, allowed, False, f"this run has no {metric}"))
        elif status != "compared":
            results.append(GateResult(name, rule, value, None, allowed, None, note))
        elif base is None:
            results.append(GateResult(name, rule, value, None, allowed, None, f"the baseline has no {metric}"))
        else:
            worse = (value - base) if rule == "max_rise" else (base - value)
            results.append(GateResult(name, rule, value, base, allowed, worse <= allowed + 1e-12))
    share = drift_dataset.get("share")
    drift_name = f"drifted columns share <= {gates.max_drift_share:g}"
    if share is None:
        reason = drift_dataset.get("note") or "the drift share could not be computed"
        results.append(GateResult(drift_name, "max_drift_share", None, None, gates.max_drift_share, False, reason))
    else:
        ok = share <= gates.max_drift_share
        results.append(GateResult(drift_name, "max_drift_share", share, None, gates.max_drift_share, ok))
    if gates.require_validation:
        results.append(
            GateResult("input data passed validation", "validation", validation_passed, None, True, validation_passed)
        )
    baseline_info = {"revision": baseline.revision, "commit": baseline.commit, "status": status, "note": note}
    return Verdict(all_passed(results), task, results, baseline_info, gates_from)


def all_passed(results: Sequence[GateResult]) -> bool:
    return all(result.passed is not False for result in results)


def markdown_table(verdict: Mapping) -> str:
    """The gate table of a verdict (as gates.json holds it), for the terminal, the PR report and gates.md.

    Gate names are built from known metric names and numbers; reasons and revisions are escaped.
    """
    from pipeline.markdown import text

    lines = ["| gate | value | baseline | status |", "|---|---|---|---|"]
    for r in verdict["gates"]:
        mark = {True: "✅ pass", False: "❌ **FAIL**", None: "⚪ not judged"}[r["passed"]]
        reason = f" ({text(r['reason'])})" if r.get("reason") and r["passed"] is not True else ""
        lines.append(f"| {r['name']} | {_fmt(r['value'])} | {_fmt(r['baseline'])} | {mark}{reason} |")
    failed = [r["name"] for r in verdict["gates"] if r["passed"] is False]
    headline = "**All gates passed.**" if not failed else f"**{len(failed)} gate(s) failed:** " + "; ".join(failed)
    source = f"Gates from {text(verdict['gates_from'])}; {text(verdict['baseline']['note'])}."
    return f"{headline}\n\n{source}\n\n" + "\n".join(lines) + "\n"


def _fmt(value: float | bool | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4f}"


def read_baseline(rev: str, eval_dir: str) -> Baseline:
    """The committed metrics and task at a revision; malformed files there are one-line errors."""
    from pipeline.baseline import read_committed_json, resolve_revision

    commit = resolve_revision(rev)
    if commit is None:
        return Baseline(rev, None)
    metrics = read_committed_json(commit, f"{eval_dir}/metrics.json")
    if metrics is not None:
        metrics = check_metrics(metrics, f"{eval_dir}/metrics.json at {rev}")
    return Baseline(rev, commit, metrics, read_committed_json(commit, f"{eval_dir}/task.json"))


def check_metrics(metrics: Mapping, source: str) -> Mapping[str, float]:
    """Metrics as DVCLive writes them: names to numbers; anything else is a one-line error."""
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PipelineError(f"{source}: metric {name!r} is {value!r}, not a number; run `dvc repro -f`")
    return metrics


def baseline_gates(commit: str | None, rev: str) -> GateParams:
    """The `gates:` section of params.yaml at the baseline commit, validated as this code reads it."""
    from pipeline.baseline import read_committed
    from pipeline.errors import ConfigError
    from pipeline.params import parse_gates, read_yaml

    if commit is None:
        raise ConfigError(f"--gates-from baseline: the baseline revision {rev!r} does not exist here")
    text = read_committed(commit, "params.yaml")
    raw = read_yaml(text, f"params.yaml at {rev}") if text is not None else None
    if not isinstance(raw, dict) or "gates" not in raw:
        raise ConfigError(f"--gates-from baseline: params.yaml at {rev!r} has no gates: section")
    return parse_gates(raw["gates"], f"params.yaml at {rev} (gates:)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.gate", description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="git revision to compare against (default: gates.baseline in params)")
    parser.add_argument(
        "--gates-from",
        choices=("branch", "baseline"),
        default="branch",
        help="judge with this branch's gates: section (default) or the baseline revision's",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when any gate failed")
    parser.add_argument("--show", action="store_true", help="print the last verdict (reports/gates.md) and exit")
    args = parser.parse_args(argv)
    from pipeline.baseline import check_revision
    from pipeline.files import read_json, write_json, write_text
    from pipeline.params import load_params

    params = load_params()
    if args.show:
        verdict = read_json(params.paths.gates_report)
        print(markdown_table(verdict), file=sys.stderr)
        return 0
    rev = check_revision(args.baseline or params.gates.baseline)
    eval_dir = params.paths.eval_dir
    baseline = read_baseline(rev, eval_dir)
    gates, gates_from = params.gates, "this branch"
    if args.gates_from == "baseline":
        gates, gates_from = baseline_gates(baseline.commit, rev), f"the baseline {rev}"
    verdict = judge(
        check_metrics(read_json(f"{eval_dir}/metrics.json"), f"{eval_dir}/metrics.json"),
        read_json(f"{eval_dir}/task.json"),
        baseline,
        _dataset(read_json(params.paths.drift_report), params.paths.drift_report),
        _passed(read_json(params.paths.validation_report), params.paths.validation_report),
        gates,
        gates_from,
    )
    write_json(verdict.to_json(), params.paths.gates_report)
    table = markdown_table(verdict.to_json())
    write_text(table, params.paths.gates_summary)
    print(table, file=sys.stdout if args.check else sys.stderr)
    return EXIT_GATE_FAILED if args.check and not verdict.passed else 0


def _dataset(drift: Mapping, path: str) -> Mapping:
    dataset = drift.get("dataset")
    if not isinstance(dataset, Mapping) or "share" not in dataset:
        raise PipelineError(f"{path}: has no dataset.share; run `dvc repro -f` to write it again")
    return dataset


def _passed(validation: Mapping, path: str) -> bool:
    passed = validation.get("passed")
    if not isinstance(passed, bool):
        raise PipelineError(f"{path}: has no passed: true/false; run `dvc repro -f` to write it again")
    return passed


if __name__ == "__main__":
    raise SystemExit(run_main(main))
