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


def test_a_pull_request_that_changes_a_train_param(workspace, features):
    """Exactly train and what depends on it re-run; the report shows the param and every metric's delta."""
    workspace = workspace.single_threaded()
    iterations = workspace.params()["train"]["hist_gradient_boosting"]["max_iter"]
    fewer = iterations // 4 if iterations >= 4 else iterations + 1  # quicker at any data size; another model
    family = workspace.params()["train"]["model"]
    workspace.git("checkout", "-q", "-b", "change")
    edit_params(
        workspace,
        lambda p: (
            p["train"].update(model="hist_gradient_boosting")
            or p["train"]["hist_gradient_boosting"].update(max_iter=fewer)
        ),
    )
    diff = json.loads(workspace.dvc("params", "diff", "--json").stdout)
    expected = {"train.hist_gradient_boosting.max_iter"} | (
        {"train.model"} if family != "hist_gradient_boosting" else set()
    )
    assert set(diff["params.yaml"]) == expected, diff
    result = workspace.dvc("repro")
    assert result.stages_run[:2] == ["train", "evaluate"], result.output
    assert set(result.stages_run) == {"train"} | workspace.downstream("train"), result.output
    workspace.commit("Change params")

    workspace.python("-m", "pipeline.gate")
    workspace.python("-m", "pipeline.report", "-o", "report/report.md")
    report = (workspace.path / "report/report.md").read_text(encoding="utf-8")

    assert f"| `train.hist_gradient_boosting.max_iter` | `{iterations}` | `{fewer}` |" in report
    assert "## Quality gates" in report
    main_metrics = json.loads(workspace.git("show", "main:reports/eval/metrics.json").stdout)
    branch_metrics = json.loads((workspace.path / "reports/eval/metrics.json").read_text())
    changed = [name for name in main_metrics if abs(main_metrics[name] - branch_metrics[name]) >= 5e-5]
    assert changed, "the param change should move at least one metric"
    for name in changed:
        delta = branch_metrics[name] - main_metrics[name]
        arrow = "▲" if delta > 0 else "▼"
        assert f"| {name} | {main_metrics[name]:.4f} | {branch_metrics[name]:.4f} | {arrow} {delta:+.4f}" in report
    assert "## Drift" in report
    assert f"of {len(features.columns)} columns drifted" in report or "No drift verdict" in report
    head = workspace.git("rev-parse", "HEAD").stdout.strip()
    assert f"commit `{head[:12]}`" in report
    expected_png = "roc.png" if features.is_classification else "predicted_vs_actual.png"
    assert (workspace.path / "report/report-plots" / expected_png).stat().st_size > 0


# The task's headline score, and how to make a model that cannot score on it.
HEADLINE = {"classification": "balanced_accuracy", "regression": "r2"}


def starve_the_model(params, task):
    """A model so regularised it predicts one class (classification) or the mean (regression)."""
    if task == "classification":
        params["train"]["model"] = "logistic_regression"
        params["train"]["logistic_regression"]["C"] = 1e-6
    else:
        params["train"]["model"] = "ridge"
        params["train"]["ridge"]["alpha"] = 1e9


def test_a_harmful_param_change_fails_the_gates(workspace, features):
    headline = HEADLINE[features.task]
    committed = json.loads(workspace.git("show", "main:reports/eval/metrics.json").stdout)[headline]
    chance = 1 / len(features.target_classes) if features.is_classification else 0.0
    if committed <= chance + 0.03:
        pytest.skip(f"the committed model's {headline} ({committed:.3f}) is already at chance: nothing to lose")
    # A strict regression gate on main, so the verdict does not depend on the project's own floors.
    edit_params(workspace, lambda p: p["gates"][features.task]["regressions"].update({headline: {"max_drop": 0.0}}))
    workspace.commit("A strict gate on main")

    workspace.git("checkout", "-q", "-b", "change")
    edit_params(workspace, lambda p: starve_the_model(p, features.task))
    workspace.dvc("repro", "evaluate")  # the gates read the new metrics; drift is not what this test is about
    workspace.commit("Starve the model")

    gate = workspace.python("-m", "pipeline.gate", "--check", "--gates-from", "baseline", check=False)
    assert gate.returncode == 1, gate.output
    assert f"{headline} drops at most 0 vs baseline" in gate.stdout
    assert "**FAIL**" in gate.stdout
    assert json.loads((workspace.path / "reports/gates.json").read_text())["passed"] is False

    workspace.python("-m", "pipeline.report", "-o", "report/report.md")
    report = (workspace.path / "report/report.md").read_text(encoding="utf-8")
    assert report.splitlines()[2] == "❌ **Quality gates failed.**"
    assert "| `train.model` |" in report


def test_a_branch_that_lowers_its_own_gate_is_judged_by_mains_gates(workspace, features):
    headline = HEADLINE[features.task]
    committed = json.loads(workspace.git("show", "main:reports/eval/metrics.json").stdout)[headline]
    edit_params(
        workspace, lambda p: p["gates"][features.task]["metrics"].update({headline: {"min": round(committed + 0.5, 3)}})
    )
    workspace.commit("An unreachable floor on main")
    workspace.git("checkout", "-q", "-b", "lower-the-bar")
    edit_params(workspace, lambda p: p["gates"][features.task]["metrics"].update({headline: {"min": -10.0}}))
    workspace.commit("Lower the bar")

    own = workspace.python("-m", "pipeline.gate", "--check", check=False)
    mains = workspace.python("-m", "pipeline.gate", "--check", "--gates-from", "baseline", check=False)

    assert own.returncode == 0, own.output
    assert mains.returncode == 1, mains.output
    workspace.python("-m", "pipeline.report", "-o", "report/report.md")
    report = (workspace.path / "report/report.md").read_text(encoding="utf-8")
    assert "This branch changes its own quality gates" in report
    assert f"⚠️ `gates.{features.task}.metrics.{headline}.min`" in report


def test_gates_pass_on_main_against_itself(workspace):
    gate = workspace.python("-m", "pipeline.gate", "--check", check=False)
    assert gate.returncode == 0, gate.output
    assert "All gates passed" in gate.stdout


def test_report_when_the_baseline_has_no_results_yet(workspace):
    workspace.git("checkout", "-q", "--orphan", "empty")
    workspace.git("rm", "-rq", "--cached", ".")
    workspace.git("commit", "-q", "--allow-empty", "-m", "nothing yet")
    workspace.git("checkout", "-q", "-f", "main")

    workspace.python("-m", "pipeline.gate", "--baseline", "empty")
    workspace.python("-m", "pipeline.report", "-o", "report/report.md")
    report = (workspace.path / "report/report.md").read_text(encoding="utf-8")
    assert "no baseline: 'empty' has no committed metrics yet; only absolute gates decide" in report
    assert "⚪ not judged" in report
