"""params.yaml is the only place a knob is set, so a typo in it must stop the run, not be ignored.

A misspelt key silently falling back to a default, or an impossible value
reaching scikit-learn, would produce a model nobody asked for. These tests pin
that every such mistake is a ConfigError naming the dotted key, and that a
stage run from the command line reports it in one line and writes nothing.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.errors import EXIT_BAD_CONFIG, ConfigError
from pipeline.params import load_params

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def raw() -> dict:
    """The repository's params.yaml as plain data, to be edited into broken variants."""
    return yaml.safe_load(ROOT.joinpath("params.yaml").read_text(encoding="utf-8"))


def write_params(directory: Path, raw: dict, edit) -> Path:
    broken = copy.deepcopy(raw)
    edit(broken)
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    return path


def test_repository_params_load_completely(params, raw):
    assert params.model_dump(exclude_unset=True) == raw


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda p: p.update(evaluation={"seed": 1}), "evaluation: unknown key"),
        (lambda p: p["train"]["random_forest"].update(n_trees=100), "train.random_forest.n_trees: unknown key"),
        (lambda p: p["split"].update(seed="42"), "split.seed: Input should be a valid integer"),
        (lambda p: p["split"].update(test_size=1.5), "split.test_size: Input should be less than 1"),
        (lambda p: p["train"].update(model="xgboost"), "train.model: Input should be 'logistic_regression'"),
        (lambda p: p["paths"].pop("model"), "paths.model: required key is missing"),
    ],
    ids=["unknown-top-level-key", "unknown-nested-key", "wrong-type", "test-size-above-1", "unknown-model", "missing"],
)
def test_bad_params_name_the_key(raw, tmp_path, edit, key):
    path = write_params(tmp_path, raw, edit)
    with pytest.raises(ConfigError) as error:
        load_params(path)
    assert str(path) in str(error.value)
    assert key in str(error.value)
    assert error.value.exit_code == EXIT_BAD_CONFIG


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match=r"params\.yaml not found"):
        load_params(tmp_path / "params.yaml")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  test_size: [0.25\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_params(path)


def test_stage_stops_on_bad_params_and_writes_nothing(raw, tmp_path):
    write_params(tmp_path, raw, lambda p: p["split"].update(test_size=1.5))

    result = subprocess.run(
        [sys.executable, "-m", "pipeline.split"], cwd=tmp_path, capture_output=True, text=True, check=False
    )

    assert result.returncode == EXIT_BAD_CONFIG
    assert "split.test_size" in result.stderr
    assert "Traceback" not in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]


def test_p_value_methods_agree_with_the_drift_tests():
    from pipeline.drift_tests import METHODS
    from pipeline.params import P_VALUE_METHODS

    assert {name for name, method in METHODS.items() if method.statistic == "p_value"} == P_VALUE_METHODS


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda raw: raw["drift"]["thresholds"].update(ks=1.0), "thresholds.ks"),
        (lambda raw: raw["drift"]["columns"].update(island={"method": "z", "threshold": 2.0}), "columns.island"),
    ],
)
def test_p_value_thresholds_must_be_below_one(tmp_path, raw, edit, key):
    with pytest.raises(ConfigError, match=key):
        load_params(write_params(tmp_path, raw, edit))
