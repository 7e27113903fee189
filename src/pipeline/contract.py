"""The data contract: the one definition of the dataset every stage relies on.

To bring your own data, edit the `Contract` class and nothing else:

- one attribute per column, with its type (`Series[float]`, `Series[int]`,
  `Series[str]`, `Series[bool]`; a boolean with nulls is
  `Series[pd.BooleanDtype]`) and checks (`ge`, `le`, `isin`, `nullable`,
  `unique`, `str_matches`, ...);
- the target column gets `metadata={"role": "target"}`. With an `isin=[...]`
  list of classes the project is a classification project; a numeric target
  without one makes it a regression project. A binary target also names its
  positive class: `metadata={"role": "target", "positive": "yes"}` (0/1 and
  boolean targets may leave it out: 1 and True);
- an id column gets `metadata={"role": "id"}`, and a column to keep but not
  learn from `metadata={"role": "ignore"}`.

Every other column is a feature: numbers are numeric features, columns with
`isin` or text columns are categorical. Training, drift tests, the report and
serving all read that split from `pipeline.features.features_of`.
"""

from __future__ import annotations

import pandera.pandas as pa
from pandera.typing import Series


class Contract(pa.DataFrameModel):
    """Palmer penguins (Gorman et al. 2014), one row per sampled adult penguin.

    The model predicts a bird's sex from its measurements, a classic task that
    field biologists need when sexing by DNA is not possible. Ranges are
    generous physiological bounds, not the observed min and max, so that a
    plausible new bird passes and a unit mix-up (kg for g) does not.
    """

    sample_id: Series[str] = pa.Field(unique=True, str_matches=r"^\S+$", metadata={"role": "id"})
    sex: Series[str] = pa.Field(isin=["female", "male"], metadata={"role": "target", "positive": "male"})
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
