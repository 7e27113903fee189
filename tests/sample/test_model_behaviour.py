"""Behavioural tests of the default model on the real penguins, in the style of Made-With-ML.

Metrics say how often the model is right; these say it is right for sensible
reasons. Trained exactly as the pipeline trains it (params.yaml's train
section on the validated, split reference seasons), the model must ignore a
bird's id (invariance) and must not think a heavier bird less likely to be
male (direction: males are the heavier sex in all three species).
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.checks import check_frame
from pipeline.features import features_of
from pipeline.ingest import read_bundled_penguins, split_by_study
from pipeline.split import split_frame
from pipeline.train import fit_model


@pytest.fixture(scope="module")
def trained(params, contract):
    """The default model fitted on the train split of the reference seasons, and the held-out test birds."""
    reference, _ = split_by_study(read_bundled_penguins(), params.ingest)
    report, validated = check_frame(reference, contract, "reference")
    assert report.passed, report.failures
    features = features_of(contract)
    train, test = split_frame(validated, features, params.split)
    return fit_model(train, features, params.train), test


def p_male(model, frame) -> np.ndarray:
    return model.predict_proba(frame)[:, list(model.classes_).index("male")]


def test_sample_id_does_not_change_predictions(trained):
    model, test = trained
    renamed = test.assign(sample_id=test["sample_id"].to_numpy()[::-1])
    assert not renamed["sample_id"].equals(test["sample_id"])
    np.testing.assert_array_equal(model.predict_proba(renamed), model.predict_proba(test))


def test_heavier_birds_are_not_less_likely_male(trained, contract):
    model, test = trained
    heavier = test.assign(body_mass_g=(test["body_mass_g"] + 1000).clip(upper=7000))
    assert check_frame(heavier, contract, "heavier")[0].passed
    assert p_male(model, heavier).mean() >= p_male(model, test).mean()
