"""Drift: has the production data moved away from what the model learned from?

Compares the reference (the training split) with the current batch, column by
column, with the test Evidently's DataDriftPreset would pick for the column's
kind in the contract (see drift_tests.py). Also reports drift of the target and
of the model's predictions and, when the batch carries labels, the model's
metrics on it beside the test metrics.

    python -m pipeline.drift REFERENCE CURRENT [--out DIR]

runs the same comparison on any two files that follow the contract.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.contract import Features, features_of, schema
from pipeline.drift_html import render_html
from pipeline.drift_tests import CATEGORICAL, METHODS, NUMERIC, NUMERIC_ONLY, default_method
from pipeline.errors import ConfigError, PipelineError, run_main
from pipeline.files import read_table, write_json
from pipeline.metrics import predicted_labels, score
from pipeline.model_store import load_model
from pipeline.params import DriftParams, load_params
from pipeline.validate import check_file, describe_failures


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
        drifted = (len(ref) == 0) != (len(cur) == 0)  # a column that empties (or fills) has moved
        return ColumnDrift(
            name, kind, None, None, None, None, drifted, len(ref), len(cur), f"no non-null values in {where}"
        )
    override = params.columns.get(name)
    method_name = (override and override.method) or default_method(
        ref, cur, kind, params.small_reference_rows, params.max_unique_for_discrete
    )
    if kind == CATEGORICAL and method_name in NUMERIC_ONLY:
        raise ConfigError(
            f"params.yaml: drift.columns.{name}.method: {method_name} compares numbers, but {name!r} is "
            "categorical; use chisquare, z or jensenshannon"
        )
    threshold = (override and override.threshold) or params.thresholds[method_name]
    method = METHODS[method_name]
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


def _clean(reference: pd.Series, current: pd.Series, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Both samples without nulls and infinities; categories become integer codes into `labels`.

    Codes let every test count and compare values in numpy without turning a
    million strings into Python objects; the tests only ever count categories.
    """
    if kind == NUMERIC:
        ref, cur = (s.to_numpy(dtype="float64", na_value=np.nan) for s in (reference, current))
        return ref[np.isfinite(ref)], cur[np.isfinite(cur)], None
    codes, labels = pd.factorize(pd.concat([reference, current], ignore_index=True))
    ref, cur = codes[: len(reference)], codes[len(reference) :]
    return ref[ref >= 0], cur[cur >= 0], np.asarray(labels, dtype=object)


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


def feature_kinds(features: Features) -> dict[str, str]:
    return {**dict.fromkeys(features.numeric, NUMERIC), **dict.fromkeys(features.categorical, CATEGORICAL)}


def dataset_drift(
    reference: pd.DataFrame, current: pd.DataFrame, kinds: Mapping[str, str], params: DriftParams
) -> tuple[list[ColumnDrift], dict]:
    """Every column's verdict, most drifted first, and the dataset verdict from the share of drifted columns."""
    for side, frame in (("reference", reference), ("current batch", current)):
        if frame.empty:
            raise PipelineError(f"the {side} has no rows; there is nothing to compare")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # numpy sorts release the GIL
        columns = list(
            pool.map(
                lambda item: column_drift(item[0], reference[item[0]], current[item[0]], item[1], params), kinds.items()
            )
        )
    columns.sort(key=lambda c: (-c.severity, c.column))
    drifted = sum(c.drifted for c in columns)
    share = drifted / len(columns)
    verdict = {
        "columns": len(columns),
        "drifted_columns": drifted,
        "share": share,
        "threshold": params.dataset_drift_share,
        "drifted": share >= params.dataset_drift_share,
    }
    return columns, verdict


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Features,
    params: DriftParams,
    model=None,
    test_metrics: Mapping[str, float] | None = None,
) -> dict:
    """The full report: features, target and prediction drift, and performance on the batch when it has labels."""
    columns, verdict = dataset_drift(reference, current, feature_kinds(features), params)
    report = {
        "reference_rows": len(reference),
        "current_rows": len(current),
        "dataset": verdict,
        "columns": [_as_dict(c) for c in columns],
        "target": None,
        "prediction": None,
        "performance": None,
    }
    labelled = features.target in current.columns
    if labelled and features.target in reference.columns:
        target = column_drift(
            features.target, reference[features.target], current[features.target], CATEGORICAL, params
        )
        report["target"] = _as_dict(target)
    if model is not None:
        classes = [str(c) for c in model.classes_]
        ref_pred = pd.Series(predicted_labels(model.predict_proba(reference[features.columns]), classes))
        proba = model.predict_proba(current[features.columns])
        cur_pred = pd.Series(predicted_labels(proba, classes))
        report["prediction"] = _as_dict(column_drift("prediction", ref_pred, cur_pred, CATEGORICAL, params))
        report["performance"] = {
            "test": dict(test_metrics or {}),
            "current": score(current[features.target], proba, classes, features.positive_class) if labelled else None,
        }
    return report


