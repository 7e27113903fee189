"""Evaluate: score the model on the held-out test split and log metrics and plots with DVCLive.

Metrics keep the same names for binary and multiclass targets (multiclass uses
macro averages and one-vs-rest ROC AUC), so gates and reports never branch on
the number of classes. Curves are logged per class, one file each, so
`dvc plots show` and `dvc plots diff` render them without extra configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dvclive import Live
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from pipeline.contract import Features, features_of, schema
from pipeline.errors import run_main
from pipeline.files import read_table
from pipeline.metrics import predicted_labels, score
from pipeline.model_store import load_model
from pipeline.params import EvaluateParams, load_params


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]
    y_true: np.ndarray
    y_pred: np.ndarray
    proba: np.ndarray
    classes: tuple[str, ...]
    positive: str
    importance: pd.DataFrame


def evaluate_model(model: Pipeline, test: pd.DataFrame, features: Features, params: EvaluateParams) -> Evaluation:
    X, y = test[features.columns], test[features.target]
    classes = tuple(str(c) for c in model.classes_)
    proba = model.predict_proba(X)
    result = permutation_importance(
        model, X, y, scoring="neg_log_loss", n_repeats=params.permutation_repeats, random_state=params.seed
    )
    importance = pd.DataFrame(
        {"feature": features.columns, "importance": result.importances_mean.round(6)}
    ).sort_values(["importance", "feature"], ascending=[False, True], ignore_index=True)
    return Evaluation(
        metrics=score(y, proba, classes, features.positive_class),
        y_true=y.to_numpy(dtype=object),
        y_pred=predicted_labels(proba, classes),
        proba=proba,
        classes=classes,
        positive=features.positive_class,
        importance=importance,
    )


def log_evaluation(evaluation: Evaluation, report_dir: str) -> None:
    """Write metrics and plots under report_dir with DVCLive (no dvc.yaml edits, no experiment refs)."""
    with Live(dir=report_dir, save_dvc_exp=False, dvcyaml=None, report=None) as live:
        for name, value in evaluation.metrics.items():
            live.log_metric(name, value, plot=False)
        live.log_sklearn_plot("confusion_matrix", evaluation.y_true, evaluation.y_pred, name="confusion_matrix.json")
        positives = [evaluation.positive] if len(evaluation.classes) == 2 else evaluation.classes
        for cls in positives:
            is_cls = evaluation.y_true == cls
            proba = evaluation.proba[:, evaluation.classes.index(cls)]
            for kind in ("roc", "precision_recall", "calibration"):
                live.log_sklearn_plot(kind, is_cls, proba, name=f"{kind}/{cls}.json")
        live.log_plot(
            "feature_importance",
            evaluation.importance,
            x="importance",
            y="feature",
            template="bar_horizontal_sorted",
            title="Permutation importance (mean drop in log loss)",
        )


def main(argv: Sequence[str] | None = None) -> int:
    params = load_params()
    evaluation = evaluate_model(
        load_model(params.paths.model), read_table(params.paths.test), features_of(schema()), params.evaluate
    )
    log_evaluation(evaluation, params.paths.eval_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
