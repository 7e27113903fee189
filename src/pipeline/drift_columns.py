"""Per-column drift verdicts and the dataset verdict: numpy, pandas and scipy only.

Kept apart from the drift stage (which also loads the model and validates
files) so that the core imports quickly and can run on any two frames, as
the benchmark does.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.drift_stats import CATEGORICAL, METHODS, NUMERIC, NUMERIC_ONLY, default_method
from pipeline.errors import ConfigError, PipelineError
from pipeline.params import DriftParams

if TYPE_CHECKING:
    from pipeline.features import Features


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    method: str | None
    statistic: str | None
    value: float | None
    threshold: float | None
    drifted: bool
    reference_rows: int
    current_rows: int
    note: str | None = None
    distribution: dict | None = None  # bins or categories with each sample's share, for the HTML report
    judged: bool = True  # False: too few values for a verdict; left out of the dataset's share

    @property
    def severity(self) -> float:
        """How far past (above 1) or short of (below 1) its threshold a column is, comparable across methods."""
        if self.value is None or self.threshold is None:
            return float("inf") if self.drifted else 0.0
        if self.statistic == "distance":
            return self.value / self.threshold
        return float(np.log(max(self.value, 1e-300)) / np.log(self.threshold))


def column_drift(name: str, reference: pd.Series, current: pd.Series, kind: str, params: DriftParams) -> ColumnDrift:
    """One column's verdict; nulls and infinities are dropped first, as Evidently does."""
    ref, cur, labels = _clean(reference, current, kind)
    if len(ref) == 0 or len(cur) == 0:
        where = " and ".join(side for side, values in (("reference", ref), ("current", cur)) if len(values) == 0)
        moved = (len(ref) == 0) != (len(cur) == 0)  # a column that empties (or fills) has moved
        return ColumnDrift(
            name, kind, None, None, None, None, moved, len(ref), len(cur), f"no non-null values in {where}", None, moved
        )
    if min(len(ref), len(cur)) < params.min_rows:
        note = (
            f"too few values for a verdict: {len(ref)} reference, {len(cur)} current "
            f"(drift.min_rows is {params.min_rows})"
        )
        return ColumnDrift(name, kind, None, None, None, None, False, len(ref), len(cur), note, None, False)
    override = params.columns.get(name)
    method_name = override.method if override and override.method else None
    method_name = method_name or default_method(
        ref, cur, kind, params.small_reference_rows, params.max_unique_for_discrete
    )
    if kind == CATEGORICAL and method_name in NUMERIC_ONLY:
        raise ConfigError(
            f"params.yaml: drift.columns.{name}.method: {method_name} compares numbers, but {name!r} is "
            "categorical; use chisquare, z or jensenshannon"
        )
    method = METHODS[method_name]
    threshold = override.threshold if override and override.threshold is not None else None
    if threshold is None:
        threshold = params.thresholds[method_name]
    elif method.statistic == "p_value" and threshold >= 1:
        raise ConfigError(
            f"params.yaml: drift.columns.{name}.threshold: {threshold} is not below 1, but the test that runs for "
            f"{name!r} is {method_name}, a p-value test, so every value would count as drift"
        )
    value = method.run(ref, cur, kind)
    return ColumnDrift(
        name,
        kind,
        method_name,
        method.statistic,
        value,
        threshold,
        bool(method.drifted(value, threshold)),
        len(ref),
        len(cur),
        _note(ref, cur, labels),
        distribution(ref, cur, labels, params.histogram_bins),
    )


def check_overrides(params: DriftParams, columns: Iterable[str]) -> None:
    """Every per-column override names a column the drift check compares; a typo is an error, not a no-op."""
    known = set(columns)
    unknown = sorted(set(params.columns) - known)
    if unknown:
        raise ConfigError(
            f"params.yaml: drift.columns: {', '.join(unknown)} is not a column the drift check compares "
            f"({', '.join(sorted(known))})"
        )


