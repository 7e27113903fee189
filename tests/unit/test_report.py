"""The PR report's pieces: metric deltas, changed params, and the edge cases a PR can hit.

No baseline yet, a baseline equal to HEAD, metrics added or removed: each must
read clearly instead of crashing or pretending there is nothing to compare.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.report import (
    actions_run_url,
    build_report,
    changed_params,
    flatten,
    metrics_table,
    params_section,
    plots_section,
)

ROOT = Path(__file__).resolve().parents[2]
DRIFT = {
    "dataset": {"columns": 2, "drifted_columns": 1, "share": 0.5, "threshold": 0.5, "drifted": True},
    "reference_rows": 100,
    "current_rows": 50,
    "columns": [
        {
            "column": "body_mass_g",
            "kind": "numeric",
            "method": "ks",
            "value": 0.001,
            "threshold": 0.05,
            "drifted": True,
            "note": None,
        },
        {
            "column": "island",
            "kind": "categorical",
            "method": "chisquare",
            "value": 0.7,
            "threshold": 0.05,
            "drifted": False,
            "note": None,
        },
    ],
    "target": None,
    "prediction": None,
    "performance": None,
}
VALIDATION = {"passed": True, "rows_checked": 150, "files": [{"path": "a.csv", "rows": 150, "failures": []}]}
LOCK = {"stages": {"train": {"outs": [{"path": "models/model.skops", "md5": "0123456789abcdef0123"}]}}}


def test_metric_deltas_have_direction_and_judgement():
    table = metrics_table({"roc_auc": 0.95, "log_loss": 0.30}, {"roc_auc": 0.90, "log_loss": 0.20})
    assert "| roc_auc | 0.9000 | 0.9500 | ▲ +0.0500 🟢 |" in table
    assert "| log_loss | 0.2000 | 0.3000 | ▲ +0.1000 🔴 |" in table  # log loss rising is worse


def test_metrics_added_and_removed_are_marked():
    table = metrics_table({"roc_auc": 0.9, "brier": 0.1}, {"roc_auc": 0.9, "accuracy": 0.8})
    assert "| brier | n/a | 0.1000 | new |" in table
    assert "| accuracy | 0.8000 | n/a | removed |" in table
    assert "| roc_auc | 0.9000 | 0.9000 | no change |" in table


def test_metrics_without_baseline_say_so():
    assert "| roc_auc | n/a | 0.9000 | no baseline |" in metrics_table({"roc_auc": 0.9}, None)


def test_changed_params_lists_dotted_keys_old_and_new():
    old = {"train": {"model": "hist_gradient_boosting", "seed": 1}, "split": {"test_size": 0.25}}
    new = {"train": {"model": "random_forest", "seed": 1}, "split": {"test_size": 0.25}, "extra": {"k": 2}}
    assert changed_params(new, old) == [
        ("extra.k", None, 2),
        ("train.model", "hist_gradient_boosting", "random_forest"),
    ]
    assert flatten({"a": {"b": {"c": 1}}}) == {"a.b.c": 1}
    section = params_section(changed_params(new, old), has_baseline=True)
    assert "| `train.model` | `hist_gradient_boosting` | `random_forest` |" in section
    assert "*(absent)*" in section


def test_params_without_baseline_or_changes():
    assert params_section([], has_baseline=False) == "No baseline params to compare with."
    assert params_section([], has_baseline=True) == "No params changed."


def test_run_link_only_inside_actions():
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "42"}
    assert actions_run_url(env) == "https://github.com/o/r/actions/runs/42"
    assert actions_run_url({}) is None


def test_plots_are_linked_not_embedded_unless_asked(tmp_path):
    pngs = [tmp_path / "plots" / "roc.png"]
    assert "![" not in plots_section(pngs, tmp_path / "report.md", embed=False)
    assert "![roc](plots/roc.png)" in plots_section(pngs, tmp_path / "report.md", embed=True)


@pytest.fixture
def report_inputs(params, monkeypatch):
    monkeypatch.chdir(ROOT)  # build_report reads the workspace's params.yaml for the param diff
    metrics = {"roc_auc": 0.95, "balanced_accuracy": 0.9, "log_loss": 0.2, "accuracy": 0.9, "f1": 0.9}
    return {
        "params": params,
        "metrics": metrics,
        "drift": DRIFT,
        "validation": VALIDATION,
        "lock": LOCK,
        "rev": "main",
        "plots": "No plots.",
    }


def test_report_without_baseline(report_inputs):
    text = build_report(**report_inputs, baseline_metrics=None, baseline_params=None, commit="abc", base_commit=None)
    assert "No baseline: `main` does not exist here" in text
    assert "⚪ no baseline" in text
    assert "✅ **All quality gates passed.**" in text


def test_report_with_baseline_equal_to_head(report_inputs):
    metrics = report_inputs["metrics"]
    text = build_report(
        **report_inputs, baseline_metrics=metrics, baseline_params=None, commit="abc", base_commit="abc"
    )
    assert "is this commit, so every change is zero" in text
    assert "| roc_auc | 0.9500 | 0.9500 | no change |" in text


def test_report_headline_names_failure(report_inputs):
    worse = {**report_inputs["metrics"], "roc_auc": 0.90}
    report_inputs["metrics"] = worse
    text = build_report(
        **report_inputs, baseline_metrics={"roc_auc": 0.95}, baseline_params=None, commit="b", base_commit="a"
    )
    assert "❌ **Quality gates failed.**" in text
    assert "roc_auc drops at most 0.01 vs baseline | 0.9000 | 0.9500 | ❌ **FAIL**" in text
    for section in ("## Metrics", "## Params changed", "## Drift", "## Validation", "## Plots", "## Provenance"):
        assert section in text
    assert "`models/model.skops` md5 `0123456789ab`" in text
    assert "body_mass_g" in text
