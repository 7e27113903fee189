"""The data contract: the one definition of the dataset every stage relies on.

To bring your own data, edit the `Contract` class and nothing else. Training,
drift tests and serving read the feature lists from `features_of`, which
derives them from the column types: numeric columns become numeric features,
string columns with an `isin` list become categorical features. Mark the target
and the id column with `metadata={"role": ...}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

TARGET = "target"
ID = "id"


class Contract(pa.DataFrameModel):
    """Palmer penguins (Gorman et al. 2014), one row per sampled adult penguin.

    The model predicts a bird's sex from its measurements, a classic task that
    field biologists need when sexing by DNA is not possible. For a binary
    target the positive class is the last allowed value ("male"). Ranges are
    generous physiological bounds, not the observed min and max, so that a
    plausible new bird passes and a unit mix-up (kg for g) does not.
    """

    sample_id: Series[str] = pa.Field(unique=True, str_matches=r"^\S+$", metadata={"role": ID})
    sex: Series[str] = pa.Field(isin=["female", "male"], metadata={"role": TARGET})
    species: Series[str] = pa.Field(isin=["Adelie", "Chinstrap", "Gentoo"])
    island: Series[str] = pa.Field(isin=["Biscoe", "Dream", "Torgersen"])
    clutch_completion: Series[str] = pa.Field(isin=["No", "Yes"])
    culmen_length_mm: Series[float] = pa.Field(ge=25, le=70, nullable=True)
    culmen_depth_mm: Series[float] = pa.Field(ge=10, le=25, nullable=True)
    flipper_length_mm: Series[float] = pa.Field(ge=150, le=250, nullable=True)
    body_mass_g: Series[float] = pa.Field(ge=2000, le=7000, nullable=True)
    delta_15n: Series[float] = pa.Field(ge=5, le=12, nullable=True)
    delta_13c: Series[float] = pa.Field(ge=-30, le=-20, nullable=True)

    class Config:
        strict = True
        coerce = True


@dataclass(frozen=True)
class Features:
    """What the model sees, derived from a schema; categories keep the contract's order."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    target: str
    target_classes: tuple[str, ...]
    id: str | None

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    @property
    def positive_class(self) -> str:
        """For a binary target, the class metrics call positive: the contract's last allowed value."""
        return self.target_classes[-1]


def schema() -> pa.DataFrameSchema:
    return Contract.to_schema()


def features_of(contract: pa.DataFrameSchema) -> Features:
    """Split a schema's columns into numeric and categorical features, target and id."""
    numeric: list[str] = []
    categorical: list[str] = []
    categories: dict[str, tuple[str, ...]] = {}
    roles: dict[str, str] = {}
    for name, column in contract.columns.items():
        role = (column.metadata or {}).get("role")
        if role is not None:
            roles[role] = name
            if role == TARGET:
                categories[name] = _allowed_values(name, column)
            continue
        if pd.api.types.is_numeric_dtype(column.dtype.type):
            numeric.append(name)
        else:
            categorical.append(name)
            categories[name] = _allowed_values(name, column)
    if TARGET not in roles:
        raise ValueError('the contract marks no column with metadata={"role": "target"}')
    target = roles[TARGET]
    return Features(
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        categories={k: v for k, v in categories.items() if k != target},
        target=target,
        target_classes=categories[target],
        id=roles.get(ID),
    )


def _allowed_values(name: str, column: pa.Column) -> tuple[str, ...]:
    for check in column.checks:
        if check.name == "isin":
            return tuple(check.statistics["allowed_values"])
    raise ValueError(f"contract column {name!r} is categorical but has no isin=[...] list of allowed values")
