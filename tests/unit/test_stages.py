"""Each stage's pure core, tested without DVC or files: split, train, evaluate, model store, synthetic.

The stages' `main` functions only do I/O around these functions, so this is
where the pipeline's promises are kept: splits are stratified and seeded, every model family learns
binary and multiclass targets, metrics match scikit-learn's, model files are
byte-identical and load only the types we trust, and synthetic data follows
the contract.
"""

from __future__ import annotations

import operator

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from pipeline.contract import features_of
from pipeline.errors import PipelineError
from pipeline.evaluate import evaluate_model, score
from pipeline.model_store import TRUSTED_TYPES, canonical_dump, load_model, save_model
from pipeline.params import EvaluateParams, Params, SplitParams, TrainParams
from pipeline.split import split_frame
from pipeline.synthetic import generate
from pipeline.train import fit_model
from pipeline.validate import check_frame

FAMILIES = ("logistic_regression", "random_forest", "hist_gradient_boosting")
TARGETS = ("binary", "multiclass")
TRAIN_ROWS, TEST_ROWS = 400, 200


def multiclass(contract: pa.DataFrameSchema) -> pa.DataFrameSchema:
    """The project's contract with species as the target and sex as an ordinary categorical feature."""
    return contract.update_columns({"species": {"metadata": {"role": "target"}}, "sex": {"metadata": None}})


@pytest.fixture(scope="module")
def datasets(contract) -> dict[str, tuple[pa.DataFrameSchema, pd.DataFrame, pd.DataFrame]]:
    """Per target kind: its contract and a train/held-out pair drawn from one seeded synthetic sample."""
    result = {}
    for kind, variant in (("binary", contract), ("multiclass", multiclass(contract))):
        frame = generate(TRAIN_ROWS + TEST_ROWS, seed=1, contract=variant)
        result[kind] = variant, frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:].reset_index(drop=True)
    return result


def train_params(params: Params, family: str) -> TrainParams:
    """params.yaml's train section switched to `family`, with a 20-tree forest to keep the tier fast."""
    forest = params.train.random_forest.model_copy(update={"n_estimators": 20})
    return params.train.model_copy(update={"model": family, "random_forest": forest})


@pytest.fixture(scope="module")
def models(datasets, params):
    """Every model family fitted once per target kind."""
    return {
        (kind, family): fit_model(train, features_of(variant), train_params(params, family))
        for kind, (variant, train, _) in datasets.items()
        for family in FAMILIES
    }


@pytest.fixture(scope="module")
def dumps(models) -> dict[tuple[str, str], bytes]:
    return {key: canonical_dump(model) for key, model in models.items()}


# split


def test_split_is_stratified(synthetic):
    train, test = split_frame(synthetic, "sex", SplitParams(test_size=0.25, seed=0))

    assert len(train) + len(test) == len(synthetic)
    assert set(train["sample_id"]).isdisjoint(test["sample_id"])
    for cls, count in synthetic["sex"].value_counts().items():
        assert abs((test["sex"] == cls).sum() - 0.25 * count) <= 1, cls


def test_split_is_seeded(synthetic):
    first = split_frame(synthetic, "sex", SplitParams(test_size=0.25, seed=0))
    again = split_frame(synthetic, "sex", SplitParams(test_size=0.25, seed=0))
    other = split_frame(synthetic, "sex", SplitParams(test_size=0.25, seed=1))

    for frame, same in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(frame, same)
    assert set(first[1]["sample_id"]) != set(other[1]["sample_id"])


def test_split_refuses_a_class_with_one_row(synthetic):
    frame = pd.concat([synthetic[synthetic["sex"] == "male"], synthetic[synthetic["sex"] == "female"].head(1)])
    with pytest.raises(PipelineError, match=r"class\(es\) female have fewer than 2 rows"):
        split_frame(frame, "sex", SplitParams(test_size=0.25, seed=0))


def test_split_too_small_for_every_class_is_a_pipeline_error(synthetic):
    with pytest.raises(PipelineError, match="leaves fewer rows than the 2 classes"):
        split_frame(synthetic.head(20), "sex", SplitParams(test_size=0.05, seed=0))


# train


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", TARGETS)
def test_every_family_learns_the_target(models, datasets, kind, family):
    variant, _, held_out = datasets[kind]
    features = features_of(variant)
    model = models[kind, family]

    proba = model.predict_proba(held_out[features.columns])

    assert proba.shape == (len(held_out), len(features.target_classes))
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    accuracy = accuracy_score(held_out[features.target], model.predict(held_out[features.columns]))
    majority = held_out[features.target].value_counts(normalize=True).max()
    assert accuracy > majority


# evaluate


