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
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from pipeline.contract import Features, features_of, schema
from pipeline.drift_columns import as_dict, column_drift, feature_report
from pipeline.drift_render import markdown_summary, write_outputs
from pipeline.drift_tests import CATEGORICAL, NUMERIC
from pipeline.errors import PipelineError, run_main
from pipeline.files import read_json, read_table
from pipeline.metrics import predicted_labels, score
from pipeline.model_store import load_model
from pipeline.params import DriftParams, load_params
from pipeline.validate import check_file, describe_failures


def feature_kinds(features: Features) -> dict[str, str]:
    return {**dict.fromkeys(features.numeric, NUMERIC), **dict.fromkeys(features.categorical, CATEGORICAL)}


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Features,
    params: DriftParams,
    model=None,
    test_metrics: Mapping[str, float] | None = None,
) -> dict:
    """The full report: features, target and prediction drift, and performance on the batch when it has labels."""
    report = feature_report(reference, current, feature_kinds(features), params)
    labelled = features.target in current.columns
    if labelled and features.target in reference.columns:
        target = column_drift(
            features.target, reference[features.target], current[features.target], CATEGORICAL, params
        )
        report["target"] = as_dict(target)
    if model is not None:
        classes = [str(c) for c in model.classes_]
        ref_pred = pd.Series(predicted_labels(model.predict_proba(reference[features.columns]), classes))
        proba = model.predict_proba(current[features.columns])
        cur_pred = pd.Series(predicted_labels(proba, classes))
        report["prediction"] = as_dict(column_drift("prediction", ref_pred, cur_pred, CATEGORICAL, params))
        report["performance"] = {
            "test": dict(test_metrics or {}),
            "current": score(current[features.target], proba, classes, features.positive_class) if labelled else None,
        }
    return report


def load_checked(paths: Sequence[str]) -> list[pd.DataFrame]:
    """Files that must follow the contract (labels optional); broken ones stop with the contract's message."""
    results = [check_file(path, schema(), labels_optional=True) for path in paths]
    failed = [report for report, frame in results if frame is None]
    if failed:
        raise PipelineError(describe_failures(failed))
    return [frame for _, frame in results]


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
    test_metrics = read_json(Path(params.paths.eval_dir, "metrics.json"))
    model = load_model(params.paths.model)
    report = drift_report(reference, current, features, params.drift, model, test_metrics)
    paths = {"json": params.paths.drift_report, "html": params.paths.drift_html, "md": params.paths.drift_summary}
    write_outputs(report, paths)
    print(markdown_summary(report), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
