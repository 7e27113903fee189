"""params.yaml is the only place a knob is set, so a typo in it must stop the run, not be ignored.

A misspelt key silently falling back to a default, or an impossible value
reaching scikit-learn, would produce a model nobody asked for. These tests pin
that every such mistake is a ConfigError naming the dotted key, and that a
stage run from the command line reports it in one line and writes nothing.

Every bound of every numeric field is tried through the real loader, at the
bound and one floating-point (or integer) step past it, from one table; a
meta-test keeps the table complete as fields are added.
"""

from __future__ import annotations

import copy
import math
import re
import subprocess
import sys
import typing
from pathlib import Path

import annotated_types
import pydantic
import pytest
import yaml

from pipeline.errors import EXIT_BAD_CONFIG, ConfigError
from pipeline.params import Params, load_params, main

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


def set_key(raw: dict, dotted: str, value: object) -> None:
    node = raw
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value


def test_repository_params_load_completely(params, raw):
    assert params.model_dump(exclude_unset=True) == raw


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda p: p.update(evaluation={"seed": 1}), "evaluation: unknown key"),
        (lambda p: p["train"]["random_forest"].update(n_trees=100), "train.random_forest.n_trees: unknown key"),
        (lambda p: p["split"].update(seed="42"), "split.seed: Input should be a valid integer"),
        (lambda p: p["split"].update(test_size=1.5), "split.test_size: Input should be less than 1"),
        (lambda p: p["train"].update(model="xgboost"), "train.model: Input should be 'hist_gradient_boosting'"),
        (lambda p: p["paths"].pop("model"), "paths.model: required key is missing"),
        (lambda p: p["drift"]["thresholds"].pop("ks"), "drift.thresholds: no threshold for ks"),
        (
            lambda p: p["gates"]["classification"]["regressions"].update(roc_acu={"max_drop": 0.01}),
            "gates.classification: regressions.roc_acu: no such classification metric",
        ),
        (
            lambda p: p["gates"]["regression"]["metrics"].update(roc_auc={"min": 0.5}),
            "gates.regression: metrics.roc_auc: no such regression metric",
        ),
        (
            lambda p: p["gates"]["classification"]["regressions"].update(log_loss={"max_drop": 0.1}),
            "regressions.log_loss: lower is better for log_loss, so limit it with max_rise",
        ),
        (
            lambda p: p["gates"]["classification"]["regressions"].update(roc_auc={"max_rise": 0.1}),
            "regressions.roc_auc: higher is better for roc_auc, so limit it with max_drop",
        ),
        (
            lambda p: p["gates"]["classification"]["regressions"].update(roc_auc={}),
            "gates.classification.regressions.roc_auc: give exactly one of max_drop",
        ),
        (
            lambda p: p["gates"]["classification"]["metrics"].update(roc_auc={"min": 0.9, "max": 0.8}),
            "gates.classification.metrics.roc_auc: min 0.9 is above max 0.8",
        ),
        (lambda p: p["gates"].update(baseline="main; rm -rf /"), "gates.baseline: 'main; rm -rf /' is not a git"),
        (lambda p: p["drift"]["columns"].update(x={}), "drift.columns.x: give a method, a threshold or both"),
    ],
    ids=[
        "unknown-top-level-key",
        "unknown-nested-key",
        "wrong-type",
        "test-size-above-1",
        "unknown-model",
        "missing",
        "threshold-missing",
        "misspelt-gate-metric",
        "metric-of-another-task",
        "wrong-direction-drop",
        "wrong-direction-rise",
        "empty-regression",
        "min-above-max",
        "unsafe-baseline",
        "empty-override",
    ],
)
def test_bad_params_name_the_key(raw, tmp_path, edit, key):
    path = write_params(tmp_path, raw, edit)
    with pytest.raises(ConfigError) as error:
        load_params(path)
    assert str(path) in str(error.value)
    assert key in str(error.value)
    assert error.value.exit_code == EXIT_BAD_CONFIG


