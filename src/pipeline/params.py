"""params.yaml, loaded once into typed, validated objects.

Every knob lives in params.yaml; nothing here has a default that the file does
not show. A typo'd key, a duplicate key, a wrong type or an impossible value
stops the stage before it reads any data, with a message naming the key.
Numbers have upper bounds as well as lower ones: a `max_iter` of 10^20 is a
typo, not a wish, and would hang training.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError

PARAMS_FILE = Path("params.yaml")
MAX_ROWS = 10**10  # a row-count knob beyond this is a typo
MAX_WORKERS = 64  # server processes (serve.workers, serve --workers)


class Strict(BaseModel):
    """Base for every params section: unknown keys are errors, objects are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PathParams(Strict):
    """Every file the stages exchange; dvc.yaml reads the same keys as ${paths.*}."""

    raw_reference: str
    raw_current: str
    validated_reference: str
    validated_current: str
    validation_report: str
    train: str
    test: str
    model: str
    eval_dir: str
    drift_report: str
    drift_html: str
    drift_summary: str
    gates_report: str
    gates_summary: str
    predictions_reference: str
    predictions_current: str
    prediction_logs: str
    labelled_rows: str
    monitoring_report: str
    monitoring_summary: str
    monitoring_html: str


class IngestParams(Strict):
    current_study: str


class SplitParams(Strict):
    test_size: Annotated[float, Field(gt=0, lt=1)]
    seed: int


class LogisticRegressionParams(Strict):
    C: Annotated[float, Field(ge=1e-6, le=1e6)]
    max_iter: Annotated[int, Field(ge=1, le=100_000)]


class RidgeParams(Strict):
    alpha: Annotated[float, Field(ge=0, le=1e9)]


class RandomForestParams(Strict):
    n_estimators: Annotated[int, Field(ge=1, le=10_000)]
    max_depth: Annotated[int, Field(ge=1, le=1_000)] | None
    min_samples_leaf: Annotated[int, Field(ge=1, le=1_000_000)]


class HistGradientBoostingParams(Strict):
    learning_rate: Annotated[float, Field(gt=0, le=1)]
    max_iter: Annotated[int, Field(ge=1, le=100_000)]
    max_leaf_nodes: Annotated[int, Field(ge=2, le=65_536)]
    l2_regularization: Annotated[float, Field(ge=0, le=1e6)]


ModelName = Literal["hist_gradient_boosting", "random_forest", "logistic_regression", "ridge"]
CLASSIFIERS_ONLY = frozenset({"logistic_regression"})
REGRESSORS_ONLY = frozenset({"ridge"})


class TrainParams(Strict):
    model: ModelName
    seed: int
    max_rows: Annotated[int, Field(ge=100, le=MAX_ROWS)] | None
    hist_gradient_boosting: HistGradientBoostingParams
    random_forest: RandomForestParams
    logistic_regression: LogisticRegressionParams
    ridge: RidgeParams


class EvaluateParams(Strict):
    permutation_repeats: Annotated[int, Field(ge=1, le=1_000)]
    importance_rows: Annotated[int, Field(ge=10, le=MAX_ROWS)]
    curve_points: Annotated[int, Field(ge=10, le=100_000)]
    seed: int


class PredictParams(Strict):
    batch_rows: Annotated[int, Field(ge=1, le=10_000_000)]


class ServeParams(Strict):
    host: str
    port: Annotated[int, Field(ge=1, le=65_535)]
    max_request_bytes: Annotated[int, Field(ge=1_024, le=1_073_741_824)]
    max_rows: Annotated[int, Field(ge=1, le=10_000_000)]
    prediction_log: str | None
    workers: Annotated[int, Field(ge=1, le=MAX_WORKERS)] = 1  # absent from projects made before 0.3.0


class RetrainData(Strict):
    """How labelled rows from production join the reference before a retrain."""

    policy: Literal["append", "rolling_rows", "rolling_days"]
    rows: Annotated[int, Field(ge=1, le=MAX_ROWS)]
    days: Annotated[int, Field(ge=1, le=36_500)]


