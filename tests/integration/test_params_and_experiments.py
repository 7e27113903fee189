"""Changing a param re-runs exactly the stages that read it (and what depends on their outputs); experiments work."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from pipeline.metrics import METRICS

pytestmark = pytest.mark.integration


def _set_param(ws, key: str, old: str, new: str) -> None:
    """Change one scalar in params.yaml by a text edit that keeps its comments and layout."""
    path = ws.path / "params.yaml"
    text, count = re.subn(rf"(?m)^(\s+{re.escape(key)}:\s*){re.escape(old)}(?=\s|$)", rf"\g<1>{new}", path.read_text())
    assert count == 1, f"expected exactly one `{key}: {old}` in params.yaml"
    path.write_text(text, encoding="utf-8")


def test_permutation_repeats_change_reruns_only_evaluate(workspace):
    workspace = workspace.single_threaded()
    paths = workspace.params()["paths"]
    metrics_before = (workspace.path / paths["eval_dir"] / "metrics.json").read_text()
    model_before = workspace.locked_out_md5(paths["model"])
    repeats = workspace.params()["evaluate"]["permutation_repeats"]
    _set_param(workspace, "permutation_repeats", str(repeats), str(repeats + 1))

    status = json.loads(workspace.dvc("status", "--json").stdout)
    assert set(status) == {"evaluate"}, status

    result = workspace.dvc("repro")
    # The metrics do not depend on permutation importance, so metrics.json is unchanged
    # and nothing downstream of evaluate has a reason to run.
    assert result.stages_run == ["evaluate"], result.output
    assert (workspace.path / paths["eval_dir"] / "metrics.json").read_text() == metrics_before
    assert workspace.locked_out_md5(paths["model"]) == model_before
    importance = workspace.git("diff", "--name-only").stdout
    assert "feature_importance" in importance, importance


def _column(row: dict[str, str], name: str) -> str:
    """A `dvc exp show --csv` column, whether or not DVC prefixed it with its file name."""
    matches = [value for key, value in row.items() if key == name or key.endswith(f":{name}")]
    assert len(matches) == 1, (name, sorted(row))
    return matches[0]


def test_experiment_with_another_model(workspace, features):
    workspace = workspace.single_threaded()
    own = workspace.params()["train"]["model"]
    linear = "logistic_regression" if features.is_classification else "ridge"  # quick to fit at any data size
    other = linear if own != linear else "hist_gradient_boosting"
    headline = METRICS[features.task][-1]
    result = workspace.dvc("exp", "run", "--name", "other", "-S", f"train.model={other}")
    assert set(result.stages_run) == {"train"} | workspace.downstream("train"), result.output

    shown = workspace.dvc("exp", "show", "--csv", "--no-pager").stdout
    rows = list(csv.DictReader(io.StringIO(shown)))
    experiment = next((row for row in rows if row["Experiment"] == "other"), None)
    assert experiment is not None, shown
    assert _column(experiment, "train.model") == other

    baseline = next(row for row in rows if row["rev"] == "main")
    assert _column(baseline, "train.model") == own
    committed = json.loads(workspace.git("show", "HEAD:reports/eval/metrics.json").stdout)
    assert float(_column(baseline, headline)) == pytest.approx(committed[headline])
    assert float(_column(experiment, headline)) != pytest.approx(committed[headline])
