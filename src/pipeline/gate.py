"""Gate: decide whether this model may ship, against fixed bounds and against the baseline.

Gates come from params.yaml: absolute floors and ceilings on metrics, the most
a metric may regress against the baseline revision's committed metrics, the
largest allowed share of drifted columns, and a passing validation. `dvc repro`
records the verdict without failing, so the reports are always produced;
`python -m pipeline.gate --check` prints the table and exits 1 when any gate
failed, which is what CI runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline.baseline import read_committed_json, resolve_revision
from pipeline.errors import run_main
from pipeline.files import read_json, write_json
from pipeline.params import GateParams, load_params

EXIT_GATE_FAILED = 1


@dataclass(frozen=True)
class GateResult:
    name: str
    rule: str
    value: float | bool | None
    baseline: float | None
    threshold: float | bool
    passed: bool | None  # None: could not be judged (no baseline), does not block


def evaluate_gates(
    metrics: dict[str, float],
    baseline: dict[str, float] | None,
    drift_share: float,
    validation_passed: bool,
    params: GateParams,
) -> list[GateResult]:
    """Every gate's verdict; pure, so each rule is tested without files or git."""
    results = []
    for metric, bound in params.metrics.items():
        value = metrics.get(metric)
        for rule, threshold, ok in (("min", bound.min, lambda v, t: v >= t), ("max", bound.max, lambda v, t: v <= t)):
            if threshold is not None:
                passed = value is not None and ok(value, threshold)
                symbol = ">=" if rule == "min" else "<="
                results.append(GateResult(f"{metric} {symbol} {threshold:g}", rule, value, None, threshold, passed))
    for metric, regression in params.regressions.items():
        value = metrics.get(metric)
        base = baseline.get(metric) if baseline else None
        for rule, allowed, sign in (("max_drop", regression.max_drop, 1), ("max_rise", regression.max_rise, -1)):
            if allowed is None:
                continue
            name = f"{metric} {'drops' if sign > 0 else 'rises'} at most {allowed:g} vs baseline"
            if base is None:
                results.append(GateResult(name, rule, value, None, allowed, None))
                continue
            passed = value is not None and sign * (base - value) <= allowed + 1e-12
            results.append(GateResult(name, rule, value, base, allowed, passed))
    share_ok = drift_share <= params.max_drift_share
    results.append(
        GateResult(
            f"drifted columns share <= {params.max_drift_share:g}",
            "max_drift_share",
            drift_share,
            None,
            params.max_drift_share,
            share_ok,
        )
    )
    if params.require_validation:
        results.append(
            GateResult("input data passed validation", "validation", validation_passed, None, True, validation_passed)
        )
    return results


def all_passed(results: Sequence[GateResult]) -> bool:
    return all(result.passed is not False for result in results)


def markdown_table(results: Sequence[GateResult]) -> str:
    """The gate table used by the terminal, the PR report and reports/gates.md."""
    lines = ["| gate | value | baseline | status |", "|---|---|---|---|"]
    for r in results:
        mark = {True: "✅ pass", False: "❌ **FAIL**", None: "⚪ no baseline"}[r.passed]
        lines.append(f"| {r.name} | {_fmt(r.value)} | {_fmt(r.baseline)} | {mark} |")
    failed = [r.name for r in results if r.passed is False]
    verdict = "**All gates passed.**" if not failed else f"**{len(failed)} gate(s) failed:** " + "; ".join(failed)
    return verdict + "\n\n" + "\n".join(lines) + "\n"


def _fmt(value: float | bool | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.gate", description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="git revision to compare against (default: gates.baseline in params)")
    parser.add_argument("--check", action="store_true", help="print the table and exit 1 when any gate failed")
    args = parser.parse_args(argv)
    params = load_params()
    metrics_path = f"{params.paths.eval_dir}/metrics.json"
    rev = args.baseline or params.gates.baseline
    commit = resolve_revision(rev)
    baseline = read_committed_json(commit, metrics_path)
    results = evaluate_gates(
        read_json(metrics_path),
        baseline,
        read_json(params.paths.drift_report)["dataset"]["share"],
        read_json(params.paths.validation_report)["passed"],
        params.gates,
    )
    write_json(
        {"baseline": rev if baseline else None, "passed": all_passed(results), "gates": [asdict(r) for r in results]},
        params.paths.gates_report,
    )
    table = markdown_table(results)
    Path(params.paths.gates_summary).write_text(table, encoding="utf-8")
    if baseline is None:
        missing = "does not exist here" if commit is None else f"has no committed {metrics_path}"
        table += f"\nNo baseline: {rev!r} {missing}; only absolute gates decide.\n"
    print(table, file=sys.stdout if args.check else sys.stderr)
    return EXIT_GATE_FAILED if args.check and not all_passed(results) else 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
