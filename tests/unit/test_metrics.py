"""The metrics module agrees with scikit-learn, for both tasks, and says None where a metric is undefined."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    median_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

from pipeline.metrics import LOWER_IS_BETTER, METRICS, score_classification, score_regression


def test_binary_matches_sklearn_with_the_positive_class_first_or_last():
    y_true = pd.Series(["b", "a", "b", "a", "b", "a"])
    proba = np.array([[0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9], [0.8, 0.2]])
    y_pred = ["b", "a", "a", "b", "b", "a"]
    for positive in ("a", "b"):
        assert score_classification(y_true, proba, ["a", "b"], positive) == pytest.approx(
            {
                "accuracy": accuracy_score(y_true, y_pred),
                "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
                "f1": f1_score(y_true, y_pred, pos_label=positive),
                "roc_auc": roc_auc_score(y_true == positive, proba[:, ["a", "b"].index(positive)]),
                "log_loss": log_loss(y_true, proba, labels=["a", "b"]),
            }
        )


def test_multiclass_matches_sklearn():
    classes = ["x", "y", "z"]
    y_true = pd.Series(["x", "y", "z", "x", "z", "y"])
    proba = np.array(
        [[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]]
    )
    y_pred = ["x", "x", "z", "y", "z", "y"]
    assert score_classification(y_true, proba, classes, None) == pytest.approx(
        {
            "accuracy": accuracy_score(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "f1": f1_score(y_true, y_pred, average="macro"),
            "roc_auc": roc_auc_score(y_true, proba, labels=classes, multi_class="ovr", average="macro"),
            "log_loss": log_loss(y_true, proba, labels=classes),
        }
    )


def test_integer_classes_work():
    y_true = pd.Series([0, 1, 1, 0])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    scores = score_classification(y_true, proba, [0, 1], 1)
    assert scores["roc_auc"] == pytest.approx(roc_auc_score(y_true, proba[:, 1]))
    assert scores["accuracy"] == pytest.approx(0.75)


def test_roc_auc_is_none_when_a_batch_has_one_class():
    proba = np.array([[0.9, 0.1], [0.2, 0.8]])
    assert score_classification(pd.Series(["a", "a"]), proba, ["a", "b"], "b")["roc_auc"] is None
    three = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    assert score_classification(pd.Series(["a", "b"]), three, ["a", "b", "c"], None)["roc_auc"] is None


def test_regression_matches_sklearn():
    y_true = np.array([3.0, -0.5, 2.0, 7.0, 4.2])
    y_pred = np.array([2.5, 0.0, 2.0, 8.0, 3.9])
    assert score_regression(y_true, y_pred) == pytest.approx(
        {
            "rmse": root_mean_squared_error(y_true, y_pred),
            "mae": mean_absolute_error(y_true, y_pred),
            "median_ae": median_absolute_error(y_true, y_pred),
            "r2": r2_score(y_true, y_pred),
        }
    )


def test_r2_is_none_for_a_constant_target():
    assert score_regression(np.array([2.0, 2.0, 2.0]), np.array([1.0, 2.0, 3.0]))["r2"] is None


def test_every_metric_has_a_direction_and_errors_are_lower_is_better():
    assert {"log_loss", "rmse", "mae", "median_ae"} == LOWER_IS_BETTER
    assert set(METRICS["classification"]) | set(METRICS["regression"]) >= LOWER_IS_BETTER
