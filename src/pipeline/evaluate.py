"""Evaluate: score the model on the held-out test split and log metrics and plots with DVCLive.

Metrics keep fixed names per task (see metrics.py), so gates and reports never
branch on the number of classes. Every plot is bounded whatever the size of
the test split, so the git-tracked reports stay small: the confusion matrix is
counts, curves keep at most `evaluate.curve_points` points (the AUC in
metrics.json is computed on every row), scatter plots a seeded sample, and
permutation importance runs on a seeded sample of `evaluate.importance_rows`.
The task, target and classes are written beside the metrics (task.json), so a
baseline with another target is not compared as if it were the same model.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import run_main

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from pipeline.features import Features
    from pipeline.params import EvaluateParams

TASK_FILE = "task.json"
CLASSIFICATION, REGRESSION = "classification", "regression"
# Every plot file dvc.yaml declares, by the task that fills it; the other task's files are empty lists.
PLOTS = {
    CLASSIFICATION: ("confusion_matrix", "roc", "precision_recall", "calibration"),
    REGRESSION: ("predicted_vs_actual", "residuals"),
}


@dataclass(frozen=True)
class Plot:
    """One DVCLive custom plot: `name` is its path under plots/custom (no suffix)."""

    name: str
    rows: list[dict]
    x: str
    y: str
    template: str
    title: str


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float | None]
    identity: dict
    plots: list[Plot] = field(default_factory=list)


def evaluate_model(model: Pipeline, test: pd.DataFrame, features: Features, params: EvaluateParams) -> Evaluation:
    """Metrics on every test row; plots and importance bounded by params."""
    from pipeline.metrics import score_classification, score_regression

    X, y = test[features.columns], test[features.target]
    importance = importance_plot(model, X, y, features, params)
    if features.is_classification:
        classes = tuple(model.classes_)
        proba = model.predict_proba(X)
        metrics = score_classification(y, proba, classes, features.positive_class)
        plots = classification_plots(y.to_numpy(dtype=object), proba, classes, features, params)
    else:
        predicted = model.predict(X)
        metrics = score_regression(y, predicted)
        plots = regression_plots(y.to_numpy(dtype="float64"), predicted, params)
    other = [_empty(name) for name in PLOTS[REGRESSION if features.is_classification else CLASSIFICATION]]
    return Evaluation(metrics=metrics, identity=features.identity(), plots=[*plots, *other, importance])


def classification_plots(
    y_true: np.ndarray, proba: np.ndarray, classes: tuple, features: Features, params: EvaluateParams
) -> list[Plot]:
    """Confusion counts, then one ROC, precision-recall and calibration curve.

    Binary targets plot the contract's positive class. Multiclass targets plot
    the micro-average over the classes (every class against the rest, pooled)
    for ROC and precision-recall, and the top-label calibration (the predicted
    class's probability against how often it is right).
    """
    import numpy as np
    import pandas as pd
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import precision_recall_curve, roc_curve

    k = len(classes)
    actual = pd.Categorical(y_true, categories=list(classes)).codes.astype("int64")
    known = actual >= 0
    counts = np.bincount(actual[known] * k + proba.argmax(axis=1)[known], minlength=k * k)
    confusion = [
        {"actual": str(a), "predicted": str(p), "count": int(counts[i * k + j])}
        for i, a in enumerate(classes)
        for j, p in enumerate(classes)
    ]
    if features.is_binary:
        hit = y_true == features.positive_class
        score = proba[:, classes.index(features.positive_class)]
        calibrated_hit, confidence = hit, score
    else:
        hit = (actual[:, None] == np.arange(k)[None, :]).ravel()
        score = proba.ravel()
        calibrated_hit, confidence = proba.argmax(axis=1) == actual, proba.max(axis=1)
    plots = [Plot("confusion_matrix", confusion, "predicted", "actual", "confusion_counts", "Confusion matrix")]
    if hit.all() or not hit.any():
        return [*plots, *(_empty(name) for name in ("roc", "precision_recall", "calibration"))]  # needs both sides
    fpr, tpr, _ = roc_curve(hit, score)
    precision, recall, _ = precision_recall_curve(hit, score)
    prob_true, prob_pred = calibration_curve(calibrated_hit, confidence, n_bins=10)
    keep_roc, keep_pr = thin(len(fpr), params.curve_points), thin(len(recall), params.curve_points)
    return [
        *plots,
        Plot("roc", _rows(fpr=fpr[keep_roc], tpr=tpr[keep_roc]), "fpr", "tpr", "simple", "ROC"),
        Plot(
            "precision_recall",
            _rows(recall=recall[keep_pr], precision=precision[keep_pr]),
            "recall",
            "precision",
            "simple",
            "Precision-recall",
        ),
        Plot(
            "calibration",
            _rows(prob_pred=prob_pred, prob_true=prob_true),
            "prob_pred",
            "prob_true",
            "simple",
            "Calibration",
        ),
    ]


def _empty(name: str) -> Plot:
    """A plot of the other task: an empty file, so dvc.yaml can declare both tasks' plots without errors."""
    return Plot(name, [], "", "", "", "")


def regression_plots(y_true: np.ndarray, predicted: np.ndarray, params: EvaluateParams) -> list[Plot]:
    """Predicted against actual and residuals against predicted, on a seeded sample of the test rows."""
    import numpy as np

    rows = np.sort(np.random.default_rng(params.seed).permutation(len(y_true))[: params.curve_points])
    actual, guess = y_true[rows], np.asarray(predicted, dtype="float64")[rows]
    return [
        Plot(
            "predicted_vs_actual",
            _rows(actual=actual, predicted=guess),
            "actual",
            "predicted",
            "scatter",
            "Predicted against actual",
        ),
        Plot(
            "residuals",
            _rows(predicted=guess, residual=guess - actual),
            "predicted",
            "residual",
            "scatter",
            "Residuals (predicted minus actual)",
        ),
    ]


def importance_plot(model: Pipeline, X: pd.DataFrame, y: pd.Series, features: Features, params: EvaluateParams):
    """Permutation importance on a seeded sample of at most `importance_rows` test rows."""
    import numpy as np
    import pandas as pd
    from sklearn.inspection import permutation_importance

    if len(X) > params.importance_rows:
        rows = np.sort(np.random.default_rng(params.seed).permutation(len(X))[: params.importance_rows])
        X, y = X.iloc[rows], y.iloc[rows]
    scoring, unit = (
        ("neg_log_loss", "log loss") if features.is_classification else ("neg_root_mean_squared_error", "RMSE")
    )
    result = permutation_importance(
        model, X, y, scoring=scoring, n_repeats=params.permutation_repeats, random_state=params.seed
    )
    importance = pd.DataFrame(
        {"feature": features.columns, "importance": result.importances_mean.round(6)}
    ).sort_values(["importance", "feature"], ascending=[False, True], ignore_index=True)
    return Plot(
        "feature_importance",
        importance.to_dict("records"),
        "importance",
        "feature",
        "bar_horizontal_sorted",
        f"Permutation importance (mean rise in {unit})",
    )


def thin(n: int, most: int) -> np.ndarray:
    """At most `most` evenly spaced indices into n points, first and last included."""
    import numpy as np

    if n <= most:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, most).round().astype(int))