class RetrainParams(Strict):
    max_drift_share: Annotated[float, Field(gt=0, le=1)]
    max_metric_drop: Annotated[float, Field(ge=0, le=1e9)]
    min_labelled_rows: Annotated[int, Field(ge=0, le=MAX_ROWS)]
    max_model_age_days: Annotated[int, Field(ge=1, le=36_500)]
    event_file: str
    data: RetrainData


class MonitorParams(Strict):
    window_days: Annotated[float, Field(gt=0, le=3_650)]
    labels: str | None


class CanaryParams(Strict):
    share: Annotated[float, Field(ge=0, le=1)]
    mode: Literal["split", "shadow"]
    min_requests: Annotated[int, Field(ge=1, le=MAX_ROWS)]
    max_error_rate_increase: Annotated[float, Field(ge=0, le=1)]
    max_latency_p99_ratio: Annotated[float, Field(ge=1, le=1_000)]
    max_metric_drop: Annotated[float, Field(ge=0, le=1e9)]
    promote_after_requests: Annotated[int, Field(ge=1, le=MAX_ROWS)]
    auto_promote: bool


DriftMethod = Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon"]
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})  # drift when p is small; the others are distances


class ColumnDriftParams(Strict):
    """A per-column override of the test Evidently's defaults would pick, or of its threshold.

    A threshold alone applies to whichever test runs for the column; the drift
    core checks it against that test (a p-value threshold must be below 1).
    """

    method: DriftMethod | None = None
    threshold: Annotated[float, Field(gt=0, le=1e6)] | None = None

    @model_validator(mode="after")
    def _something_to_override(self) -> ColumnDriftParams:
        if self.method is None and self.threshold is None:
            raise ValueError("give a method, a threshold or both")
        if self.method in P_VALUE_METHODS and self.threshold is not None and self.threshold >= 1:
            raise ValueError(f"threshold is a p-value for {self.method} and must be below 1 (got {self.threshold})")
        return self


class DriftParams(Strict):
    small_reference_rows: Annotated[int, Field(ge=1, le=MAX_ROWS)]
    max_unique_for_discrete: Annotated[int, Field(ge=2, le=1_000_000)]
    min_rows: Annotated[int, Field(ge=1, le=MAX_ROWS)]
    thresholds: dict[DriftMethod, Annotated[float, Field(gt=0, le=1e6)]]
    dataset_drift_share: Annotated[float, Field(gt=0, le=1)]
    histogram_bins: Annotated[int, Field(ge=2, le=1_000)]
    columns: dict[str, ColumnDriftParams]

    @field_validator("thresholds")
    @classmethod
    def _every_method_has_a_threshold(cls, thresholds: dict) -> dict:
        missing = sorted(set(DriftMethod.__args__) - set(thresholds))
        if missing:
            raise ValueError(f"no threshold for {', '.join(missing)}")
        for method, threshold in thresholds.items():
            if method in P_VALUE_METHODS and threshold >= 1:
                raise ValueError(f"{method} is a p-value and its threshold must be below 1 (got {threshold})")
        return thresholds


