"""Report: the PR review in one markdown file, from this workspace's results and a git baseline.

    python -m pipeline.report --baseline main -o report.md [--plots-dir DIR] [--embed-plots] [--run-url URL]

The verdict is the gate stage's (reports/gates.json): the report shows it and
never judges again. `build_report` is pure: params, results, revisions and the
run URL come in as arguments. Everything a branch controls (param names and
values, column and category names, drift notes, revision names, file paths)
is escaped for GitHub markdown (pipeline.markdown), and any change to the
`gates:` section is listed at the top, so a pull request cannot quietly lower
its own bars. Without `--embed-plots` the PNGs stay in DIR (CI uploads them as
workflow artifacts) and the report links to the run.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.errors import PipelineError, run_main
from pipeline.markdown import code, text

TITLE = "Ratchet model report"


def metrics_table(current: Mapping[str, float], baseline: Mapping[str, float] | None, comparable: bool = True) -> str:
    """Baseline vs this branch with deltas; a metric only on one side is marked added or removed."""
    lines = ["| metric | baseline | this branch | change |", "|---|---|---|---|"]
    for name in sorted(set(current) | set(baseline or {})):
        new, old = current.get(name), (baseline or {}).get(name)
        if new is None:
            change = "removed"
        elif old is None:
            change = "new" if baseline is not None else "no baseline"
        elif not comparable:
            change = "not comparable"
        else:
            change = _delta(name, new - old)
        lines.append(f"| {text(name)} | {_fmt(old)} | {_fmt(new)} | {change} |")
    return "\n".join(lines)


def _delta(name: str, delta: float) -> str:
    from pipeline.metrics import LOWER_IS_BETTER

    if abs(delta) < 5e-5:
        return "no change"
    better = (delta < 0) if name in LOWER_IS_BETTER else (delta > 0)
    return f"{'▲' if delta > 0 else '▼'} {delta:+.4f} {'🟢' if better else '🔴'}"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or isinstance(value, bool) or not isinstance(value, int | float) else f"{value:.4f}"


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(tree, dict) or not tree:
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


def gate_changes_section(changes: list[tuple[str, object, object]], gates_from: str) -> str | None:
    """The top-of-report warning when a branch edits its own gates; None when it does not."""
    edits = [change for change in changes if change[0] == "gates" or change[0].startswith("gates.")]
    if not edits:
        return None
    rows = [f"| ⚠️ {code(key)} | {_show(old)} | {_show(new)} |" for key, old, new in edits]
    return "\n".join(
        [
            f"> [!WARNING]\n> This branch changes its own quality gates ({len(edits)} setting(s)). "
            f"The verdict above used the gates from {text(gates_from)}.",
            "",
            "| gate setting | baseline | this branch |",
            "|---|---|---|",
            *rows,
        ]
    )


def params_section(changes: list[tuple[str, object, object]], has_baseline: bool) -> str:
    if not has_baseline:
        return "No baseline params to compare with."
    if not changes:
        return "No params changed."
    rows = [f"| {code(key)} | {_show(old)} | {_show(new)} |" for key, old, new in changes]
    return "\n".join(["| param | baseline | this branch |", "|---|---|---|", *rows])


def _show(value: object) -> str:
    return "*(absent)*" if value is None else code(value)


def validation_section(validation: Mapping) -> str:
    verdict = "passed" if validation["passed"] else "**failed**"
    lines = [f"Validation {verdict}: {validation['rows_checked']} rows checked."]
    for file in validation["files"]:
        lines.append(f"- {code(file['path'])}: {file['rows']} rows, {len(file['failures'])} failing check(s)")
        for failure in file["failures"][:10]:
            where = f"column {code(failure['column'])}" if failure["column"] else "file"
            lines.append(f"  - {where}: {text(failure['check'])}, {failure['count']} row(s)")
    return "\n".join(lines)


def provenance_section(
    lock: Mapping, tracked: Sequence[str], commit: str | None, base_commit: str | None, run_url: str | None
) -> str:
    outputs = {
        out["path"]: out.get("md5", "")[:12]
        for stage in (lock.get("stages") or {}).values()
        for out in stage.get("outs", [])
    }
    lines = [f"- commit {code((commit or 'uncommitted')[:12])}, baseline {code((base_commit or 'none')[:12])}"]
    lines += [f"- {code(path)} md5 {code(outputs[path])}" for path in tracked if path in outputs]
    if run_url:
        lines.append(f"- [workflow run]({run_url}) (plots, drift report and this report are attached as artifacts)")
    return "\n".join(lines)


def actions_run_url(env: Mapping[str, str]) -> str | None:
    """The workflow run's URL from GitHub's variables; only URL-safe values are accepted."""
    import re

    keys = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    if not all(env.get(k) for k in keys):
        return None
    server, repo, run = (env[k] for k in keys)
    if not (
        re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?", server)
        and re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo)
        and run.isdigit()
    ):
        return None
    return f"{server}/{repo}/actions/runs/{run}"


def plots_section(written: Sequence[Path], out_file: Path, embed: bool, run_url: str | None) -> str:
    if not written:
        return "No plots."
    if embed:
        return "\n".join(f"![{text(p.stem)}]({os.path.relpath(p, out_file.parent)})" for p in written)
    names = ", ".join(code(p.name) for p in written)
    where = "the workflow run's artifacts" if run_url else code(written[0].parent)
    return f"Baseline and this branch, side by side: {names} in {where}."


def build_report(
    *,
    verdict: Mapping,
    metrics: Mapping[str, float],
    baseline_metrics: Mapping[str, float] | None,
    params: Mapping,
    baseline_params: Mapping | None,
    drift: Mapping,
    validation: Mapping,
    lock: Mapping,
    tracked: Sequence[str],
    commit: str | None,
    plots: str,
    run_url: str | None,
) -> str:
    """The whole report from its inputs; reads no file and no environment."""
    from pipeline.drift_render import markdown_summary
    from pipeline.gate import markdown_table

    base = verdict["baseline"]
    headline = "✅ **All quality gates passed.**" if verdict["passed"] else "❌ **Quality gates failed.**"
    note = text(base["note"])
    if base["commit"] is not None and base["commit"] == commit:
        note = f"The baseline {code(base['revision'])} is this commit, so every change is zero."
    changes = changed_params(params, baseline_params)
    top = [f"# {TITLE}", f"{headline}\n\n{note}"]
    warning = gate_changes_section(changes, verdict["gates_from"])
    if warning:
        top.append(warning)
    sections = [
        *top,
        "## Quality gates\n\n" + markdown_table(verdict),
        "## Metrics (test split)\n\n"
        + metrics_table(metrics, baseline_metrics, comparable=base["status"] != "not comparable"),
        "## Params changed\n\n" + params_section(changes, baseline_params is not None),
        "## Drift\n\n" + markdown_summary(dict(drift), top=5),
        "## Validation\n\n" + validation_section(validation),
        "## Plots\n\n" + plots,
        "## Provenance\n\n" + provenance_section(lock, tracked, commit, base["commit"], run_url),
    ]
    return "\n\n".join(s.rstrip() for s in sections) + "\n"


# What the report reads from each result file: a key and the type its value must have.
VERDICT_SHAPE = {"passed": bool, "gates": list, "baseline": dict, "gates_from": str}
DRIFT_SHAPE = {"dataset": dict, "columns": list, "reference_rows": int, "current_rows": int}
VALIDATION_SHAPE = {"passed": bool, "rows_checked": int, "files": list}


def checked(payload: Mapping, shape: Mapping[str, type], path: str) -> Mapping:
    """A result file with the keys the report reads; otherwise one line naming the file and the key."""
    for key, kind in shape.items():
        if not isinstance(payload.get(key), kind):
            raise PipelineError(f"{path}: has no valid {key!r}; run `dvc repro -f` and `make check` to write it again")
    return payload


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", default="report.md", help="markdown file to write")
    parser.add_argument("--plots-dir", help="render baseline-vs-branch PNGs here (default: next to the report)")
    parser.add_argument(
        "--embed-plots", action="store_true", help="link the PNGs as images (CML --publish uploads them)"
    )
    parser.add_argument("--run-url", help="the CI run to link (default: from GITHUB_* variables, when all are set)")
    args = parser.parse_args(argv)
    import yaml

    from pipeline.baseline import read_committed, resolve_revision
    from pipeline.files import read_json, write_text
    from pipeline.gate import check_metrics
    from pipeline.params import load_params, read_yaml
    from pipeline.report_plots import plot_files_at, plot_files_here, render_plots

    params = load_params()
    verdict = checked(read_json(params.paths.gates_report), VERDICT_SHAPE, params.paths.gates_report)
    base_commit = verdict["baseline"]["commit"]
    rev = verdict["baseline"]["revision"]
    metrics_path = f"{params.paths.eval_dir}/metrics.json"
    baseline_params_text = read_committed(base_commit, "params.yaml") if base_commit else None
    baseline_metrics = None
    if base_commit and verdict["baseline"]["status"] in ("compared", "not comparable"):
        from pipeline.baseline import read_committed_json

        baseline_metrics = read_committed_json(base_commit, metrics_path)
        baseline_metrics = check_metrics(baseline_metrics, f"{metrics_path} at {rev}") if baseline_metrics else None
    output = Path(args.output)
    plots_dir = Path(args.plots_dir) if args.plots_dir else output.parent / "report-plots"
    eval_plots = f"{params.paths.eval_dir}/plots"
    run_url = args.run_url or actions_run_url(os.environ)
    written = render_plots(plot_files_here(Path(eval_plots)), plot_files_at(base_commit, eval_plots), plots_dir)
    try:
        lock = yaml.safe_load(Path("dvc.lock").read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise PipelineError("dvc.lock: not found; run `dvc repro` first") from None
    report = build_report(
        verdict=verdict,
        metrics=check_metrics(read_json(metrics_path), metrics_path),
        baseline_metrics=baseline_metrics,
        params=read_yaml(Path("params.yaml").read_text(encoding="utf-8"), "params.yaml"),
        baseline_params=read_yaml(baseline_params_text, f"params.yaml at {rev}") if baseline_params_text else None,
        drift=checked(read_json(params.paths.drift_report), DRIFT_SHAPE, params.paths.drift_report),
        validation=checked(read_json(params.paths.validation_report), VALIDATION_SHAPE, params.paths.validation_report),
        lock=lock,
        tracked=[params.paths.raw_reference, params.paths.raw_current, params.paths.model],
        commit=resolve_revision("HEAD"),
        plots=plots_section(written, output, args.embed_plots, run_url),
        run_url=run_url,
    )
    write_text(report, output)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
