"""Report: the PR review in one markdown file, from this workspace's results and a git baseline.

    python -m pipeline.report --baseline main -o report.md [--plots-dir DIR] [--embed-plots]

Pure Python, so it runs locally exactly as in CI, where the workflow posts it
with `cml comment update`. It reads only committed-style results (metrics,
drift, validation, params, dvc.lock) here and at the baseline revision, so it
needs neither the data nor the model. Without `--embed-plots` the PNGs stay
in DIR (CI uploads them as workflow artifacts) and the report links to the
run; images leave the repository only when a user opts in.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from pipeline.baseline import list_committed, read_committed, read_committed_json, resolve_revision
from pipeline.drift_render import markdown_summary
from pipeline.errors import run_main
from pipeline.files import read_json
from pipeline.gate import all_passed, evaluate_gates, markdown_table
from pipeline.metrics import LOWER_IS_BETTER
from pipeline.params import Params, load_params
from pipeline.report_plots import render_plots

TITLE = "Ratchet model report"


def metrics_table(current: Mapping[str, float], baseline: Mapping[str, float] | None) -> str:
    """Baseline vs this branch with deltas; a metric only on one side is marked added or removed."""
    lines = ["| metric | baseline | this branch | change |", "|---|---|---|---|"]
    for name in sorted(set(current) | set(baseline or {})):
        new, old = current.get(name), (baseline or {}).get(name)
        if new is None:
            change = "removed"
        elif old is None:
            change = "new" if baseline is not None else "no baseline"
        else:
            change = _delta(name, new - old)
        lines.append(f"| {name} | {_fmt(old)} | {_fmt(new)} | {change} |")
    return "\n".join(lines)


def _delta(name: str, delta: float) -> str:
    if abs(delta) < 5e-5:
        return "no change"
    better = (delta < 0) if name in LOWER_IS_BETTER else (delta > 0)
    return f"{'▲' if delta > 0 else '▼'} {delta:+.4f} {'🟢' if better else '🔴'}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, object] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def changed_params(current: Mapping, baseline: Mapping | None) -> list[tuple[str, object, object]]:
    """(key, old, new) for every param that differs; a missing side is None."""
    if baseline is None:
        return []
    new, old = flatten(dict(current)), flatten(dict(baseline))
    return [(key, old.get(key), new.get(key)) for key in sorted(set(new) | set(old)) if old.get(key) != new.get(key)]


def params_section(changes: list[tuple[str, object, object]], has_baseline: bool) -> str:
    if not has_baseline:
        return "No baseline params to compare with."
    if not changes:
        return "No params changed."
    rows = [f"| `{key}` | {_show(old)} | {_show(new)} |" for key, old, new in changes]
    return "\n".join(["| param | baseline | this branch |", "|---|---|---|", *rows])


def _show(value: object) -> str:
    return "*(absent)*" if value is None else f"`{value}`"


def validation_section(validation: Mapping) -> str:
    verdict = "passed" if validation["passed"] else "**failed**"
    lines = [f"Validation {verdict}: {validation['rows_checked']} rows checked."]
    for file in validation["files"]:
        failures = len(file["failures"])
        lines.append(f"- `{file['path']}`: {file['rows']} rows, {failures} failing check(s)")
    return "\n".join(lines)


def provenance_section(lock: Mapping, params: Params, commit: str | None, base_commit: str | None) -> str:
    outputs = {
        out["path"]: out.get("md5", "")[:12] for stage in lock["stages"].values() for out in stage.get("outs", [])
    }
    tracked = [params.paths.raw_reference, params.paths.raw_current, params.paths.model]
    lines = [f"- commit `{(commit or 'uncommitted')[:12]}`, baseline `{(base_commit or 'none')[:12]}`"]
    lines += [f"- `{path}` md5 `{outputs[path]}`" for path in tracked if path in outputs]
    run_url = actions_run_url(os.environ)
    if run_url:
        lines.append(f"- [workflow run]({run_url}) (plots, drift report and this report are attached as artifacts)")
    return "\n".join(lines)


def actions_run_url(env: Mapping[str, str]) -> str | None:
    keys = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if not all(env.get(k) for k in keys):
        return None
    return f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"


def plots_section(written: Sequence[Path], out_file: Path, embed: bool) -> str:
    if not written:
        return "No plots."
    if embed:
        return "\n".join(f"![{p.stem}]({os.path.relpath(p, out_file.parent)})" for p in written)
    names = ", ".join(f"`{p.name}`" for p in written)
    where = "the workflow run's artifacts" if actions_run_url(os.environ) else f"`{written[0].parent}`"
    return f"Baseline and this branch, side by side: {names} in {where}."


def build_report(
    *,
    params: Params,
    metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, float] | None,
    baseline_params: Mapping | None,
    drift: Mapping,
    validation: Mapping,
    lock: Mapping,
    rev: str,
    commit: str | None,
    base_commit: str | None,
    plots: str,
) -> str:
    gates = evaluate_gates(
        dict(metrics), baseline_metrics, drift["dataset"]["share"], validation["passed"], params.gates
    )
    headline = "✅ **All quality gates passed.**" if all_passed(gates) else "❌ **Quality gates failed.**"
    if base_commit is None:
        note = f"No baseline: `{rev}` does not exist here; only absolute gates decide."
    elif baseline_metrics is None:
        note = f"No baseline: `{rev}` has no committed metrics yet; only absolute gates decide."
    elif base_commit == commit:
        note = f"The baseline `{rev}` is this commit, so every change is zero."
    else:
        note = f"Baseline: `{rev}` at `{base_commit[:12]}`."
    sections = [
        f"# {TITLE}",
        f"{headline}\n\n{note}",
        "## Quality gates\n\n" + markdown_table(gates),
        "## Metrics (test split)\n\n" + metrics_table(metrics, baseline_metrics),
        "## Params changed\n\n"
        + params_section(changed_params(_raw_params(), baseline_params), baseline_params is not None),
        "## Drift\n\n" + markdown_summary(dict(drift), top=5),
        "## Validation\n\n" + validation_section(validation),
        "## Plots\n\n" + plots,
        "## Provenance\n\n" + provenance_section(lock, params, commit, base_commit),
    ]
    return "\n\n".join(s.rstrip() for s in sections) + "\n"


def _raw_params() -> dict:
    return yaml.safe_load(Path("params.yaml").read_text(encoding="utf-8"))


def _plot_files_here(plots_dir: Path) -> dict[str, object]:
    return {p.relative_to(plots_dir).as_posix(): json.loads(p.read_text()) for p in sorted(plots_dir.rglob("*.json"))}


def _plot_files_at(commit: str | None, plots_dir: str) -> dict[str, object]:
    if commit is None:
        return {}
    files = {}
    for path in list_committed(commit, plots_dir):
        text = read_committed(commit, path)
        if text is not None:
            files[Path(path).relative_to(plots_dir).as_posix()] = json.loads(text)
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", help="git revision to compare with (default: gates.baseline in params)")
    parser.add_argument("-o", "--output", default="report.md", help="markdown file to write")
    parser.add_argument("--plots-dir", help="render baseline-vs-branch PNGs here (default: next to the report)")
    parser.add_argument(
        "--embed-plots", action="store_true", help="link the PNGs as images (CML --publish uploads them)"
    )
    args = parser.parse_args(argv)
    params = load_params()
    rev = args.baseline or params.gates.baseline
    base_commit = resolve_revision(rev)
    metrics_path = f"{params.paths.eval_dir}/metrics.json"
    baseline_params_text = read_committed(base_commit, "params.yaml") if base_commit else None
    output = Path(args.output)
    plots_dir = Path(args.plots_dir) if args.plots_dir else output.parent / "report-plots"
    eval_plots = f"{params.paths.eval_dir}/plots"
    written = render_plots(_plot_files_here(Path(eval_plots)), _plot_files_at(base_commit, eval_plots), plots_dir)
    report = build_report(
        params=params,
        metrics=read_json(metrics_path),
        baseline_metrics=read_committed_json(base_commit, metrics_path),
        baseline_params=yaml.safe_load(baseline_params_text) if baseline_params_text else None,
        drift=read_json(params.paths.drift_report),
        validation=read_json(params.paths.validation_report),
        lock=yaml.safe_load(Path("dvc.lock").read_text(encoding="utf-8")),
        rev=rev,
        commit=resolve_revision("HEAD"),
        base_commit=base_commit,
        plots=plots_section(written, output, args.embed_plots),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
