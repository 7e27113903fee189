"""params.yaml, loaded once into typed, validated objects.

Every knob lives in params.yaml; nothing here has a default that the file does
not show. A typo'd key, a wrong type or an impossible value stops the stage
before it reads any data, with a message naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pipeline.errors import ConfigError

PARAMS_FILE = Path("params.yaml")


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


class IngestParams(Strict):
    current_study: str


class SplitParams(Strict):
    test_size: Annotated[float, Field(gt=0, lt=1)]
    seed: int


class LogisticRegressionParams(Strict):
    C: Annotated[float, Field(gt=0)]
    max_iter: Annotated[int, Field(ge=1)]


class RandomForestParams(Strict):
    n_estimators: Annotated[int, Field(ge=1)]
    max_depth: Annotated[int, Field(ge=1)] | None
    min_samples_leaf: Annotated[int, Field(ge=1)]


class HistGradientBoostingParams(Strict):
    learning_rate: Annotated[float, Field(gt=0)]
    max_iter: Annotated[int, Field(ge=1)]
    max_leaf_nodes: Annotated[int, Field(ge=2)]
    l2_regularization: Annotated[float, Field(ge=0)]


ModelName = Literal["logistic_regression", "random_forest", "hist_gradient_boosting"]


class TrainParams(Strict):
    model: ModelName
    seed: int
    logistic_regression: LogisticRegressionParams
    random_forest: RandomForestParams
    hist_gradient_boosting: HistGradientBoostingParams


class EvaluateParams(Strict):
    permutation_repeats: Annotated[int, Field(ge=1)]
    seed: int


DriftMethod = Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon"]
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})  # drift when p is small; the others are distances


class ColumnDriftParams(Strict):
    """A per-column override of the test Evidently's defaults would pick, or of its threshold."""

    method: DriftMethod | None = None
    threshold: Annotated[float, Field(gt=0)] | None = None


class DriftParams(Strict):
    small_reference_rows: Annotated[int, Field(ge=1)]
    max_unique_for_discrete: Annotated[int, Field(ge=2)]
    thresholds: dict[DriftMethod, Annotated[float, Field(gt=0)]]
    dataset_drift_share: Annotated[float, Field(gt=0, le=1)]
    histogram_bins: Annotated[int, Field(ge=2)]
    columns: dict[str, ColumnDriftParams]

    @model_validator(mode="after")
    def _p_value_thresholds_below_one(self) -> DriftParams:
        for method, threshold in self.thresholds.items():
            if method in P_VALUE_METHODS and threshold >= 1:
                raise ValueError(f"thresholds.{method} is a p-value and must be below 1 (got {threshold})")
        for name, column in self.columns.items():
            if column.threshold is not None and column.threshold >= 1 and column.method in P_VALUE_METHODS:
                raise ValueError(f"columns.{name}.threshold is a p-value and must be below 1 (got {column.threshold})")
        return self


class Bound(Strict):
    min: float | None = None
    max: float | None = None


class Regression(Strict):
    max_drop: Annotated[float, Field(ge=0)] | None = None
    max_rise: Annotated[float, Field(ge=0)] | None = None


class GateParams(Strict):
    baseline: str
    metrics: dict[str, Bound]
    regressions: dict[str, Regression]
    max_drift_share: Annotated[float, Field(ge=0, le=1)]
    require_validation: bool


class Params(Strict):
    paths: PathParams
    ingest: IngestParams
    split: SplitParams
    train: TrainParams
    evaluate: EvaluateParams
    drift: DriftParams
    gates: GateParams


def parse_params(raw: object, source: str = str(PARAMS_FILE)) -> Params:
    """Validate an already-parsed params mapping; every problem is named by its dotted key."""
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        problems = "\n".join(_describe(e) for e in error.errors())
        raise ConfigError(f"{source} is invalid:\n{problems}") from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    """Read and validate params.yaml; the only place that opens it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found; run from the project root") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} cannot be read: {error}") from None
    return parse_params(raw, str(path))


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"  {key}: unknown key"
    if error["type"] == "missing":
        return f"  {key}: required key is missing"
    return f"  {key}: {error['msg']} (got {error['input']!r})"
