"""Classification metrics, shared by evaluate (test split) and drift (current batch).

The same names for binary and multiclass targets (multiclass uses macro
averages and one-vs-rest ROC AUC), so gates and reports never branch on the
number of classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss, roc_auc_score

# Metrics where a smaller value is the better model; every other metric here grows with quality.
LOWER_IS_BETTER = frozenset({"log_loss"})


def predicted_labels(proba: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    return np.asarray(classes, dtype=object)[proba.argmax(axis=1)]


def score(y_true: pd.Series, proba: np.ndarray, classes: Sequence[str], positive: str) -> dict[str, float]:
    """Classification metrics from class probabilities.

    `classes` is the model's column order for `proba` (sorted, as scikit-learn
    keeps it); `positive` is the contract's positive class, used when the
    target is binary, whatever its place in that order.
    """
    classes = list(classes)
    y_pred = predicted_labels(proba, classes)
    binary = len(classes) == 2
    f1 = f1_score(y_true, y_pred, pos_label=positive) if binary else f1_score(y_true, y_pred, average="macro")
    auc = (
        roc_auc_score(y_true == positive, proba[:, classes.index(positive)])
        if binary
        else roc_auc_score(y_true, proba, labels=classes, multi_class="ovr", average="macro")
    )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "f1": float(f1),
        "roc_auc": float(auc),
        "log_loss": float(log_loss(y_true, proba, labels=classes)),
    }
