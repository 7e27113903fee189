"""Real datasets shipped inside scikit-learn, as a user would bring them to a new project.

One per task: breast cancer (binary, text classes with an explicit positive
class), wine (three integer classes, under 1,000 rows, so the small-sample
drift tests run) and diabetes (regression). Each comes as the two CSV files
the README's quick start copies into data/raw/, and the `Contract` class a
user would write for it: the real column names (spaces and slashes kept, with
pandera aliases), generous ranges, an id column, the target's role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn import datasets

KINDS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class Shipped:
    kind: str
    reference: pd.DataFrame
    current: pd.DataFrame
    contract: str  # the whole text of src/pipeline/contract.py


def load(kind: str) -> Shipped:
    loader, target_line, classes = {
        "binary": (
            datasets.load_breast_cancer,
            'diagnosis: Series[str] = pa.Field(isin=["benign", "malignant"], '
            'metadata={"role": "target", "positive": "malignant"})',
            ["malignant", "benign"],
        ),
        "multiclass": (
            datasets.load_wine,
            'cultivar: Series[int] = pa.Field(isin=[0, 1, 2], metadata={"role": "target"})',
            None,
        ),
        "regression": (
            datasets.load_diabetes,
            'progression: Series[float] = pa.Field(ge=0, le=500, metadata={"role": "target"})',
            None,
        ),
    }[kind]
    bunch = loader(as_frame=True)
    frame = bunch.frame.copy()
    target_name = target_line.split(":", 1)[0]
    frame = frame.rename(columns={"target": target_name})
    if classes is not None:
        frame[target_name] = np.asarray(classes, dtype=object)[frame[target_name].to_numpy()]
    frame.insert(0, "record_id", [f"R{i:05d}" for i in range(len(frame))])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(frame))
    cut = int(len(frame) * 0.8)
    reference = frame.iloc[np.sort(order[:cut])].reset_index(drop=True)
    current = frame.iloc[np.sort(order[cut:])].reset_index(drop=True)
    features = [name for name in frame.columns if name not in ("record_id", target_name)]
    return Shipped(kind, reference, current, contract_text(kind, frame, features, target_line))


def identifier(name: str) -> str:
    text = re.sub(r"\W+", "_", name).strip("_").lower()
    return text if text and not text[0].isdigit() else f"c_{text}"


def contract_text(kind: str, frame: pd.DataFrame, features: list[str], target_line: str) -> str:
    lines = [
        '"""The data contract: the one definition of the dataset every stage relies on."""',
        "",
        "from __future__ import annotations",
        "",
        "import pandera.pandas as pa",
        "from pandera.typing import Series",
        "",
        "",
        "class Contract(pa.DataFrameModel):",
        f'    """scikit-learn\'s {kind} sample, brought in as a user would."""',
        "",
        '    record_id: Series[str] = pa.Field(unique=True, str_matches=r"^R\\d{5}$", metadata={"role": "id"})',
        f"    {target_line}",
    ]
    for name in features:
        low, high = float(frame[name].min()), float(frame[name].max())
        margin = (high - low) * 0.5 or 1.0
        alias = f", alias={name!r}" if identifier(name) != name else ""
        lines.append(
            f"    {identifier(name)}: Series[float] = pa.Field(ge={low - margin:.6g}, le={high + margin:.6g}{alias})"
        )
    lines += ["", "    class Config:", "        strict = True", "        coerce = True", ""]
    return "\n".join(lines)