def test_score_binary_matches_sklearn():
    classes = ["female", "male"]
    y_true = pd.Series(["male", "female", "male", "female", "male", "female"])
    proba = np.array([[0.2, 0.8], [0.7, 0.3], [0.6, 0.4], [0.4, 0.6], [0.1, 0.9], [0.8, 0.2]])
    y_pred = ["male", "female", "female", "male", "male", "female"]

    assert score(y_true, proba, classes, "male") == pytest.approx(
        {
            "accuracy": accuracy_score(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "f1": f1_score(y_true, y_pred, pos_label="male"),
            "roc_auc": roc_auc_score(y_true == "male", proba[:, 1]),
            "log_loss": log_loss(y_true, proba, labels=classes),
        }
    )


def test_score_multiclass_matches_sklearn():
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    y_true = pd.Series(["Adelie", "Chinstrap", "Gentoo", "Adelie", "Gentoo", "Chinstrap"])
    proba = np.array(
        [[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6], [0.1, 0.8, 0.1]]
    )
    y_pred = ["Adelie", "Adelie", "Gentoo", "Chinstrap", "Gentoo", "Chinstrap"]

    assert score(y_true, proba, classes, "Gentoo") == pytest.approx(
        {
            "accuracy": accuracy_score(y_true, y_pred),
            "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
            "f1": f1_score(y_true, y_pred, average="macro"),
            "roc_auc": roc_auc_score(y_true, proba, labels=classes, multi_class="ovr", average="macro"),
            "log_loss": log_loss(y_true, proba, labels=classes),
        }
    )


@pytest.mark.parametrize("kind", TARGETS)
def test_evaluate_model_scores_and_ranks_every_feature(models, datasets, kind):
    variant, _, held_out = datasets[kind]
    features = features_of(variant)

    evaluation = evaluate_model(
        models[kind, "logistic_regression"], held_out, features, EvaluateParams(permutation_repeats=2, seed=0)
    )

    assert sorted(evaluation.importance["feature"]) == sorted(features.columns)
    assert evaluation.importance["importance"].notna().all()
    assert set(evaluation.metrics) == {"accuracy", "balanced_accuracy", "f1", "roc_auc", "log_loss"}
    assert evaluation.classes == features.target_classes


def test_binary_positive_class_is_the_contracts_last_value(contract, params):
    """README and Contract: "for a binary target the positive class is the last allowed value in the contract"."""
    reordered = contract.update_column("sex", checks=[pa.Check.isin(["male", "female"])])
    features = features_of(reordered)
    frame = generate(220, seed=1, contract=reordered)
    train, test = frame.iloc[:20], frame.iloc[20:]  # fitted on 20 rows, the model errs enough for the F1s to differ
    model = fit_model(train, features, train_params(params, "logistic_regression"))
    y_true, proba = test["sex"], model.predict_proba(test[features.columns])
    y_pred = model.predict(test[features.columns])
    if f1_score(y_true, y_pred, pos_label="female") == f1_score(y_true, y_pred, pos_label="male"):
        pytest.fail("the two classes' F1 scores coincide, so this test cannot tell them apart")

    evaluation = evaluate_model(model, test, features, EvaluateParams(permutation_repeats=1, seed=0))

    assert evaluation.metrics["f1"] == pytest.approx(f1_score(y_true, y_pred, pos_label="female"))
    # sklearn's log_loss reads probability columns in sorted label order, whatever the contract's order.
    assert evaluation.metrics["log_loss"] == pytest.approx(log_loss(y_true, proba, labels=["female", "male"]))


# model store


@pytest.mark.parametrize("family", FAMILIES)
def test_canonical_dump_is_byte_identical(models, dumps, datasets, params, family):
    variant, train, _ = datasets["binary"]
    model = models["binary", family]
    refit = fit_model(train, features_of(variant), train_params(params, family))

    assert canonical_dump(model) == dumps["binary", family]
    assert canonical_dump(refit) == dumps["binary", family]


@pytest.mark.parametrize("family", FAMILIES)
def test_save_and_load_round_trip(models, datasets, tmp_path, family):
    variant, _, held_out = datasets["binary"]
    X = held_out[features_of(variant).columns]
    model = models["binary", family]

    save_model(model, tmp_path / "model.skops")
    loaded = load_model(tmp_path / "model.skops")

    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("kind", TARGETS)
def test_each_family_needs_only_trusted_types(dumps, kind, family):
    assert set(sio.get_untrusted_types(data=dumps[kind, family])) <= set(TRUSTED_TYPES)


def test_every_trusted_type_is_needed(dumps):
    needed = set().union(*(sio.get_untrusted_types(data=dump) for dump in dumps.values()))
    assert needed == set(TRUSTED_TYPES)


def test_load_refuses_a_model_that_needs_an_untrusted_type(tmp_path):
    X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(X, y)
    path = tmp_path / "model.skops"
    save_model(model, path)

    with pytest.raises(PipelineError, match="refusing to load") as error:
        load_model(path)

    assert str(path) in str(error.value)
    assert f"{operator.neg.__module__}.{operator.neg.__name__}" in str(error.value)


# synthetic


def test_synthetic_is_deterministic_per_seed(contract):
    pd.testing.assert_frame_equal(generate(200, seed=7, contract=contract), generate(200, seed=7, contract=contract))
    assert not generate(200, seed=7, contract=contract).equals(generate(200, seed=8, contract=contract))


def test_synthetic_passes_the_contract(synthetic, contract):
    report, _ = check_frame(synthetic, contract, "synthetic")
    assert report.passed, report.failures


def test_synthetic_has_nulls_only_in_nullable_columns(synthetic, contract):
    with_nulls = set(synthetic.columns[synthetic.isna().any()])
    assert with_nulls == {name for name, column in contract.columns.items() if column.nullable}
