"""The data contract is the pipeline's front door: nothing learns from a file that breaks it.

These tests write each kind of broken file a user might hand the pipeline to a
real file on disk and check that validation reports it as a failure (never a
crash), with a message that names the file, the column and the check, so the
user knows what to fix without reading a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.files import read_table
from pipeline.validate import check_file, check_frame, describe_failures

ISLANDS = "isin(['Biscoe', 'Dream', 'Torgersen'])"


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def validate_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline.validate ARGS` with the project's interpreter, from a directory without params.yaml."""
    command = [sys.executable, "-m", "pipeline.validate", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def test_synthetic_frame_passes(synthetic, contract):
    report, validated = check_frame(synthetic, contract, "synthetic")
    assert report.passed
    assert report.rows == len(synthetic)
    assert list(validated.columns) == list(contract.columns)


def test_good_csv_file_passes(synthetic, contract, tmp_path):
    report, validated = check_file(write_csv(synthetic, tmp_path / "good.csv"), contract)
    assert report.passed
    assert report.rows == len(validated) == len(synthetic)


def test_read_table_keeps_text_ids_as_text(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("sample_id,body_mass_g\n007,3750\n010,3800\n", encoding="utf-8")
    assert read_table(path, string_columns=("sample_id",))["sample_id"].tolist() == ["007", "010"]


def test_read_table_names_a_missing_file(tmp_path):
    with pytest.raises(PipelineError, match=r"missing\.csv: file not found"):
        read_table(tmp_path / "missing.csv")


def drop_island(frame):
    return frame.drop(columns=["island"])


def add_colour(frame):
    return frame.assign(colour="blue")


def text_in_body_mass(frame):
    frame = frame.astype({"body_mass_g": object})
    frame.loc[3, "body_mass_g"] = "heavy"
    return frame


def body_mass_in_kg(frame):
    frame.loc[[1, 2], "body_mass_g"] = 3.75
    return frame


def unknown_island(frame):
    frame.loc[4, "island"] = "Atlantis"
    return frame


def missing_island(frame):
    frame.loc[[5, 6, 7], "island"] = None
    return frame


def duplicate_id(frame):
    frame.loc[1, "sample_id"] = frame.loc[0, "sample_id"]
    return frame


@pytest.mark.parametrize(
    ("corrupt", "column", "check", "count", "example"),
    [
        (drop_island, "island", "missing column", 0, None),
        (add_colour, "colour", "unexpected column (not in the contract)", 0, None),
        (text_in_body_mass, "body_mass_g", "coerce_dtype('float64')", 1, "'heavy'"),
        (body_mass_in_kg, "body_mass_g", "greater_than_or_equal_to(2000)", 2, "'3.75'"),
        (unknown_island, "island", ISLANDS, 1, "'Atlantis'"),
        (missing_island, "island", "not_nullable", 3, None),
        (duplicate_id, "sample_id", "field_uniqueness", 2, "'syn-00000000'"),
    ],
    ids=["missing-column", "unexpected-column", "wrong-dtype", "out-of-range", "unknown-category", "null", "dup-id"],
)
def test_bad_column_is_reported(synthetic, contract, tmp_path, corrupt, column, check, count, example):
    path = write_csv(corrupt(synthetic.copy()), tmp_path / "batch.csv")

    report, validated = check_file(path, contract)

    assert validated is None
    assert [(f.column, f.check, f.count) for f in report.failures] == [(column, check, count)]
    message = describe_failures([report])
    assert str(path) in message
    assert f"column {column!r}" in message
    assert f"check {check}" in message
    if example:
        assert example in report.failures[0].examples
        assert example in message


def write_empty(path: Path, frame: pd.DataFrame) -> None:
    path.write_bytes(b"")


def write_header_only(path: Path, frame: pd.DataFrame) -> None:
    path.write_text(",".join(frame.columns) + "\n", encoding="utf-8")


def write_ragged(path: Path, frame: pd.DataFrame) -> None:
    lines = frame.to_csv(index=False).splitlines()
    lines[5] += ",stray"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_semicolons(path: Path, frame: pd.DataFrame) -> None:
    frame.to_csv(path, index=False, sep=";")


def write_latin1(path: Path, frame: pd.DataFrame) -> None:
    frame.loc[0, "sample_id"] = "Pingüino-1"
    frame.to_csv(path, index=False, encoding="latin-1")


@pytest.mark.parametrize(
    ("write", "check", "cause"),
    [
        (write_empty, "readable", "file is empty (0 bytes)"),
        (write_header_only, "has data rows", "the file has a header but no rows"),
        (write_ragged, "readable", "cannot be parsed as CSV"),
        (write_semicolons, "readable", "separated by ';'"),
        (write_latin1, "readable", "not UTF-8 text (byte 0xfc"),
    ],
    ids=["empty", "header-only", "ragged-rows", "semicolons", "latin-1"],
)
def test_unreadable_file_is_a_failure_not_a_crash(synthetic, contract, tmp_path, write, check, cause):
    path = tmp_path / "batch.csv"
    write(path, synthetic.copy())

    report, validated = check_file(path, contract)

    assert validated is None
    assert report.rows == 0
    assert [(f.column, f.check, f.count) for f in report.failures] == [(None, check, 0)]
    message = describe_failures([report])
    assert str(path) in message
    assert f"file, check {check}" in message
    assert cause in message


def test_parquet_file_passes(synthetic, contract, tmp_path):
    path = tmp_path / "batch.parquet"
    synthetic.to_parquet(path, index=False)
    report, validated = check_file(path, contract)
    assert report.passed
    pd.testing.assert_frame_equal(validated, synthetic)


def test_unlabelled_batch_passes_only_when_labels_are_optional(synthetic, contract, tmp_path):
    path = write_csv(synthetic.drop(columns=["sex"]), tmp_path / "unlabelled.csv")

    optional, validated = check_file(path, contract, labels_optional=True)
    required, _ = check_file(path, contract)

    assert optional.passed
    assert not optional.labelled
    assert "sex" not in validated.columns
    assert [(f.column, f.check) for f in required.failures] == [("sex", "missing column")]


def test_cli_rejects_a_bad_file_without_a_traceback(synthetic, tmp_path):
    path = write_csv(unknown_island(synthetic.copy()), tmp_path / "batch.csv")

    result = validate_cli(str(path), cwd=tmp_path)

    assert result.returncode == 1
    assert str(path) in result.stderr
    assert "column 'island'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_accepts_a_good_file(synthetic, tmp_path):
    path = write_csv(synthetic, tmp_path / "batch.csv")
    result = validate_cli(str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{len(synthetic)} rows in 1 file(s) passed" in result.stderr


def test_cli_writes_the_json_report(synthetic, tmp_path):
    path = write_csv(body_mass_in_kg(synthetic.copy()), tmp_path / "batch.csv")
    out = tmp_path / "out.json"

    result = validate_cli(str(path), "--report", str(out), cwd=tmp_path)

    assert result.returncode == 1
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["passed"] is False
    assert report["rows_checked"] == len(synthetic)
    [file] = report["files"]
    assert file["path"] == str(path)
    assert file["failures"] == [
        {"column": "body_mass_g", "check": "greater_than_or_equal_to(2000)", "count": 2, "examples": ["'3.75'"]}
    ]