def _as_dict(column: ColumnDrift) -> dict:
    return {**asdict(column), "severity": round(column.severity, 6) if np.isfinite(column.severity) else None}


def markdown_summary(report: dict, top: int = 10) -> str:
    """A short summary for the PR report: the verdict, the most drifted columns, target, predictions, performance."""
    d = report["dataset"]
    verdict = "**Dataset drift detected**" if d["drifted"] else "**No dataset drift**"
    lines = [
        f"{verdict}: {d['drifted_columns']} of {d['columns']} columns drifted "
        f"(share {d['share']:.2f}, threshold {d['threshold']:g}); "
        f"{report['reference_rows']} reference rows, {report['current_rows']} current rows.",
        "",
        "| column | kind | method | value | threshold | drifted |",
        "|---|---|---|---|---|---|",
    ]
    extra = [{**r, "column": f"{r['column']} ({role})"} for role in ("target", "prediction") if (r := report[role])]
    for c in report["columns"][:top] + extra:
        value = "n/a" if c["value"] is None else f"{c['value']:.4g}"
        threshold = "n/a" if c["threshold"] is None else f"{c['threshold']:g}"
        mark = "⚠️ yes" if c["drifted"] else "no"
        note = f" ({c['note']})" if c["note"] else ""
        lines.append(f"| {c['column']}{note} | {c['kind']} | {c['method']} | {value} | {threshold} | {mark} |")
    performance = report["performance"]
    if performance and performance["current"]:
        lines += ["", "| metric | test split | current batch |", "|---|---|---|"]
        for name, value in performance["current"].items():
            test = performance["test"].get(name)
            lines.append(f"| {name} | {'n/a' if test is None else f'{test:.4f}'} | {value:.4f} |")
    return "\n".join(lines) + "\n"


def load_checked(paths: Sequence[str]) -> list[pd.DataFrame]:
    """Files that must follow the contract (labels optional); broken ones stop with the contract's message."""
    results = [check_file(path, schema(), labels_optional=True) for path in paths]
    failed = [report for report, frame in results if frame is None]
    if failed:
        raise PipelineError(describe_failures(failed))
    return [frame for _, frame in results]


def write_outputs(report: dict, paths: Mapping[str, str | Path]) -> None:
    write_json(report, paths["json"])
    Path(paths["md"]).write_text(markdown_summary(report), encoding="utf-8")
    Path(paths["html"]).write_text(render_html(report), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.drift", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", metavar="FILE", help="REFERENCE CURRENT (default: the pipeline's)")
    parser.add_argument("--out", help="with FILES: write drift.json, drift.html and drift.md into this directory")
    args = parser.parse_args(argv)
    if len(args.files) not in (0, 2):
        parser.error("give both REFERENCE and CURRENT, or neither")
    params = load_params()
    features = features_of(schema())
    if args.files:
        reference, current = load_checked(args.files)
        report = drift_report(reference, current, features, params.drift)
        if args.out:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            paths = {"json": out / "drift.json", "html": out / "drift.html", "md": out / "drift.md"}
            write_outputs(report, paths)
        print(markdown_summary(report))
        return 0
    reference = read_table(params.paths.train)
    (current,) = load_checked([params.paths.validated_current])
    test_metrics = json.loads(Path(params.paths.eval_dir, "metrics.json").read_text(encoding="utf-8"))
    model = load_model(params.paths.model)
    report = drift_report(reference, current, features, params.drift, model, test_metrics)
    paths = {"json": params.paths.drift_report, "html": params.paths.drift_html, "md": params.paths.drift_summary}
    write_outputs(report, paths)
    print(markdown_summary(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
