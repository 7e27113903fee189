"""Model files: byte-identical dumps, only trusted types, and one-line errors for every kind of damage.

A model file is input like any other: truncated, bit-flipped, with a broken
schema.json, with something else inside, or simply not the file dvc.lock
recorded. Each must stop the stage with one line naming the file and what to
run, never a traceback, and never load untrusted code.
"""

from __future__ import annotations

import io
import json
import operator
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
import yaml
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from pipeline.errors import PipelineError
from pipeline.features import features_of
from pipeline.model_store import (
    TRUSTED_TYPES,
    canonical_dump,
    file_md5,
    load_model,
    locked_md5,
    save_model,
    verify_against_lock,
)
from pipeline.synthetic import generate
from pipeline.train import fit_model

FAMILIES = {
    "binary": ("hist_gradient_boosting", "random_forest", "logistic_regression"),
    "multiclass": ("hist_gradient_boosting", "random_forest", "logistic_regression"),
    "regression": ("hist_gradient_boosting", "random_forest", "ridge"),
}


def train_params(params, family):
    forest = params.train.random_forest.model_copy(update={"n_estimators": 10})
    return params.train.model_copy(update={"model": family, "random_forest": forest})


@pytest.fixture(scope="module")
def fitted(toy_contracts, params):
    """(task, family) -> (model, held-out X), each fitted on 300 synthetic rows."""
    result = {}
    for task, families in FAMILIES.items():
        variant = toy_contracts[task]
        features = features_of(variant)
        frame = generate(400, seed=2, contract=variant)
        for family in families:
            model = fit_model(frame.iloc[:300], features, train_params(params, family))
            result[task, family] = (model, frame.iloc[300:][features.columns], frame.iloc[:300], features)
    return result


@pytest.fixture(scope="module")
def dumps(fitted):
    return {key: canonical_dump(model) for key, (model, *_) in fitted.items()}


@pytest.fixture(scope="module")
def good_file(fitted, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.skops"
    save_model(fitted["binary", "hist_gradient_boosting"][0], path)
    return path


def test_canonical_dump_is_byte_identical(fitted, dumps, params):
    for (task, family), (_, _, train, features) in fitted.items():
        refit = fit_model(train, features, train_params(params, family))
        assert canonical_dump(refit) == dumps[task, family], (task, family)


def test_save_and_load_round_trip(fitted, tmp_path):
    for (task, family), (model, X, *_) in fitted.items():
        path = tmp_path / f"{task}-{family}.skops"
        save_model(model, path)
        loaded = load_model(path)
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_each_family_needs_only_trusted_types_and_every_trusted_type_is_needed(dumps):
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


def _rewrite(data: bytes, name: str, content: bytes) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for entry in source.namelist():
            target.writestr(entry, content if entry == name else source.read(entry))
    return out.getvalue()


def _flip_inside_a_member(data: bytes) -> bytes:
    """One flipped byte inside a stored member's data: the zip directory stays readable, the CRC does not."""
    info = max(zipfile.ZipFile(io.BytesIO(data)).infolist(), key=lambda i: i.compress_size)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    damaged = bytearray(data)
    damaged[start + info.compress_size // 2] ^= 0xFF
    return bytes(damaged)


DAMAGE = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "not a zip": lambda data: b"hello, world" * 10,
    "bad crc": _flip_inside_a_member,
    "bad schema.json": lambda data: _rewrite(data, "schema.json", b"{not json"),
    "no schema.json": lambda data: _rewrite(data, "schema.json", b"{}"),
    "another object": lambda data: sio.dumps({"weights": [1, 2, 3]}),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_model_is_one_line_naming_the_file(good_file, tmp_path, damage):
    path = tmp_path / "model.skops"
    path.write_bytes(DAMAGE[damage](good_file.read_bytes()))
    with pytest.raises(PipelineError) as error:
        load_model(path)
    message = str(error.value)
    assert str(path) in message
    assert "\n" not in message
    assert "dvc" in message


def test_a_damaged_model_stops_a_stage_without_a_traceback(good_file, tmp_path, params):
    """The evaluate stage itself, run as DVC runs it, on a truncated model."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params.model_dump()), encoding="utf-8")
    model = tmp_path / params.paths.model
    model.parent.mkdir(parents=True)
    model.write_bytes(good_file.read_bytes()[:1000])
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.evaluate"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert params.paths.model in done.stderr


def test_verify_against_lock(good_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = Path("models/model.skops")
    model.parent.mkdir()
    model.write_bytes(good_file.read_bytes())
    lock = {"stages": {"train": {"outs": [{"path": "models/model.skops", "md5": file_md5(model)}]}}}
    Path("dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")

    assert locked_md5(model) == file_md5(model)
    assert verify_against_lock(model) == file_md5(model)
    assert verify_against_lock("models/other.skops") is None  # not recorded: nothing to compare with

    damaged = bytearray(model.read_bytes())
    damaged[100] ^= 0xFF
    model.write_bytes(bytes(damaged))
    with pytest.raises(PipelineError, match=r"is not the \w+ that dvc\.lock records") as error:
        verify_against_lock(model)
    assert "dvc pull" in str(error.value)


def test_loading_a_model_imports_no_dask_and_trusts_the_same_estimators(good_file):
    """skops' estimator table, built without the dask.array import the walk would pull in, is the same table."""
    script = (
        "import json, sys\n"
        "from pipeline.model_store import load_model\n"
        f"load_model({str(good_file)!r})\n"
        "from skops.io import _trusted_types as t\n"
        "print(json.dumps({'dask': 'dask.array' in sys.modules, 'names': sorted(t.SKLEARN_ESTIMATOR_TYPE_NAMES)}))\n"
    )
    plain = "import json, skops.io._trusted_types as t; print(json.dumps(sorted(t.SKLEARN_ESTIMATOR_TYPE_NAMES)))"
    ours = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300)
    theirs = subprocess.run([sys.executable, "-c", plain], capture_output=True, text=True, check=True, timeout=300)
    loaded = json.loads(ours.stdout)
    assert loaded["dask"] is False
    assert loaded["names"] == json.loads(theirs.stdout)
    assert len(loaded["names"]) > 100  # every scikit-learn estimator, the pipeline's among them


def test_every_model_family_selects_its_columns_by_name(fitted):
    """Scoring a frame with more columns, in another order, gives the predictions of its feature columns alone."""
    from pipeline.predictions import predict_arrays, selects_by_name

    for (task, family), (model, X, _, features) in fitted.items():
        assert selects_by_name(model), (task, family)
        wider = X.assign(not_a_feature="x", another=1.5)[["another", *reversed(X.columns), "not_a_feature"]]
        predicted, proba = predict_arrays(model, wider, features)
        expected = model.predict_proba(X) if features.is_classification else model.predict(X)
        assert np.array_equal(proba if features.is_classification else predicted, expected), (task, family)
    assert not selects_by_name(LogisticRegression())  # anything else gets its feature columns selected