def test_a_key_the_template_renamed_says_where_it_went(raw, tmp_path):
    def old_layout(p):
        p["gates"]["metrics"] = p["gates"]["classification"]["metrics"]

    with pytest.raises(ConfigError, match=r"gates\.metrics: renamed; it is now gates\.classification\.metrics"):
        load_params(write_params(tmp_path, raw, old_layout))


def test_missing_params_file(tmp_path):
    with pytest.raises(ConfigError, match=r"params\.yaml not found"):
        load_params(tmp_path / "params.yaml")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  test_size: [0.25\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid YAML") as error:
        load_params(path)
    assert str(error.value).startswith(f"{path} is not valid YAML: ")


def test_a_params_file_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_bytes("split:\n  note: Pingüino\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"params\.yaml cannot be read: 'utf-8' codec can't decode"):
        load_params(path)


def test_an_empty_params_file_is_invalid_at_the_top_level(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_params(path)
    assert str(error.value) == (
        f"{path} is invalid:\n  (top level): Input should be a valid dictionary or instance of Params (got None)"
    )


def test_every_problem_is_one_line_naming_its_key_and_the_value_it_got(raw, tmp_path):
    def edit(p):
        p["split"].update(seed="42")
        p["drift"]["columns"].update(x={})

    with pytest.raises(ConfigError) as error:
        load_params(write_params(tmp_path, raw, edit))

    assert str(error.value).splitlines()[1:] == [
        "  split.seed: Input should be a valid integer (got '42')",
        "  drift.columns.x: give a method, a threshold or both",  # the value is a mapping: not repeated
    ]


def test_the_check_command_loads_the_file_it_is_given_or_params_yaml(raw, tmp_path, monkeypatch):
    """`python -m pipeline.params [FILE]`, which the pre-commit hook runs, in this process."""
    good = write_params(tmp_path, raw, lambda p: None)
    (tmp_path / "broken").mkdir()
    broken = write_params(tmp_path / "broken", raw, lambda p: p["split"].update(test_size=2))
    monkeypatch.chdir(tmp_path)

    assert main([]) == 0
    assert main([str(good)]) == 0
    with pytest.raises(ConfigError, match=r"broken/params\.yaml is invalid:\n  split\.test_size"):
        main([str(broken)])


def _with_key_repeated(key: str, value: str) -> tuple[str, int]:
    """The project's params.yaml with the first `key:` line repeated below it, and the repeat's line number.

    The project's own line, however it is written (value, comment, indent), so this holds in any project.
    """
    lines = ROOT.joinpath("params.yaml").read_text(encoding="utf-8").splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if re.match(rf"^\s+{key}:", line))
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines.insert(index + 1, f"{indent}{key}: {value}\n")
    return "".join(lines), index + 2


def test_a_duplicate_key_is_an_error_naming_it_and_its_line(tmp_path):
    path = tmp_path / "params.yaml"
    text, line = _with_key_repeated("test_size", "0.5")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"duplicate key 'test_size'") as error:
        load_params(path)
    assert f"line {line}" in str(error.value)


def test_the_pre_commit_hook_refuses_a_duplicate_key(tmp_path):
    hooks = yaml.safe_load(ROOT.joinpath(".pre-commit-config.yaml").read_text(encoding="utf-8"))
    [hook] = [h for repo in hooks["repos"] for h in repo["hooks"] if h["id"] == "params-valid"]
    (tmp_path / "params.yaml").write_text(_with_key_repeated("seed", "7")[0], encoding="utf-8")
    entry = hook["entry"].replace(".venv/bin/python", sys.executable)
    done = subprocess.run(entry, shell=True, cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "duplicate key 'seed'" in done.stderr
    assert "Traceback" not in done.stderr


def test_params_are_immutable(params):
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        params.split.seed = 7
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        params.gates.max_drift_share = 1.0


def test_stage_stops_on_bad_params_and_writes_nothing(raw, tmp_path):
    write_params(tmp_path, raw, lambda p: p["split"].update(test_size=1.5))

    result = subprocess.run(
        [sys.executable, "-m", "pipeline.split"], cwd=tmp_path, capture_output=True, text=True, check=False
    )

    assert result.returncode == EXIT_BAD_CONFIG
    assert "split.test_size" in result.stderr
    assert "Traceback" not in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]


def test_p_value_methods_agree_with_the_drift_stats():
    from pipeline.drift_stats import METHODS
    from pipeline.params import P_VALUE_METHODS

    assert {name for name, method in METHODS.items() if method.statistic == "p_value"} == P_VALUE_METHODS


# Per-column drift overrides, through the real loader


@pytest.mark.parametrize(
    "override",
    [
        {"method": "ks"},
        {"threshold": 0.01},
        {"threshold": 2.0},  # a distance threshold, checked against the test that runs when the stage runs
        {"method": "wasserstein", "threshold": 1.5},
        {"method": "z", "threshold": 0.999},
    ],
)
def test_valid_column_overrides_load(raw, tmp_path, override):
    params = load_params(write_params(tmp_path, raw, lambda p: p["drift"]["columns"].update(x=override)))
    column = params.drift.columns["x"]
    assert (column.method, column.threshold) == (override.get("method"), override.get("threshold"))


@pytest.mark.parametrize(("method", "threshold"), [("ks", 1.0), ("chisquare", 1.0), ("z", 2.0)])
def test_a_p_value_override_at_or_above_one_is_refused(raw, tmp_path, method, threshold):
    edit = lambda p: p["drift"]["columns"].update(x={"method": method, "threshold": threshold})  # noqa: E731
    with pytest.raises(ConfigError, match=r"drift\.columns\.x: threshold is a p-value for"):
        load_params(write_params(tmp_path, raw, edit))


# Every bound of every numeric field, at the bound and one step past it

# dotted key, bound, "min" or "max", whether the bound itself is allowed
BOUNDS = [
    ("split.test_size", 0, "min", False),
    ("split.test_size", 1, "max", False),
    ("train.hist_gradient_boosting.learning_rate", 0, "min", False),
    ("train.hist_gradient_boosting.learning_rate", 1, "max", True),
    ("train.hist_gradient_boosting.max_iter", 1, "min", True),
    ("train.hist_gradient_boosting.max_iter", 100_000, "max", True),
    ("train.hist_gradient_boosting.max_leaf_nodes", 2, "min", True),
    ("train.hist_gradient_boosting.max_leaf_nodes", 65_536, "max", True),
    ("train.hist_gradient_boosting.l2_regularization", 0, "min", True),
    ("train.hist_gradient_boosting.l2_regularization", 1e6, "max", True),
    ("train.random_forest.n_estimators", 1, "min", True),
    ("train.random_forest.n_estimators", 10_000, "max", True),
    ("train.random_forest.max_depth", 1, "min", True),
    ("train.random_forest.max_depth", 1_000, "max", True),
    ("train.random_forest.min_samples_leaf", 1, "min", True),
    ("train.random_forest.min_samples_leaf", 1_000_000, "max", True),
    ("train.logistic_regression.C", 1e-6, "min", True),
    ("train.logistic_regression.C", 1e6, "max", True),
    ("train.logistic_regression.max_iter", 1, "min", True),
    ("train.logistic_regression.max_iter", 100_000, "max", True),
    ("train.ridge.alpha", 0, "min", True),
    ("train.ridge.alpha", 1e9, "max", True),
    ("train.max_rows", 100, "min", True),
    ("train.max_rows", 10**10, "max", True),
    ("evaluate.permutation_repeats", 1, "min", True),
    ("evaluate.permutation_repeats", 1_000, "max", True),
    ("evaluate.importance_rows", 10, "min", True),
    ("evaluate.importance_rows", 10**10, "max", True),
    ("evaluate.curve_points", 10, "min", True),
    ("evaluate.curve_points", 100_000, "max", True),
    ("drift.small_reference_rows", 1, "min", True),
    ("drift.small_reference_rows", 10**10, "max", True),
    ("drift.max_unique_for_discrete", 2, "min", True),
    ("drift.max_unique_for_discrete", 1_000_000, "max", True),
    ("drift.min_rows", 1, "min", True),
    ("drift.min_rows", 10**10, "max", True),
    ("drift.thresholds.ks", 0, "min", False),
    ("drift.thresholds.ks", 1, "max", False),  # a p-value: below 1
    ("drift.thresholds.chisquare", 1, "max", False),
    ("drift.thresholds.z", 1, "max", False),
    ("drift.thresholds.wasserstein", 0, "min", False),
    ("drift.thresholds.wasserstein", 1e6, "max", True),
    ("drift.thresholds.jensenshannon", 1e6, "max", True),
    ("drift.dataset_drift_share", 0, "min", False),
    ("drift.dataset_drift_share", 1, "max", True),
    ("drift.histogram_bins", 2, "min", True),
    ("drift.histogram_bins", 1_000, "max", True),
    ("drift.columns.x.threshold", 0, "min", False),
    ("drift.columns.x.threshold", 1e6, "max", True),
    ("gates.max_drift_share", 0, "min", True),
    ("gates.max_drift_share", 1, "max", True),
    ("gates.classification.regressions.roc_auc.max_drop", 0, "min", True),
    ("gates.classification.regressions.log_loss.max_rise", 0, "min", True),
    ("gates.regression.regressions.r2.max_drop", 0, "min", True),
    ("gates.regression.regressions.rmse.max_rise", 0, "min", True),
    ("predict.batch_rows", 1, "min", True),
    ("predict.batch_rows", 10_000_000, "max", True),
    ("serve.port", 1, "min", True),
    ("serve.port", 65_535, "max", True),
    ("serve.max_request_bytes", 1_024, "min", True),
    ("serve.max_request_bytes", 1_073_741_824, "max", True),
    ("serve.max_rows", 1, "min", True),
    ("serve.max_rows", 10_000_000, "max", True),
    ("serve.workers", 1, "min", True),
    ("serve.workers", 64, "max", True),
    ("retrain.max_drift_share", 0, "min", False),
    ("retrain.max_drift_share", 1, "max", True),
    ("retrain.max_metric_drop", 0, "min", True),
    ("retrain.max_metric_drop", 1e9, "max", True),
    ("retrain.min_labelled_rows", 0, "min", True),
    ("retrain.min_labelled_rows", 10**10, "max", True),
    ("retrain.max_model_age_days", 1, "min", True),
    ("retrain.max_model_age_days", 36_500, "max", True),
    ("retrain.data.rows", 1, "min", True),
    ("retrain.data.rows", 10**10, "max", True),
    ("retrain.data.days", 1, "min", True),
    ("retrain.data.days", 36_500, "max", True),
    ("monitor.window_days", 0, "min", False),
    ("monitor.window_days", 3_650, "max", True),
    ("canary.share", 0, "min", True),
    ("canary.share", 1, "max", True),
    ("canary.min_requests", 1, "min", True),
    ("canary.min_requests", 10**10, "max", True),
    ("canary.max_error_rate_increase", 0, "min", True),
    ("canary.max_error_rate_increase", 1, "max", True),
    ("canary.max_latency_p99_ratio", 1, "min", True),
    ("canary.max_latency_p99_ratio", 1_000, "max", True),
    ("canary.max_metric_drop", 0, "min", True),
    ("canary.max_metric_drop", 1e9, "max", True),
    ("canary.promote_after_requests", 1, "min", True),
    ("canary.promote_after_requests", 10**10, "max", True),
]
INTEGER_KEYS = {
    "max_iter",
    "workers",
    "max_leaf_nodes",
    "n_estimators",
    "max_depth",
    "min_samples_leaf",
    "permutation_repeats",
    "importance_rows",
    "curve_points",
    "small_reference_rows",
    "max_unique_for_discrete",
    "min_rows",
    "histogram_bins",
    "batch_rows",
    "port",
    "max_request_bytes",
    "max_rows",
    "min_labelled_rows",
    "max_model_age_days",
    "rows",
    "days",
    "min_requests",
    "promote_after_requests",
}


def step_past(bound: float, side: str, integer: bool) -> float:
    if integer:
        return bound - 1 if side == "min" else bound + 1
    return math.nextafter(float(bound), -math.inf if side == "min" else math.inf)


def load_with(raw: dict, tmp_path: Path, key: str, value: object):
    path = write_params(tmp_path, raw, lambda p: set_key(p, key, value))
    return load_params(path)


@pytest.mark.parametrize(("key", "bound", "side", "allowed"), BOUNDS, ids=[f"{k}-{s}" for k, _, s, _ in BOUNDS])
def test_every_bound_at_its_edge(raw, tmp_path, key, bound, side, allowed):
    integer = key.rsplit(".", 1)[-1] in INTEGER_KEYS
    at = int(bound) if integer else float(bound)
    past = step_past(bound, side, integer)
    inside = step_past(bound, "max" if side == "min" else "min", integer)
    error_key = key.rsplit(".", 1)[0] if key.startswith("drift.thresholds.") else key

    for value, ok in ((at, allowed), (past, False), (inside, True)):
        if ok:
            load_with(raw, tmp_path, key, value)
        else:
            with pytest.raises(ConfigError) as error:
                load_with(raw, tmp_path, key, value)
            assert error_key in str(error.value), (value, str(error.value))


def _bounded_fields(model: type[pydantic.BaseModel], prefix: str = "") -> set[str]:
    """Dotted names of every numeric field with a ge/gt/le/lt bound (dict values as `*`)."""
    found: set[str] = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if any(
            isinstance(m, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt)
            for m in field.metadata
        ):
            found.add(key)
        for inner in _types_in(field.annotation):
            if isinstance(inner, type) and issubclass(inner, pydantic.BaseModel):
                found |= _bounded_fields(inner, f"{key}.")
            elif typing.get_origin(inner) is dict:
                value_type = typing.get_args(inner)[1]
                if typing.get_origin(value_type) is typing.Annotated:
                    found.add(f"{key}.*")
                for nested in _types_in(value_type):
                    if isinstance(nested, type) and issubclass(nested, pydantic.BaseModel):
                        found |= _bounded_fields(nested, f"{key}.*.")
            elif typing.get_origin(inner) is typing.Annotated and any(
                isinstance(m, annotated_types.Ge | annotated_types.Gt | annotated_types.Le | annotated_types.Lt)
                for m in _constraints(typing.get_args(inner)[1:])
            ):
                found.add(key)
    return found


def _constraints(metadata) -> list:
    """annotated_types constraints, also those inside a pydantic Field(...) of an optional field."""
    return [m for item in metadata for m in (item.metadata if isinstance(item, pydantic.fields.FieldInfo) else [item])]


def _types_in(annotation) -> list:
    if typing.get_origin(annotation) in (typing.Union, type(int | None)):
        return [t for arg in typing.get_args(annotation) for t in _types_in(arg)]
    return [annotation]


def test_the_bounds_table_covers_every_bounded_field():
    def generic(key: str) -> str:
        parts = key.split(".")
        if key.startswith("drift.thresholds."):
            return "drift.thresholds.*"
        if key.startswith("drift.columns."):
            return "drift.columns.*." + parts[-1]
        if ".regressions." in key:
            return f"{'.'.join(parts[:3])}.*.{parts[-1]}"
        return key

    covered = {generic(key) for key, *_ in BOUNDS}
    bounded = _bounded_fields(Params)
    assert bounded - covered == set()
