"""The physical floor of the pipeline: one process doing the same work as `dvc repro`, minus Ratchet's overheads.

    python benchmarks/scale_floor.py REFERENCE.csv CURRENT.csv   # run inside the project: it reads params.yaml

The same work, with the same code where the code is the work:

- read: both CSV files with pyarrow's multi-threaded reader (text columns as text);
- validate: the project's pandera contract, lazily, on both frames;
- split: the same seeded, stratified split (`pipeline.split.split_frame`);
- train: the same model and params on the same rows (`pipeline.train.fit_model`,
  `train.max_rows` included);
- predict: the test split, the training split and the current batch
  (`predict_proba`; the pipeline scores the training split too, for prediction drift);
- metrics: the same metrics on the test split, and the same permutation importance
  on the same seeded sample (`evaluate.importance_rows`, `evaluate.permutation_repeats`);
- drift: the same statistics per feature, target and prediction, and the metrics on
  the current batch (`pipeline.drift_columns`, `pipeline.metrics`).

What it leaves out is what Ratchet adds: seven processes and their imports, DVC
(hashing, the lock file, the cache), intermediate parquet files written and read
again, the saved model (skops), the batch-by-batch contract check of the files
predict scores, and the reports (plots, drift.html, drift.md). Nothing is written.

Prints one JSON object: seconds per phase, and the headline numbers to check
that the floor did what the pipeline did (rows, the test ROC AUC or RMSE, the
drifted share).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reference")
    parser.add_argument("current")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    phases: dict[str, float] = {}
    clock = [started]

    def lap(name: str) -> None:
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - clock[0]
        clock[0] = now

    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pv

    from pipeline.checks import text_columns
    from pipeline.drift_columns import as_dict, column_drift, feature_kinds, feature_report, target_kind
    from pipeline.evaluate import importance_plot
    from pipeline.features import contract_schema, features_of
    from pipeline.metrics import score_classification, score_regression
    from pipeline.params import load_params
    from pipeline.split import split_frame
    from pipeline.train import fit_model

    params = load_params()
    contract = contract_schema()
    features = features_of(contract)
    lap("imports")

    options = pv.ConvertOptions(column_types=dict.fromkeys(text_columns(contract), pa.string()))
    reference = pv.read_csv(args.reference, convert_options=options).to_pandas()
    current = pv.read_csv(args.current, convert_options=options).to_pandas()
    lap("read")

    reference = contract.validate(reference, lazy=True)
    current_contract = contract if features.target in current.columns else contract.remove_columns([features.target])
    current = current_contract.validate(current, lazy=True)
    lap("validate")

    train, test = split_frame(reference, features, params.split)
    lap("split")

    model = fit_model(train, features, params.train)
    lap("train")

    def predict(frame):
        if features.is_classification:
            proba = model.predict_proba(frame[features.columns])
            return proba, np.asarray(model.classes_)[proba.argmax(axis=1)]
        return None, model.predict(frame[features.columns])

    test_proba, test_pred = predict(test)
    _, train_pred = predict(train)
    current_proba, current_pred = predict(current)
    lap("predict")

    classes = list(getattr(model, "classes_", []))
    if features.is_classification:
        test_metrics = score_classification(test[features.target], test_proba, classes, features.positive_class)
    else:
        test_metrics = score_regression(test[features.target], test_pred)
    lap("metrics")
    importance_plot(model, test[features.columns], test[features.target], features, params.evaluate)
    lap("importance")

    report = feature_report(train, current, feature_kinds(features), params.drift)
    kind = target_kind(features)
    labelled = features.target in current.columns and current[features.target].notna().any()
    if labelled:
        report["target"] = as_dict(
            column_drift(features.target, train[features.target], current[features.target], kind, params.drift)
        )
        has_label = current[features.target].notna().to_numpy()
        y_true = current[features.target][has_label]
        if features.is_classification:
            score_classification(y_true, current_proba[has_label], classes, features.positive_class)
        else:
            score_regression(y_true, current_pred[has_label])
    import pandas as pd

    report["prediction"] = as_dict(
        column_drift("prediction", pd.Series(train_pred), pd.Series(current_pred), kind, params.drift)
    )
    lap("drift")

    headline = "roc_auc" if features.is_classification else "rmse"
    json.dump(
        {
            "seconds": time.perf_counter() - started,
            "phases": phases,
            "rows": {"reference": len(reference), "current": len(current), "train": len(train), "test": len(test)},
            headline: test_metrics[headline],
            "drift_share": report["dataset"]["share"] if "dataset" in report else None,
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
