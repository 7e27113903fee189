"""Batch scoring: every input row scored, in batches, and nothing written for a bad file.

Most tests call `predict_file`, the core the CLI wraps, in-process; a few run
the command line itself, for its messages and exit codes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline.errors import PipelineError
from pipeline.model_source import from_file
from pipeline.model_store import load_model
from pipeline.predict import predict_file
from pipeline.predictions import PREDICTION, VERSION, proba_column

ROOT = Path(__file__).resolve().parents[2]


def predict(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline.predict", *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def loaded(fitted):
    return from_file(fitted[0], registry=False)


def score_file(source: Path, out: Path, loaded, contract, batch_rows: int = 100_000, log: Path | None = None):
    return predict_file(source, out, loaded, contract, batch_rows, log)


@pytest.fixture(scope="module")
def batch(fitted, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "batch.csv"
    fitted[1].to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_every_row_is_scored_with_its_id_probabilities_and_version(fitted, batch, features, tmp_path, suffix):
    model_path, rows = fitted
    out = tmp_path / f"scored{suffix}"

    done = predict(batch, "-o", out, "--model", model_path)

    assert done.returncode == 0, done.stderr
    scored = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert len(scored) == len(rows)
    expected = [PREDICTION, VERSION]
    if features.id:
        expected.insert(0, features.id)
        assert scored[features.id].astype(str).tolist() == rows[features.id].astype(str).tolist()
    model = load_model(model_path)
    if features.is_classification:
        expected[-1:-1] = [proba_column(c) for c in model.classes_]
    assert list(scored.columns) == expected
    assert scored[VERSION].str.startswith("md5:").all()
    assert f"{len(rows)} rows scored" in done.stderr


def test_batches_do_not_change_the_answer(loaded, contract, batch, tmp_path):
    whole, pieces = tmp_path / "whole.parquet", tmp_path / "pieces.parquet"
    score_file(batch, whole, loaded, contract, batch_rows=100_000)
    scored = score_file(batch, pieces, loaded, contract, batch_rows=7)
    assert scored.batches > 20
    pd.testing.assert_frame_equal(pd.read_parquet(whole), pd.read_parquet(pieces))


def test_parquet_input_and_classes_in_the_metadata(fitted, loaded, contract, tmp_path, features):
    model_path, rows = fitted
    source, out = tmp_path / "batch.parquet", tmp_path / "scored.parquet"
    rows.to_parquet(source, index=False)
    score_file(source, out, loaded, contract, batch_rows=50)
    classes = json.loads(pq.read_schema(out).metadata[b"ratchet:classes"])
    assert classes == (
        [c.item() if hasattr(c, "item") else c for c in load_model(model_path).classes_]
        if features.is_classification
        else []
    )


def test_a_file_that_breaks_the_contract_writes_nothing_and_says_what_validate_says(fitted, batch, tmp_path):
    model_path, rows = fitted
    broken = tmp_path / "broken.csv"
    rows.assign(not_in_the_contract=1).to_csv(broken, index=False)
    out = tmp_path / "scored.parquet"

    done = predict(broken, "-o", out, "--model", model_path, "--batch-rows", "10")
    validated = subprocess.run(
        [sys.executable, "-m", "pipeline.validate", "--unlabelled", str(broken)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "column 'not_in_the_contract', check unexpected column (not in the contract)" in done.stderr
    assert "column 'not_in_the_contract', check unexpected column (not in the contract)" in validated.stderr
    assert list(tmp_path.glob("scored*")) == []


def test_a_duplicate_id_in_another_batch_is_found(fitted, loaded, contract, features, tmp_path):
    if not features.id:
        pytest.skip("this contract has no id column")
    _, rows = fitted
    duplicated = pd.concat([rows, rows.head(1)], ignore_index=True)
    source, out = tmp_path / "dup.csv", tmp_path / "scored.parquet"
    duplicated.to_csv(source, index=False)

    with pytest.raises(PipelineError) as error:
        score_file(source, out, loaded, contract, batch_rows=50)

    assert f"column {features.id!r}, check field_uniqueness (across batches): 2 row(s)" in str(error.value)
    assert list(tmp_path.glob("scored*")) == []


def test_the_check_across_batches_keeps_only_repeated_values_and_finds_the_same_rows():
    """Seeded batches of hashes, many values repeated within and across batches: the same failures either way."""
    import numpy as np

    from pipeline.checks import duplicates_across
    from pipeline.predict import _repeated

    rng = np.random.default_rng(0)
    for _ in range(200):
        seen, whole, first = [], [], 0
        for _ in range(int(rng.integers(1, 6))):
            hashes = rng.integers(0, 40, int(rng.integers(0, 30))).astype("uint64")
            seen.append((first, {"id": hashes}))
            whole.append({"id": (hashes, np.arange(first, first + len(hashes)))})
            first += len(hashes)
        assert duplicates_across(_repeated(seen)) == duplicates_across(whole)


def test_the_prediction_log_gets_a_line_per_row(fitted, loaded, contract, batch, tmp_path):
    _, rows = fitted
    log = tmp_path / "logs" / "predictions.jsonl"
    score_file(batch, tmp_path / "o.parquet", loaded, contract, batch_rows=33, log=log)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["row"] for line in lines] == list(range(len(rows)))
    assert {line["source"] for line in lines} == {"batch"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "-o", "{out}.parquet"], "missing.csv: file not found"),
        (["{batch}", "-o", "{out}.json"], "must end in .parquet or .csv"),
        (["{batch}", "-o", "{out}.parquet", "--model", "nope.skops"], "nope.skops: model file not found"),
    ],
)
def test_bad_invocations_are_one_line_errors(batch, tmp_path, args, message):
    done = predict(*[arg.replace("{batch}", str(batch)).replace("{out}", str(tmp_path / "out")) for arg in args])
    assert done.returncode in (1, 2)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
