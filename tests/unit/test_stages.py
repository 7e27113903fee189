"""Each stage's pure core, tested without DVC or files: split, train and evaluate, for every task.

The stages' `main` functions only do I/O around these functions, so this is
where the pipeline's promises are kept: splits are seeded (and stratified for
classes), every model family learns binary, multiclass and regression targets
(toy contracts) and the project's own, metrics come out under the task's
names, and every plot stays bounded however many test rows there are.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import ConfigError, PipelineError
from pipeline.evaluate import PLOTS, evaluate_model, thin
from pipeline.features import features_of
from pipeline.metrics import METRICS
from pipeline.params import EvaluateParams, Params, SplitParams, TrainParams
from pipeline.split import split_frame
from pipeline.synthetic import generate
from pipeline.train import fit_model

FAMILIES = {
    "classification": ("hist_gradient_boosting", "random_forest", "logistic_regression"),
    "regression": ("hist_gradient_boosting", "random_forest", "ridge"),
}
TASKS = ("binary", "multiclass", "regression", "project")
TRAIN_ROWS, TEST_ROWS = 400, 200
EVALUATE = EvaluateParams(permutation_repeats=2, importance_rows=1000, curve_points=50, seed=0)


def train_params(params: Params, family: str) -> TrainParams:
    """params.yaml's train section switched to `family`, with a 20-tree forest to keep the tier fast."""
    forest = params.train.random_forest.model_copy(update={"n_estimators": 20})
    return params.train.model_copy(update={"model": family, "random_forest": forest})


@pytest.fixture(scope="module")
def datasets(toy_contracts, contract) -> dict:
    """Per task: its contract and a train/held-out pair drawn from one seeded synthetic sample."""
    result = {}
    for task, variant in {**toy_contracts, "project": contract}.items():
        frame = generate(TRAIN_ROWS + TEST_ROWS, seed=1, contract=variant)
        result[task] = variant, frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:].reset_index(drop=True)
    return result


@pytest.fixture(scope="module")
def models(datasets, params) -> dict:
    """Every model family of its task fitted once per dataset."""
    fitted = {}
    for task, (variant, train, _) in datasets.items():
        features = features_of(variant)
        for family in FAMILIES[features.task]:
            fitted[task, family] = fit_model(train, features, train_params(params, family))
    return fitted


# split


def test_split_is_stratified_for_classes(datasets):
    variant, frame, _ = datasets["multiclass"]
    features = features_of(variant)
    train, test = split_frame(frame, features, SplitParams(test_size=0.25, seed=0))

    assert len(train) + len(test) == len(frame)
    assert set(train[features.id]).isdisjoint(test[features.id])
    for cls, count in frame[features.target].value_counts().items():
        assert abs((test[features.target] == cls).sum() - 0.25 * count) <= 1, cls


@pytest.mark.parametrize("task", TASKS)
def test_split_is_seeded(datasets, task):
    variant, frame, _ = datasets[task]
    features = features_of(variant)
    first = split_frame(frame, features, SplitParams(test_size=0.25, seed=0))
    again = split_frame(frame, features, SplitParams(test_size=0.25, seed=0))
    other = split_frame(frame, features, SplitParams(test_size=0.25, seed=1))

    for part, same in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(part, same)
    assert not first[1].equals(other[1])


def test_split_leaves_out_rows_without_a_label(datasets):
    variant, frame, _ = datasets["regression"]
    features = features_of(variant)
    frame = frame.copy()
    frame.loc[frame.index[:10], features.target] = np.nan
    train, test = split_frame(frame, features, SplitParams(test_size=0.25, seed=0))
    assert len(train) + len(test) == len(frame) - 10
    assert train[features.target].notna().all()
    assert test[features.target].notna().all()


def test_split_refuses_a_class_with_one_row(datasets):
    variant, frame, _ = datasets["binary"]
    features = features_of(variant)
    rare = features.target_classes[0]
    frame = pd.concat([frame[frame[features.target] != rare], frame[frame[features.target] == rare].head(1)])
    with pytest.raises(PipelineError, match=rf"class\(es\) {rare} have fewer than 2 rows"):
        split_frame(frame, features, SplitParams(test_size=0.25, seed=0))


def test_split_too_small_for_every_class_is_a_pipeline_error(datasets):
    variant, frame, _ = datasets["multiclass"]
    with pytest.raises(PipelineError, match="leaves fewer rows than the 3 classes"):
        split_frame(frame.head(20), features_of(variant), SplitParams(test_size=0.05, seed=0))


# train


@pytest.mark.parametrize("task", TASKS)
def test_every_family_learns_the_target(models, datasets, task):
    variant, _, held_out = datasets[task]
    features = features_of(variant)
    X, y = held_out[features.columns], held_out[features.target]
    for family in FAMILIES[features.task]:
        model = models[task, family]
        if features.is_classification:
            proba = model.predict_proba(X)
            assert proba.shape == (len(held_out), len(features.target_classes))
            np.testing.assert_allclose(proba.sum(axis=1), 1)
            majority = y.value_counts(normalize=True).max()
            assert (model.predict(X) == y).mean() > majority, family
        else:
            baseline_error = np.abs(y - y.mean()).mean()
            assert np.abs(model.predict(X) - y).mean() < baseline_error, family


