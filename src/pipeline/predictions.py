"""What a prediction looks like, wherever it is made: batch scoring, the HTTP app, the pipeline.

One row per input row: the contract's id column (when it has one), the
`prediction` (a class, or a number for regression), one `proba_<class>`
column per class for classification, and the `model_version`. The classes'
order travels with the file (parquet metadata), so readers such as the drift
stage and the monitor rebuild the probability matrix without loading the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from pipeline.features import Features

PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
VERSION = "model_version"
CLASSES_KEY = b"ratchet:classes"


def proba_column(cls: object) -> str:
    return f"{PROBA_PREFIX}{cls}"


def predict_arrays(model: Pipeline, frame: pd.DataFrame, features: Features) -> tuple[np.ndarray, np.ndarray | None]:
    """The predictions and, for classification, the probabilities (a column per class, in model.classes_ order)."""
    import numpy as np

    from pipeline.metrics import predicted_labels

    X = frame if selects_by_name(model) else frame[features.columns]
    if features.is_classification:
        proba = model.predict_proba(X)
        return predicted_labels(proba, list(model.classes_)), proba
    return np.asarray(model.predict(X), dtype="float64"), None


def selects_by_name(model: Pipeline) -> bool:
    """Whether the model picks its columns by name itself (train's pipeline: a ColumnTransformer first, the rest
    dropped), so a frame with more columns, in any order, gets the same predictions without a copy of the
    feature columns first (1 ms of a request, a copy of each batch)."""
    from sklearn.compose import ColumnTransformer

    steps = getattr(model, "steps", None)
    first = steps[0][1] if steps else None
    return (
        isinstance(first, ColumnTransformer)
        and first.remainder == "drop"
        and all(isinstance(name, str) for name in getattr(first, "feature_names_in_", [None]))
    )


def score(model: Pipeline, frame: pd.DataFrame, features: Features, version: str) -> pd.DataFrame:
    """Predictions for every row of a frame that passed the contract."""
    predicted, proba = predict_arrays(model, frame, features)
    return scored_frame(frame, features, version, predicted, proba, list(getattr(model, "classes_", [])))


def scored_frame(
    frame: pd.DataFrame,
    features: Features,
    version: str,
    predicted: np.ndarray,
    proba: np.ndarray | None,
    classes: Sequence,
) -> pd.DataFrame:
    """The prediction frame of `predict_arrays`' answer: id, prediction, probabilities, model version."""
    import numpy as np
    import pandas as pd

    columns: dict[str, object] = {}
    if features.id and features.id in frame.columns:
        columns[features.id] = frame[features.id].to_numpy()
    columns[PREDICTION] = predicted
    if proba is not None:
        for i, cls in enumerate(classes):
            columns[proba_column(cls)] = proba[:, i]
    columns[VERSION] = np.full(len(frame), version, dtype=object)
    return pd.DataFrame(columns).astype({VERSION: "str"})


def classes_of(model: Pipeline) -> list:
    return [c.item() if hasattr(c, "item") else c for c in getattr(model, "classes_", [])]


def proba_matrix(predictions: pd.DataFrame, classes: Sequence) -> np.ndarray:
    return predictions[[proba_column(c) for c in classes]].to_numpy(dtype="float64")


def schema_metadata(classes: Sequence) -> dict[bytes, bytes]:
    return {CLASSES_KEY: json.dumps(list(classes)).encode()}


def write_predictions(frame: pd.DataFrame, path: str | Path, classes: Sequence) -> None:
    """A whole (small) prediction frame as parquet, with its classes in the metadata."""
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.files import output_dir

    path = Path(path)
    output_dir(path.parent)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **schema_metadata(classes)})
    pq.write_table(table, path)


def read_predictions(path: str | Path) -> tuple[pd.DataFrame, list]:
    """A prediction file and its classes (empty for regression)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run `dvc repro` first") from None
    except (pa.ArrowException, OSError) as error:
        raise PipelineError(f"{path}: cannot be read as parquet: {error}") from None
    raw = (table.schema.metadata or {}).get(CLASSES_KEY, b"[]")
    classes = json.loads(raw)
    missing = [name for name in (PREDICTION, *(proba_column(c) for c in classes)) if name not in table.column_names]
    if missing:
        raise PipelineError(f"{path}: lacks {', '.join(missing)}; run `dvc repro -f` to write it again")
    return table.to_pandas(), classes
