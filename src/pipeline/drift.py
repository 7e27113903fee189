"""Drift: has the production data moved away from what the model learned from?

Compares the reference (the training split) with the current batch, column by
column, with the test Evidently's DataDriftPreset would pick for the column's
kind in the contract (see drift_stats.py). Also reports drift of the target and
of the model's predictions (read from the predict stage's files, so the model
is not loaded again) and, when the batch carries labels, the model's metrics on
it beside the test metrics: the task's metrics, classification or regression.

    python -m pipeline.drift REFERENCE CURRENT [--out DIR]

runs the same comparison on any two files that follow the contract.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, run_main

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.drift_columns import ColumnDrift
    from pipeline.features import Features
    from pipeline.params import DriftParams


@dataclass(frozen=True)
class Predictions:
    """The predict stage's output for the reference and the current batch, and the classes' order."""

    reference: pd.DataFrame
    current: pd.DataFrame
    classes: list


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    features: Features,
    params: DriftParams,
    predictions: Predictions | None = None,
    test_metrics: Mapping[str, float] | None = None,
) -> dict:
    """The full report: features, target and prediction drift, and performance on the batch when it has labels."""
    from pipeline.drift_columns import as_dict, column_drift, feature_kinds, feature_report, target_kind
    from pipeline.metrics import score_classification, score_regression
    from pipeline.predictions import PREDICTION, proba_matrix

    report = feature_report(reference, current, feature_kinds(features), params)
    kind = target_kind(features)
    labelled = features.target in current.columns and current[features.target].notna().any()
    if labelled and features.target in reference.columns:
        target = column_drift(features.target, reference[features.target], current[features.target], kind, params)
        report["target"] = as_dict(target)
    if predictions is not None:
        if len(predictions.current) != len(current):
            raise PipelineError(
                f"the current batch has {len(current)} rows but {len(predictions.current)} predictions; "
                "run `dvc repro` so the predict stage scores this batch"
            )
        ref_pred, cur_pred = predictions.reference[PREDICTION], predictions.current[PREDICTION]
        report["prediction"] = as_dict(column_drift("prediction", ref_pred, cur_pred, kind, params))
        performance = None
        if labelled:
            has_label = current[features.target].notna().to_numpy()
            y_true = current[features.target][has_label]
            performance = (
                score_classification(
                    y_true,
                    proba_matrix(predictions.current, predictions.classes)[has_label],
                    predictions.classes,
                    features.positive_class,
                )
                if features.is_classification
                else score_regression(y_true, cur_pred.to_numpy()[has_label])
            )
        report["performance"] = {"test": dict(test_metrics or {}), "current": performance}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.drift", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", metavar="FILE", help="REFERENCE CURRENT (default: the pipeline's)")
    parser.add_argument("--out", help="with FILES: write drift.json, drift.html and drift.md into this directory")
    parser.add_argument(
        "--scheduler", help="a Dask scheduler for directories of parquet partitions (or DASK_SCHEDULER_ADDRESS)"
    )
    args = parser.parse_args(argv)
    if len(args.files) not in (0, 2):
        parser.error("give both REFERENCE and CURRENT, or neither")
    from pipeline.checks import load_checked
    from pipeline.drift_render import markdown_summary, write_outputs
    from pipeline.features import contract_schema, features_of
    from pipeline.files import check_output_dir, read_json, read_table
    from pipeline.params import load_params
    from pipeline.predictions import read_predictions

    params = load_params()
    contract = contract_schema()
    features = features_of(contract)
    if args.files:
        out = check_output_dir(args.out) if args.out else None  # checked before the work; created after
        if all(Path(name).is_dir() for name in args.files):
            report = _partitioned(args, contract, features, params.drift)
        else:
            reference, current = load_checked(args.files, contract)
            report = drift_report(reference, current, features, params.drift)
        if out is not None:
            write_outputs(report, {"json": out / "drift.json", "html": out / "drift.html", "md": out / "drift.md"})
        print(markdown_summary(report))
        return 0
    # The pipeline's files: validated by the validate stage, read as they are.
    reference = read_table(params.paths.train)
    current = read_table(params.paths.validated_current)
    missing = sorted(set(features.columns) - set(current.columns))
    if missing:
        raise PipelineError(f"{params.paths.validated_current}: lacks {', '.join(missing)}; run `dvc repro`")
    test_metrics = read_json(Path(params.paths.eval_dir, "metrics.json"))
    reference_predictions, classes = read_predictions(params.paths.predictions_reference)
    current_predictions, _ = read_predictions(params.paths.predictions_current)
    predictions = Predictions(reference_predictions, current_predictions, classes)
    report = drift_report(reference, current, features, params.drift, predictions, test_metrics)
    paths = {"json": params.paths.drift_report, "html": params.paths.drift_html, "md": params.paths.drift_summary}
    write_outputs(report, paths)
    print(markdown_summary(report), file=sys.stderr)
    return 0


def _column_drift(
    item: tuple[str, str], reference: Sequence[str], current: Sequence[str], params: DriftParams
) -> ColumnDrift:
    import pyarrow.parquet as pq

    from pipeline.drift_columns import column_drift

    name, kind = item
    ref = pq.read_table(list(reference), columns=[name]).column(name).to_pandas()
    cur = pq.read_table(list(current), columns=[name]).column(name).to_pandas()
    return column_drift(name, ref, cur, kind, params)


def drift_partitions(
    runner, reference: str | Path, current: str | Path, kinds: Mapping[str, str], params: DriftParams
) -> dict:
    """The drift report's feature part for two partitioned datasets, as `feature_report` gives it for two frames."""
    from pipeline.distributed import partitions
    from pipeline.drift_columns import check_overrides, judge_dataset, report_of

    check_overrides(params, kinds)
    ref_files, cur_files = [list(map(str, partitions(side))) for side in (reference, current)]
    ref_rows, cur_rows = (sum(_rows(files)) for files in (ref_files, cur_files))
    for side, rows in (("reference", ref_rows), ("current batch", cur_rows)):
        if rows == 0:
            raise PipelineError(f"the {side} has no rows; there is nothing to compare")
    columns = runner.map(_column_drift, list(kinds.items()), reference=ref_files, current=cur_files, params=params)
    judged, verdict = judge_dataset(columns, ref_rows, cur_rows, params)
    return report_of(judged, verdict, ref_rows, cur_rows)


def _rows(files: Sequence[str]) -> list[int]:
    import pyarrow.parquet as pq

    return [pq.ParquetFile(path).metadata.num_rows for path in files]


def _partitioned(args, contract, features: Features, params: DriftParams) -> dict:
    """Two directories of parquet partitions: checked against the contract, then compared column by column."""
    from pipeline.checks import describe_failures
    from pipeline.distributed import Runner, check_partitions, scheduler_address

    with Runner(scheduler_address(args.scheduler)) as runner:
        reports = [check_partitions(runner, side, contract, labels_optional=True) for side in args.files]
        failed = [report for report in reports if not report.passed]
        if failed:
            raise PipelineError(describe_failures(failed))
        from pipeline.drift_columns import feature_kinds

        return drift_partitions(runner, args.files[0], args.files[1], feature_kinds(features), params)


if __name__ == "__main__":
    raise SystemExit(run_main(main))
