"""What the pipeline reads from the data contract: features, target, task and id.

`contract.py` holds only the user's `Contract` class, so template updates that
improve how a contract is read reach every project. Everything a stage, the
report or the server needs to know about the columns comes from `features_of`:

- a column's `metadata={"role": ...}` marks the target, the id, when a row was
  observed (`"time"`, for a rolling retrain window) or a column to keep but not
  learn from (`"ignore"`);
- the target decides the task: a target with an `isin=[...]` list of classes
  (or a boolean target) is classification, a numeric target without one is
  regression;
- a binary target's positive class is explicit (`"positive": ...` in its
  metadata); only 0/1 and boolean targets may leave it out (1 and True);
- other columns with `isin` are categorical features with those categories,
  numeric columns are numeric features, and text columns without `isin` are
  categorical features whose categories are learned from the training data.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    import pandera.pandas as pa

CONTRACT_FILE = "src/pipeline/contract.py"
TARGET, ID, IGNORE, TIME = "target", "id", "ignore", "time"
ROLES = (TARGET, ID, IGNORE, TIME)
CLASSIFICATION, REGRESSION = "classification", "regression"


@dataclass(frozen=True)
class Features:
    """What the model sees and predicts, derived from a schema; categories keep the contract's order."""

    task: str  # CLASSIFICATION or REGRESSION
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: Mapping[str, tuple | None]  # allowed values; None: learned from the training data
    target: str
    target_classes: tuple = ()  # classification: the contract's classes, in its order
    positive_class: object = None  # binary classification only
    id: str | None = None
    ignored: tuple[str, ...] = field(default=())
    time: str | None = None  # when a row was observed: what a rolling_days retrain window keeps
    # numeric features of a pandas type with a null of its own (pd.NA: BooleanDtype, Int64, ...)
    nullable_extension: tuple[str, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def is_classification(self) -> bool:
        return self.task == CLASSIFICATION

    @property
    def is_binary(self) -> bool:
        return self.is_classification and len(self.target_classes) == 2

    def identity(self) -> dict:
        """What a metric depends on besides the model: task, target and classes (JSON-ready)."""
        return {
            "task": self.task,
            "target": self.target,
            "classes": [_jsonable(c) for c in self.target_classes],
            "positive": _jsonable(self.positive_class),
        }


def contract_schema() -> pa.DataFrameSchema:
    """The project's `Contract` as a pandera schema; a contract that does not load is a config error."""
    try:
        with _pandas_annotations_only():
            from pipeline.contract import Contract

            return Contract.to_schema()
    except Exception as error:  # the user's own code: any failure is theirs to fix, said in one line
        reason = f"{type(error).__name__}: {error}"
        raise ConfigError(f"{CONTRACT_FILE}: the Contract class does not load: {reason}") from None


@contextmanager
def _pandas_annotations_only() -> Iterator[None]:
    """While the contract's schema is built, pandera does not look for Dask's annotation types.

    To recognise `Series[...]` annotations, pandera imports `pandera.typing.dask`,
    which imports dask.dataframe (about a second) whenever dask is installed (the
    `scale` extra), in every stage. The contract is a pandas model, so for that one
    call pandera sees a stand-in saying Dask is absent; its annotation lookups are
    cached, so a pandera model with Dask types cannot be built later in the same
    process. Nothing here builds one: the Dask path checks pandas partitions.
    """
    import sys
    import types

    name = "pandera.typing.dask"
    if name in sys.modules or "dask.dataframe" in sys.modules:  # already paid for: nothing to save
        yield
        return
    stand_in = types.ModuleType(name)
    stand_in.DASK_INSTALLED = False
    sys.modules[name] = stand_in
    try:
        yield
    finally:
        if sys.modules.get(name) is stand_in:
            del sys.modules[name]


def features_of(contract: pa.DataFrameSchema) -> Features:
    """Split a schema's columns into numeric and categorical features, target, id and ignored columns."""
    import numpy as np

    roles: dict[str, list[str]] = {role: [] for role in ROLES}
    numeric: list[str] = []
    categorical: list[str] = []
    nullable_extension: list[str] = []
    categories: dict[str, tuple | None] = {}
    for name, column in contract.columns.items():
        if column.nullable and _numpy_bool(column):
            raise ConfigError(
                f"{CONTRACT_FILE}: column {name!r} is a nullable bool, but numpy's bool has no null: coercing "
                "would turn every missing value into False. Use Series[pd.BooleanDtype] (pandas' boolean with "
                "nulls) for it, or drop nullable=True"
            )
        role = (column.metadata or {}).get("role")
        if role is not None:
            if role not in ROLES:
                raise ConfigError(f"{CONTRACT_FILE}: column {name!r} has role {role!r}; roles are {', '.join(ROLES)}")
            roles[role].append(name)
            continue
        kind = column_kind(name, column)
        (numeric if kind == "numeric" else categorical).append(name)
        if kind == "numeric" and column.nullable and not isinstance(column.dtype.type, np.dtype):
            nullable_extension.append(name)
        if kind == "categorical":
            categories[name] = allowed_values(column)
    for role in (TARGET, ID, TIME):
        if len(roles[role]) > 1:
            raise ConfigError(f"{CONTRACT_FILE}: more than one column has role {role!r}: {', '.join(roles[role])}")
    if not roles[TARGET]:
        raise ConfigError(f'{CONTRACT_FILE}: no column is marked as the target with metadata={{"role": "target"}}')
    target = roles[TARGET][0]
    if not numeric and not categorical:
        raise ConfigError(f"{CONTRACT_FILE}: no feature columns: every column is the target, the id or ignored")
    task, classes = _task(target, contract.columns[target])
    return Features(
        task=task,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        categories=categories,
        target=target,
        target_classes=classes,
        positive_class=_positive(target, contract.columns[target], classes),
        id=roles[ID][0] if roles[ID] else None,
        ignored=tuple(roles[IGNORE]),
        time=roles[TIME][0] if roles[TIME] else None,
        nullable_extension=tuple(nullable_extension),
    )


def _numpy_bool(column: pa.Column) -> bool:
    import numpy as np

    return column.dtype is not None and isinstance(column.dtype.type, np.dtype) and column.dtype.type.kind == "b"


def column_kind(name: str, column: pa.Column) -> str:
    """ "numeric" or "categorical" for a feature column; other types cannot be learned from."""
    import pandas as pd

    dtype = column.dtype.type if column.dtype is not None else None
    if dtype is None:
        raise ConfigError(f"{CONTRACT_FILE}: column {name!r} has no type; give it one, e.g. Series[float]")
    if allowed_values(column) is not None:
        return "categorical"
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "categorical"
    raise ConfigError(
        f"{CONTRACT_FILE}: column {name!r} has type {column.dtype}, which the model cannot learn from; "
        'convert it to a number or text, or keep it out of the features with metadata={"role": "ignore"}'
    )


def allowed_values(column: pa.Column) -> tuple | None:
    """The column's `isin` list, in the contract's order; None when it has none."""
    for check in column.checks:
        if check.name == "isin":
            return tuple(check.statistics["allowed_values"])
    return None


def _task(name: str, column: pa.Column) -> tuple[str, tuple]:
    import pandas as pd

    classes = allowed_values(column)
    dtype = column.dtype.type if column.dtype is not None else None
    if classes is None and dtype is not None and pd.api.types.is_bool_dtype(dtype):
        classes = (False, True)
    if classes is not None:
        if len(classes) < 2:
            raise ConfigError(f"{CONTRACT_FILE}: the target {name!r} lists {len(classes)} class; it needs at least 2")
        return CLASSIFICATION, classes
    if dtype is not None and pd.api.types.is_numeric_dtype(dtype):
        return REGRESSION, ()
    raise ConfigError(
        f"{CONTRACT_FILE}: the target {name!r} is text without isin=[...]: list its classes for classification, "
        "or make it a number (Series[float]) for regression"
    )


def _positive(name: str, column: pa.Column, classes: tuple) -> object:
    metadata = column.metadata or {}
    given = "positive" in metadata
    if len(classes) != 2:
        if given:
            kind = "a numeric (regression)" if not classes else f"a {len(classes)}-class"
            raise ConfigError(
                f'{CONTRACT_FILE}: the target {name!r} is {kind} target; "positive" applies to binary targets only'
            )
        return None
    if given:
        matches = [c for c in classes if c == metadata["positive"] or str(c) == str(metadata["positive"])]
        if len(matches) != 1:
            raise ConfigError(
                f"{CONTRACT_FILE}: the target {name!r} has positive {metadata['positive']!r}, "
                f"which is not one of its classes {list(classes)}"
            )
        return matches[0]
    truthy = [c for c in classes if not isinstance(c, str) and c == 1]
    if len(truthy) == 1 and all(not isinstance(c, str) and c in (0, 1) for c in classes):
        return truthy[0]
    raise ConfigError(
        f"{CONTRACT_FILE}: the binary target {name!r} needs its positive class, the one metrics such as "
        f'ROC AUC and F1 score: metadata={{"role": "target", "positive": ...}} with one of {list(classes)}'
    )


def _jsonable(value: object) -> object:
    """A class label as JSON keeps it: numpy scalars become Python ones."""
    return value.item() if hasattr(value, "item") else value