@pytest.mark.parametrize(("task", "family"), [("regression", "logistic_regression"), ("binary", "ridge")])
def test_a_family_of_the_other_task_is_a_config_error(datasets, params, task, family):
    variant, train, _ = datasets[task]
    with pytest.raises(ConfigError, match=rf"train\.model: {family} does not do"):
        fit_model(train, features_of(variant), train_params(params, family))


def test_unknown_categories_do_not_stop_prediction(models, datasets):
    variant, _, held_out = datasets["binary"]
    features = features_of(variant)
    strange = held_out.assign(colour="purple", shop="shop-unseen")
    for family in FAMILIES["classification"]:
        assert np.isfinite(models["binary", family].predict_proba(strange[features.columns])).all()


# evaluate


@pytest.mark.parametrize("task", TASKS)
def test_evaluate_gives_the_tasks_metrics_and_ranks_every_feature(models, datasets, task):
    variant, _, held_out = datasets[task]
    features = features_of(variant)

    evaluation = evaluate_model(models[task, "hist_gradient_boosting"], held_out, features, EVALUATE)

    assert set(evaluation.metrics) == set(METRICS[features.task])
    assert all(value is not None for value in evaluation.metrics.values())
    [importance] = [plot for plot in evaluation.plots if plot.name == "feature_importance"]
    assert sorted(row["feature"] for row in importance.rows) == sorted(features.columns)
    assert evaluation.identity == features.identity()
    json.dumps(evaluation.identity)  # written to task.json


def plots_of(evaluation) -> dict:
    return {plot.name: plot.rows for plot in evaluation.plots}


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_declared_plot_is_written_and_only_the_tasks_plots_have_points(models, datasets, task):
    variant, _, held_out = datasets[task]
    features = features_of(variant)
    plots = plots_of(evaluate_model(models[task, "hist_gradient_boosting"], held_out, features, EVALUATE))
    assert set(plots) == {*PLOTS["classification"], *PLOTS["regression"], "feature_importance"}
    for name in PLOTS[features.task]:
        assert plots[name], name
    other = "regression" if features.is_classification else "classification"
    for name in PLOTS[other]:
        assert plots[name] == [], name


def test_confusion_matrix_is_counts(models, datasets):
    variant, _, held_out = datasets["multiclass"]
    features = features_of(variant)
    confusion = plots_of(evaluate_model(models["multiclass", "random_forest"], held_out, features, EVALUATE))[
        "confusion_matrix"
    ]
    assert len(confusion) == len(features.target_classes) ** 2  # counts, not one row per prediction
    assert sum(row["count"] for row in confusion) == len(held_out)


def test_binary_curves_are_of_the_positive_class(models, datasets):
    """The ROC curve's area is the roc_auc metric, which scores the contract's positive class."""
    variant, _, held_out = datasets["binary"]
    features = features_of(variant)
    evaluation = evaluate_model(models["binary", "logistic_regression"], held_out, features, EVALUATE)
    roc = plots_of(evaluation)["roc"]
    area = np.trapezoid([row["tpr"] for row in roc], [row["fpr"] for row in roc])
    assert area == pytest.approx(evaluation.metrics["roc_auc"], abs=0.02)


def test_regression_scatter_plots_are_a_bounded_sample(models, datasets):
    variant, _, held_out = datasets["regression"]
    plots = plots_of(evaluate_model(models["regression", "ridge"], held_out, features_of(variant), EVALUATE))
    for name in ("predicted_vs_actual", "residuals"):
        assert len(plots[name]) == EVALUATE.curve_points


def test_plots_stay_bounded_on_a_large_test_split(toy_contracts, params):
    """At 30,000 test rows every plot file holds at most curve_points points and a few KB."""
    variant = toy_contracts["binary"]
    features = features_of(variant)
    frame = generate(31_000, seed=3, contract=variant)
    model = fit_model(frame.iloc[:1000], features, train_params(params, "logistic_regression"))
    small = EvaluateParams(permutation_repeats=1, importance_rows=500, curve_points=100, seed=0)

    evaluation = evaluate_model(model, frame.iloc[1000:], features, small)

    for plot in evaluation.plots:
        assert len(plot.rows) <= 100, plot.name
        assert len(json.dumps(plot.rows)) < 10_000, plot.name


def test_thin_keeps_both_ends_and_at_most_the_limit():
    assert list(thin(5, 10)) == [0, 1, 2, 3, 4]
    kept = thin(10_000, 100)
    assert len(kept) <= 100
    assert (kept[0], kept[-1]) == (0, 9999)


# model behaviour (Made-With-ML's invariance tests, for any contract)


@pytest.mark.parametrize("task", TASKS)
def test_the_id_and_ignored_columns_do_not_change_predictions(models, datasets, task):
    variant, _, held_out = datasets[task]
    features = features_of(variant)
    untouched = [name for name in (features.id, *features.ignored) if name]
    if not untouched:
        pytest.skip("this contract has no id or ignored column")
    shuffled = held_out.copy()
    for name in untouched:
        shuffled[name] = shuffled[name].to_numpy()[::-1]
    for family in FAMILIES[features.task]:
        model = models[task, family]
        np.testing.assert_array_equal(model.predict(shuffled), model.predict(held_out))
