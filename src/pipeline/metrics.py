"""Model quality metrics, shared by evaluate (test split), drift (current batch) and monitoring.

The names are fixed per task, so gates and reports never branch on the
number of classes: classification uses macro averages and one-vs-rest ROC AUC
for more than two classes, and the contract's positive class for two.
A metric that the data cannot define (ROC AUC on a batch with one class) is
None, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: params.py reads this module's names, and the gate needs no pandas
    import numpy as np
    import pandas as pd

CLASSIFICATION_METRICS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("rmse", "mae", "median_ae", "r2")
METRICS = {"classification": CLASSIFICATION_METRICS, "regression": REGRESSION_METRICS}
# Metrics where a smaller value is the better model; every other metric grows with quality.
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "median_ae"})


def predicted_labels(proba: np.ndarray, classes: Sequence) -> np.ndarray:
    """The most probable class per row, in the classes' own dtype (numbers stay numbers)."""
    import numpy as np

    return np.asarray(classes)[proba.argmax(axis=1)]


def score_classification(
    y_true: pd.Series | np.ndarray, proba: np.ndarray, classes: Sequence, positive: object
) -> dict[str, float | None]:
    """Classification metrics from class probabilities.

    `classes` is the model's column order for `proba` (sorted, as scikit-learn
    keeps it); `positive` is the contract's positive class, used when the
    target is binary, whatever its place in that order.
    """
    import warnings

    import numpy as np
    import pandas as pd
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss, roc_auc_score

    classes = list(classes)
    y_true = np.asarray(y_true)
    y_pred = predicted_labels(proba, classes)
    binary = len(classes) == 2
    present = set(pd.unique(y_true))
    if binary:
        f1 = f1_score(y_true == positive, y_pred == positive, zero_division=0)
        auc = roc_auc_score(y_true == positive, proba[:, classes.index(positive)]) if len(present) == 2 else None
    else:
        f1 = f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0)
        auc = (
            roc_auc_score(y_true, proba, labels=classes, multi_class="ovr", average="macro")
            if present == set(classes)
            else None
        )
    with warnings.catch_warnings():  # a batch may lack a class the model predicts: still a defined score
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced),
        "f1": float(f1),
        "roc_auc": None if auc is None else float(auc),
        "log_loss": float(log_loss(y_true, proba, labels=classes)),
    }


def score_regression(y_true: pd.Series | np.ndarray, y_pred: np.ndarray) -> dict[str, float | None]:
    """Regression metrics: RMSE, MAE, median absolute error (robust to a skewed target's tail) and R².

    R² is None when the true values are all equal: it divides by their spread.
    """
    import numpy as np
    from sklearn.metrics import mean_absolute_error, median_absolute_error, r2_score, root_mean_squared_error

    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    return {
        "rmse": float(root_mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "median_ae": float(median_absolute_error(y_true, y_pred)),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 and np.ptp(y_true) > 0 else None,
    }