def _rows(**columns) -> list[dict]:
    keys = list(columns)
    return [
        {key: round(float(value), 6) for key, value in zip(keys, values, strict=True)}
        for values in zip(*columns.values(), strict=True)
    ]


def log_evaluation(evaluation: Evaluation, report_dir: str) -> None:
    """Write metrics, task identity and plots under report_dir (DVCLive: no dvc.yaml edits, no experiment refs)."""
    from dvclive import Live

    from pipeline.files import write_json

    with Live(dir=report_dir, save_dvc_exp=False, dvcyaml=None, report=None) as live:
        for name, value in evaluation.metrics.items():
            if value is not None:
                live.log_metric(name, value, plot=False)
        for plot in evaluation.plots:
            if plot.rows:
                live.log_plot(plot.name, plot.rows, x=plot.x, y=plot.y, template=plot.template, title=plot.title)
    for plot in evaluation.plots:
        if not plot.rows:
            write_json([], Path(report_dir) / "plots" / "custom" / f"{plot.name}.json")
    write_json(evaluation.identity, Path(report_dir) / TASK_FILE)


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m pipeline.evaluate", description=__doc__.split("\n")[0]).parse_args(argv)
    from pipeline.features import contract_schema, features_of
    from pipeline.files import read_table
    from pipeline.model_store import load_model
    from pipeline.params import load_params

    params = load_params()
    evaluation = evaluate_model(
        load_model(params.paths.model),
        read_table(params.paths.test),
        features_of(contract_schema()),
        params.evaluate,
    )
    log_evaluation(evaluation, params.paths.eval_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