class Bound(Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _a_bound(self) -> Bound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Regression(Strict):
    """How far a metric may move the wrong way against the baseline: drop for scores, rise for errors."""

    max_drop: Annotated[float, Field(ge=0)] | None = None
    max_rise: Annotated[float, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Regression:
        if (self.max_drop is None) == (self.max_rise is None):
            raise ValueError("give exactly one of max_drop (for scores) or max_rise (for errors)")
        return self


class TaskGates(Strict):
    """The gates of one task; only the section for the contract's task applies."""

    task: ClassVar[str]
    metrics: dict[str, Bound]
    regressions: dict[str, Regression]

    @model_validator(mode="after")
    def _known_metrics_in_the_right_direction(self) -> TaskGates:
        from pipeline.metrics import LOWER_IS_BETTER, METRICS

        known = METRICS[self.task]
        for section, entries in (("metrics", self.metrics), ("regressions", self.regressions)):
            for name in entries:
                if name not in known:
                    raise ValueError(f"{section}.{name}: no such {self.task} metric; they are {', '.join(known)}")
        for name, limit in self.regressions.items():
            if name in LOWER_IS_BETTER and limit.max_drop is not None:
                raise ValueError(f"regressions.{name}: lower is better for {name}, so limit it with max_rise")
            if name not in LOWER_IS_BETTER and limit.max_rise is not None:
                raise ValueError(f"regressions.{name}: higher is better for {name}, so limit it with max_drop")
        return self


class ClassificationGates(TaskGates):
    task = "classification"


class RegressionGates(TaskGates):
    task = "regression"


class GateParams(Strict):
    baseline: str
    max_drift_share: Annotated[float, Field(ge=0, le=1)]
    require_validation: bool
    classification: ClassificationGates
    regression: RegressionGates

    @field_validator("baseline")
    @classmethod
    def _a_revision_name(cls, baseline: str) -> str:
        if not REVISION.fullmatch(baseline):
            raise ValueError(f"{baseline!r} is not a git revision name (letters, digits and ._/-~^@ only)")
        return baseline

    def for_task(self, task: str) -> TaskGates:
        return self.classification if task == "classification" else self.regression


# What a revision may be called here: a branch, tag, sha or `HEAD~1`; nothing a shell would read specially.
REVISION = re.compile(r"(?!-)[A-Za-z0-9._/~^@-]{1,200}")


class Params(Strict):
    paths: PathParams
    ingest: IngestParams | None = None  # only with the sample data's ingest stage
    split: SplitParams
    train: TrainParams
    evaluate: EvaluateParams
    predict: PredictParams
    drift: DriftParams
    gates: GateParams
    serve: ServeParams
    monitor: MonitorParams
    retrain: RetrainParams
    canary: CanaryParams


def parse_params(raw: object, source: str = str(PARAMS_FILE)) -> Params:
    """Validate an already-parsed params mapping; every problem is named by its dotted key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        problems = "\n".join(_describe(e) for e in error.errors())
        raise ConfigError(f"{source} is invalid:\n{problems}") from None


def parse_gates(raw: object, source: str) -> GateParams:
    """A `gates:` section alone (the baseline's, for --gates-from baseline), validated as parse_params does."""
    try:
        return GateParams.model_validate(raw)
    except ValidationError as error:
        problems = "\n".join(_describe(e) for e in error.errors())
        raise ConfigError(f"{source} is invalid:\n{problems}") from None


def read_yaml(text: str, source: str) -> object:
    """YAML with duplicate keys refused, as DVC refuses them: the second value would silently win."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as error:
        raise ConfigError(f"{source} is not valid YAML: {error}") from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; the only place that opens it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; run from the project root") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} cannot be read: {error}") from None
    return parse_params(read_yaml(text, str(path)), str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Keys a template version renamed (CHANGELOG.md): a project that still has the old key is told where it went.
RENAMED = {
    "gates.metrics": "gates.classification.metrics or gates.regression.metrics (template 0.2.0: gates per task)",
    "gates.regressions": "gates.classification.regressions or gates.regression.regressions (template 0.2.0)",
}


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"] if not str(part).startswith(("function-", "constrained-")))
    key = key or "(top level)"
    if error["type"] == "extra_forbidden" and key in RENAMED:
        return f"  {key}: renamed; it is now {RENAMED[key]}"
    if error["type"] == "extra_forbidden":
        return f"  {key}: unknown key"
    if error["type"] == "missing":
        return f"  {key}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    shown = error["input"]
    return f"  {key}: {message}" if isinstance(shown, dict | list) else f"  {key}: {message} (got {shown!r})"


def main(argv: list[str] | None = None) -> int:
    """`python -m pipeline.params [FILE]`: check a params file (the pre-commit hook runs this)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m pipeline.params", description="Check params.yaml")
    parser.add_argument("file", nargs="?", default=str(PARAMS_FILE))
    load_params(Path(parser.parse_args(argv).file))
    return 0


if __name__ == "__main__":
    from pipeline.errors import run_main

    raise SystemExit(run_main(main))
