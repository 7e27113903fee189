"""A pull request's life: a branch changes params, the pipeline re-runs, the report and gates judge it.

Real git branches and the real `dvc repro` in a copy of the reproduced project
(committed on `main`, the default baseline); only posting the comment (CML,
GitHub's API) is left to the workflow.
"""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = pytest.mark.integration


def edit_params(workspace, edit) -> None:
    path = workspace.path / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def open_pull_request(workspace, edit) -> None:
    """Branch off main, change params, reproduce and commit, as a contributor would."""
    workspace.git("checkout", "-q", "-b", "change")
    edit_params(workspace, edit)
    workspace.dvc("repro")
    workspace.commit("Change params")


def test_report_on_a_pull_request_that_changes_a_train_param(workspace):
    open_pull_request(workspace, lambda p: p["train"]["hist_gradient_boosting"].update(learning_rate=0.03))

    workspace.python("-m", "pipeline.report", "--baseline", "main", "-o", "report/report.md")
    report = (workspace.path / "report/report.md").read_text(encoding="utf-8")

    assert "| `train.hist_gradient_boosting.learning_rate` | `0.1` | `0.03` |" in report
    assert "## Quality gates" in report
    assert "| roc_auc >= 0.8 |" in report
    main_metrics = json.loads(workspace.git("show", "main:reports/eval/metrics.json").stdout)
    branch_metrics = json.loads((workspace.path / "reports/eval/metrics.json").read_text())
    changed = [name for name in main_metrics if abs(main_metrics[name] - branch_metrics[name]) >= 5e-5]
    assert changed, "the param change should move at least one metric"
    for name in changed:
        delta = branch_metrics[name] - main_metrics[name]
        arrow = "▲" if delta > 0 else "▼"
        assert f"| {name} | {main_metrics[name]:.4f} | {branch_metrics[name]:.4f} | {arrow} {delta:+.4f}" in report
    assert "## Drift" in report
    assert "of 9 columns drifted" in report
    head = workspace.git("rev-parse", "HEAD").stdout.strip()
    assert f"commit `{head[:12]}`" in report
    assert (workspace.path / "report/report-plots/roc.png").stat().st_size > 0


def test_a_harmful_param_change_fails_the_gates(workspace):
    def starve_the_model(params):
        params["train"]["model"] = "logistic_regression"
        params["train"]["logistic_regression"]["C"] = 1e-6  # so regularised it predicts one class

    open_pull_request(workspace, starve_the_model)
    assert workspace.dvc("status").stdout.strip() == "Data and pipelines are up to date."

    gate = workspace.python("-m", "pipeline.gate", "--check", check=False)
    assert gate.returncode == 1, gate.output
    assert "balanced_accuracy >= 0.75" in gate.stdout
    assert "**FAIL**" in gate.stdout
    assert "balanced_accuracy drops at most 0.02 vs baseline" in gate.stdout
    assert json.loads((workspace.path / "reports/gates.json").read_text())["passed"] is False

    workspace.python("-m", "pipeline.report", "--baseline", "main", "-o", "report/report.md")
    report = (workspace.path / "report/report.md").read_text(encoding="utf-8")
    assert report.splitlines()[2] == "❌ **Quality gates failed.**"
    assert "| `train.model` | `hist_gradient_boosting` | `logistic_regression` |" in report


def test_gates_pass_on_main_against_itself(workspace):
    gate = workspace.python("-m", "pipeline.gate", "--check", check=False)
    assert gate.returncode == 0, gate.output
    assert "All gates passed" in gate.stdout


def test_report_when_the_baseline_has_no_results_yet(workspace):
    workspace.git("checkout", "-q", "--orphan", "empty")
    workspace.git("rm", "-rq", "--cached", ".")
    workspace.git("commit", "-q", "--allow-empty", "-m", "nothing yet")
    workspace.git("checkout", "-q", "-f", "main")

    workspace.python("-m", "pipeline.report", "--baseline", "empty", "-o", "report/report.md")
    report = (workspace.path / "report/report.md").read_text(encoding="utf-8")
    assert "No baseline: `empty` has no committed metrics yet; only absolute gates decide." in report
    assert "⚪ no baseline" in report