def _clean(reference: pd.Series, current: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Both samples without nulls and infinities; categories become integer codes into `labels`.

    Codes let every test count and compare values in numpy without turning a
    million strings into Python objects; the tests only ever count categories.
    """
    if kind == NUMERIC:
        ref, cur = (_finite(s.to_numpy(dtype="float64", na_value=np.nan)) for s in (reference, current))
        return ref, cur, None
    ref, ref_labels = pd.factorize(reference)
    cur, cur_labels = pd.factorize(current)
    # One code space for both: the reference's categories, then those only the current batch has.
    labels = pd.Index(ref_labels).append(pd.Index(cur_labels).difference(ref_labels, sort=False))
    if len(cur_labels):
        cur = np.where(cur >= 0, labels.get_indexer(cur_labels)[cur], -1)  # -1 marks a null
    return ref[ref >= 0], cur[cur >= 0], np.asarray(labels, dtype=object)


def _finite(values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]  # no copy of a million clean values


def _note(ref: np.ndarray, cur: np.ndarray, labels: np.ndarray | None) -> str | None:
    if labels is not None:
        unseen = sorted(str(labels[code]) for code in set(np.unique(cur)) - set(np.unique(ref)))
        if unseen:
            return "values not seen in reference: " + ", ".join(unseen[:5])
    if ref.min() == ref.max():
        return "constant in reference"
    return None


def distribution(ref: np.ndarray, cur: np.ndarray, labels: np.ndarray | None, bins: int) -> dict:
    """Share of each sample per histogram bin (numeric) or per category (the 20 most common)."""
    if labels is None:
        edges = np.histogram_bin_edges([min(ref.min(), cur.min()), max(ref.max(), cur.max())], bins=bins)
        names = [f"{a:.4g} to {b:.4g}" for a, b in pairwise(edges)]
        shares = [np.histogram(x, edges)[0] / len(x) for x in (ref, cur)]
    else:
        counts = [np.bincount(x, minlength=len(labels)) for x in (ref, cur)]
        top = sorted(range(len(labels)), key=lambda i: (-counts[0][i], -counts[1][i], str(labels[i])))[:20]
        names = [str(labels[i]) for i in top]
        shares = [c[top] / c.sum() for c in counts]
    return {"labels": names, "reference": _rounded(shares[0]), "current": _rounded(shares[1])}


def _rounded(shares: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in shares]


def dataset_drift(
    reference: pd.DataFrame, current: pd.DataFrame, kinds: Mapping[str, str], params: DriftParams
) -> tuple[list[ColumnDrift], dict]:
    """Every column's verdict, most drifted first, and the dataset verdict from the share of drifted columns.

    Only columns with a verdict count; when none has one, the dataset has no
    verdict either (`drifted` and `share` are None) and the report says why.
    """
    check_overrides(params, kinds)
    for side, frame in (("reference", reference), ("current batch", current)):
        if frame.empty:
            raise PipelineError(f"the {side} has no rows; there is nothing to compare")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # numpy sorts release the GIL
        columns = list(
            pool.map(
                lambda item: column_drift(item[0], reference[item[0]], current[item[0]], item[1], params), kinds.items()
            )
        )
    return judge_dataset(columns, len(reference), len(current), params)


def judge_dataset(
    columns: list[ColumnDrift], reference_rows: int, current_rows: int, params: DriftParams
) -> tuple[list[ColumnDrift], dict]:
    """The columns most drifted first, and the dataset verdict: one rule, wherever the columns were compared."""
    columns = sorted(columns, key=lambda c: (-c.severity, c.column))
    judged = [c for c in columns if c.judged]
    drifted = sum(c.drifted for c in judged)
    share = drifted / len(judged) if judged else None
    verdict = {
        "columns": len(judged),
        "drifted_columns": drifted,
        "share": share,
        "threshold": params.dataset_drift_share,
        "drifted": None if share is None else share >= params.dataset_drift_share,
        "note": None
        if judged
        else f"no column has enough values for a verdict: {reference_rows} reference rows, {current_rows} current "
        f"rows (drift.min_rows is {params.min_rows})",
    }
    return columns, verdict


def report_of(columns: list[ColumnDrift], verdict: dict, reference_rows: int, current_rows: int) -> dict:
    """The report's feature part; the drift stage adds target, prediction and performance."""
    return {
        "reference_rows": reference_rows,
        "current_rows": current_rows,
        "dataset": verdict,
        "columns": [as_dict(c) for c in columns],
        "target": None,
        "prediction": None,
        "performance": None,
    }


def as_dict(column: ColumnDrift) -> dict:
    return {**asdict(column), "severity": round(column.severity, 6) if np.isfinite(column.severity) else None}


def feature_report(
    reference: pd.DataFrame, current: pd.DataFrame, kinds: Mapping[str, str], params: DriftParams
) -> dict:
    """The report's feature part for two frames in memory."""
    columns, verdict = dataset_drift(reference, current, kinds, params)
    return report_of(columns, verdict, len(reference), len(current))


def feature_kinds(features: Features) -> dict[str, str]:
    return {**dict.fromkeys(features.numeric, NUMERIC), **dict.fromkeys(features.categorical, CATEGORICAL)}


def target_kind(features: Features) -> str:
    return CATEGORICAL if features.is_classification else NUMERIC
