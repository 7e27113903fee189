"""The data contract is the pipeline's front door: nothing learns from a file that breaks it.

These tests write each kind of broken file a user might hand the pipeline to a
real file on disk and check that validation reports it as a failure (never a
crash), with a message that names the file, the column and the check, so the
user knows what to fix without reading a traceback. The columns to break are
read from the contract: the project's own, and a toy contract that has every
column kind, so each case runs even when the project's data lacks that kind.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.checks import (
    Failure,
    FileReport,
    FrameChecker,
    check_file,
    check_frame,
    describe_failures,
    load_checked,
    report_payload,
    text_columns,
)
from pipeline.errors import PipelineError
from pipeline.features import allowed_values, features_of
from pipeline.files import read_table
from pipeline.synthetic import generate

CONTRACTS = ("project", "toy")


@dataclass(frozen=True)
class Case:
    """A frame with one thing broken, and what validation must say about it."""

    frame: pd.DataFrame
    column: str
    check: str
    count: int
    example: str | None


@pytest.fixture(params=CONTRACTS)
def subject(request, contract, toy_contracts) -> tuple[pa.DataFrameSchema, pd.DataFrame]:
    schema = contract if request.param == "project" else toy_contracts["binary"]
    return schema, generate(300, seed=0, contract=schema)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def validate_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline.validate ARGS` with the project's interpreter, from a directory without params.yaml."""
    command = [sys.executable, "-m", "pipeline.validate", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def first(names, reason: str):
    name = next(iter(names), None)
    if name is None:
        pytest.skip(f"this contract has no {reason}")
    return name


def _checks(column: pa.Column) -> dict:
    return {check.name: check for check in column.checks}


# One function per kind of breakage; each picks its column from the contract.


def missing_column(schema, frame) -> Case:
    name = first(features_of(schema).columns, "feature column")
    return Case(frame.drop(columns=[name]), name, "missing column", 0, None)


def unexpected_column(schema, frame) -> Case:
    return Case(
        frame.assign(not_in_the_contract=1), "not_in_the_contract", "unexpected column (not in the contract)", 0, None
    )


def text_in_a_number(schema, frame) -> Case:
    name = first(features_of(schema).numeric, "numeric feature")
    frame = frame.astype({name: object})
    frame.loc[3, name] = "heavy"
    dtype = schema.columns[name].dtype
    return Case(frame, name, f"coerce_dtype('{dtype}')", 1, "'heavy'")


def out_of_range(schema, frame) -> Case:
    candidates = [
        (name, check)
        for name in features_of(schema).numeric
        for key, check in _checks(schema.columns[name]).items()
        if key in ("greater_than_or_equal_to", "in_range")
    ]
    name, check = first(candidates, "numeric feature with a lower bound")
    low = check.statistics["min_value"]
    frame.loc[[1, 2], name] = low - 1
    integer = pd.api.types.is_integer_dtype(schema.columns[name].dtype.type)  # written "17", not "17.0"
    return Case(frame, name, check.error, 2, repr(str(int(low - 1) if integer else float(low - 1))))


def unknown_category(schema, frame) -> Case:
    features = features_of(schema)
    name = first((n for n in features.categorical if features.categories[n] is not None), "listed categories")
    frame = frame.astype({name: object})
    frame.loc[4, name] = "Atlantis"
    check = _checks(schema.columns[name])["isin"].error
    return Case(frame, name, check, 1, "'Atlantis'")


def null_where_not_allowed(schema, frame) -> Case:
    features = features_of(schema)
    integer = pd.api.types.is_integer_dtype  # a null in an integer column fails its type first
    name = first(
        (n for n in features.columns if not schema.columns[n].nullable and not integer(schema.columns[n].dtype.type)),
        "non-nullable, non-integer feature",
    )
    frame = frame.astype({name: object})
    frame.loc[[5, 6, 7], name] = None
    return Case(frame, name, "not_nullable", 3, None)


def duplicate_id(schema, frame) -> Case:
    features = features_of(schema)
    name = first((n for n in [features.id] if n and schema.columns[n].unique), "unique id column")
    frame.loc[1, name] = frame.loc[0, name]
    return Case(frame, name, "field_uniqueness", 2, repr(str(frame.loc[0, name])))


@pytest.mark.parametrize(
    "corrupt",
    [
        missing_column,
        unexpected_column,
        text_in_a_number,
        out_of_range,
        unknown_category,
        null_where_not_allowed,
        duplicate_id,
    ],
)
def test_bad_column_is_reported(subject, tmp_path, corrupt):
    schema, frame = subject
    case = corrupt(schema, frame.copy())
    path = write_csv(case.frame, tmp_path / "batch.csv")

    report, validated = check_file(path, schema)

    assert validated is None
    assert [(f.column, f.check, f.count) for f in report.failures] == [(case.column, case.check, case.count)]
    message = describe_failures([report])
    assert str(path) in message
    assert f"column {case.column!r}" in message
    assert f"check {case.check}" in message
    if case.example:
        assert case.example in report.failures[0].examples
        assert case.example in message
    if case.count:
        assert len(report.failures[0].rows) == case.count  # which rows: what the API's 422 answer names


def test_synthetic_frame_passes(subject):
    schema, frame = subject
    report, validated = check_frame(frame, schema, "synthetic")
    assert report.passed
    assert report.rows == len(frame)
    assert list(validated.columns) == list(schema.columns)


def test_good_csv_and_parquet_files_pass(subject, tmp_path):
    schema, frame = subject
    csv_report, from_csv = check_file(write_csv(frame, tmp_path / "good.csv"), schema)
    frame.to_parquet(tmp_path / "good.parquet", index=False)
    parquet_report, from_parquet = check_file(tmp_path / "good.parquet", schema)
    assert csv_report.passed
    assert parquet_report.passed
    assert len(from_csv) == len(from_parquet) == len(frame)
    pd.testing.assert_frame_equal(from_parquet, frame)


def test_read_table_keeps_text_ids_as_text(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("row_id,size\n007,3750\n010,3800\n", encoding="utf-8")
    assert read_table(path, string_columns=("row_id",))["row_id"].tolist() == ["007", "010"]


def test_read_table_names_a_missing_file(tmp_path):
    with pytest.raises(PipelineError, match=r"missing\.csv: file not found"):
        read_table(tmp_path / "missing.csv")


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
    path.write_bytes(frame.to_csv(index=False).encode("utf-8") + "Pingüino\n".encode("latin-1"))


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
def test_unreadable_file_is_a_failure_not_a_crash(subject, tmp_path, write, check, cause):
    schema, frame = subject
    if write is write_semicolons and len(frame.columns) < 2:
        pytest.skip("a one-column file has no separator to get wrong")
    path = tmp_path / "batch.csv"
    write(path, frame.copy())

    report, validated = check_file(path, schema)

    assert validated is None
    assert report.rows == 0
    assert [(f.column, f.check, f.count) for f in report.failures] == [(None, check, 0)]
    message = describe_failures([report])
    assert str(path) in message
    assert f"file, check {check}" in message
    assert cause in message


def test_unlabelled_batch_passes_only_when_labels_are_optional(subject, tmp_path):
    schema, frame = subject
    target = features_of(schema).target
    path = write_csv(frame.drop(columns=[target]), tmp_path / "unlabelled.csv")

    optional, validated = check_file(path, schema, labels_optional=True)
    required, _ = check_file(path, schema)

    assert optional.passed
    assert not optional.labelled
    assert target not in validated.columns
    assert [(f.column, f.check) for f in required.failures] == [(target, "missing column")]


def test_cli_rejects_a_bad_file_without_a_traceback(synthetic, contract, tmp_path):
    case = missing_column(contract, synthetic.copy())
    path = write_csv(case.frame, tmp_path / "batch.csv")

    result = validate_cli(str(path), cwd=tmp_path)

    assert result.returncode == 1
    assert str(path) in result.stderr
    assert f"column {case.column!r}" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_accepts_a_good_file(synthetic, tmp_path):
    path = write_csv(synthetic, tmp_path / "batch.csv")
    result = validate_cli(str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{len(synthetic)} rows in 1 file(s) passed" in result.stderr


def test_cli_writes_the_json_report(synthetic, contract, tmp_path):
    case = unexpected_column(contract, synthetic.copy())
    path = write_csv(case.frame, tmp_path / "batch.csv")
    out = tmp_path / "out.json"

    result = validate_cli(str(path), "--report", str(out), cwd=tmp_path)

    assert result.returncode == 1
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["passed"] is False
    assert report["rows_checked"] == len(synthetic)
    [file] = report["files"]
    assert file["path"] == str(path)
    assert file["failures"] == [{"column": case.column, "check": case.check, "count": 0, "examples": [], "rows": []}]


def test_allowed_values_keep_the_contracts_order(toy_contracts):
    assert allowed_values(toy_contracts["binary"].columns["colour"]) == ("red", "green", "blue")


# Every field of a report, the messages, and the helpers validate and drift use


def toy_frame(toy_contracts) -> tuple[pa.DataFrameSchema, pd.DataFrame]:
    schema = toy_contracts["binary"]
    return schema, generate(40, seed=0, contract=schema)


def test_reports_record_the_path_the_rows_and_whether_labels_were_there(toy_contracts, tmp_path):
    schema, frame = toy_frame(toy_contracts)
    target = features_of(schema).target
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")

    passed, _ = check_frame(frame, schema, "good.csv")
    unlabelled, _ = check_frame(frame.drop(columns=[target]), schema, "unlabelled.csv")
    header_only, _ = check_frame(frame.iloc[:0], schema, "header.csv")
    unreadable, _ = check_file(empty, schema, labels_optional=True)
    labels_required, _ = check_file(empty, schema)

    assert passed == FileReport("good.csv", 40, True, [])
    assert unlabelled == FileReport("unlabelled.csv", 40, True, [Failure(target, "missing column", 0, [])])
    assert header_only == FileReport(
        "header.csv", 0, True, [Failure(None, "has data rows", 0, ["the file has a header but no rows"])]
    )
    assert (unreadable.path, unreadable.rows, unreadable.labelled) == (str(empty), 0, False)
    assert labels_required.labelled is True


def test_a_frame_without_columns_or_rows_has_no_header_to_mention(toy_contracts):
    schema, _ = toy_frame(toy_contracts)

    report, validated = check_frame(pd.DataFrame(), schema, "nothing.csv")

    assert validated is None
    assert report.failures == [Failure(None, "has data rows", 0, [])]


def test_failures_are_sorted_by_column_then_check(toy_contracts):
    schema, frame = toy_frame(toy_contracts)
    frame.loc[0, "size"] = -1.0
    frame.loc[1, "count"] = -1

    report, _ = check_frame(frame, schema, "batch.csv")

    assert list(schema.columns).index("size") < list(schema.columns).index("count")  # pandera's order
    assert [(f.column, f.count) for f in report.failures] == [("count", 1), ("size", 1)]


def test_a_check_of_the_whole_frame_is_a_failure_of_the_file_not_a_crash():
    """A contract may check the frame as a whole; its failure names no column (it crashed summarize once)."""
    schema = pa.DataFrameSchema(
        {"x": pa.Column(int), "y": pa.Column(float, metadata={"role": "target"})},
        checks=[pa.Check(lambda frame: len(frame) > 5, name="enough_rows")],
        strict=True,
        coerce=True,
    )

    report, validated = check_frame(pd.DataFrame({"x": [1, 2], "y": [0.5, 1.5]}), schema, "small.csv")

    assert validated is None
    assert report.failures == [Failure(None, "enough_rows", 1, ["'False'"])]
    assert describe_failures([report]) == (
        "small.csv breaks the data contract (2 rows checked):\n  - file, check enough_rows: 1 row(s), e.g. 'False'"
    )


def test_failures_describe_where_what_how_many_and_examples():
    assert Failure("x", "isin", 2, ["'a'", "'b'"]).describe() == "column 'x', check isin: 2 row(s), e.g. 'a', 'b'"
    assert Failure(None, "readable", 0, []).describe() == "file, check readable"


def test_describe_failures_lists_every_failed_file_and_only_those():
    passed = FileReport("a.csv", 3, True, [])
    broken = FileReport("b.csv", 2, True, [Failure("x", "isin", 1, ["'z'"]), Failure(None, "readable", 0, [])])

    block = (
        "b.csv breaks the data contract (2 rows checked):\n"
        "  - column 'x', check isin: 1 row(s), e.g. 'z'\n"
        "  - file, check readable"
    )
    assert describe_failures([passed, broken, broken]) == f"{block}\n{block}"


def test_text_columns_are_the_contracts_string_columns(toy_contracts):
    assert text_columns(toy_contracts["binary"]) == ("row_id", "label", "colour", "shop", "note")


def test_ids_that_look_like_numbers_keep_their_zeros(tmp_path):
    schema = pa.DataFrameSchema(
        {"code": pa.Column(str, pa.Check.str_length(3, 3)), "y": pa.Column(float, metadata={"role": "target"})},
        strict=True,
        coerce=True,
    )
    path = tmp_path / "codes.csv"
    path.write_text("code,y\n007,1.0\n010,2.0\n", encoding="utf-8")

    report, validated = check_file(path, schema)

    assert report.passed
    assert validated["code"].tolist() == ["007", "010"]


def test_load_checked_returns_the_frames_or_stops_with_every_broken_file(toy_contracts, tmp_path):
    schema, frame = toy_frame(toy_contracts)
    target = features_of(schema).target
    good = write_csv(frame.drop(columns=[target]), tmp_path / "good.csv")  # labels are optional here
    bad = write_csv(frame.assign(extra=1), tmp_path / "bad.csv")

    [loaded] = load_checked([good], schema)
    with pytest.raises(PipelineError) as error:
        load_checked([good, bad], schema)

    assert len(loaded) == 40
    assert target not in loaded.columns
    report, _ = check_file(bad, schema, labels_optional=True)
    assert str(error.value) == describe_failures([report])
    assert str(bad) in str(error.value)


def test_report_payload_is_the_json_validate_writes():
    passed = FileReport("a.csv", 3, True, [])
    broken = FileReport("b.csv", 2, False, [Failure("x", "isin", 1, ["'z'"])])

    assert report_payload([passed, broken]) == {
        "passed": False,
        "rows_checked": 5,
        "files": [
            {"path": "a.csv", "rows": 3, "labelled": True, "failures": [], "passed": True},
            {
                "path": "b.csv",
                "rows": 2,
                "labelled": False,
                "failures": [{"column": "x", "check": "isin", "count": 1, "examples": ["'z'"], "rows": []}],
                "passed": False,
            },
        ],
    }
    assert report_payload([passed])["passed"] is True


@pytest.mark.parametrize("block", [1, 2, 3, 5, 1 << 24])
@pytest.mark.parametrize(
    "data",
    [b"id,x\n1,\xfc\n", "id,x\n1,é\n".encode() * 3 + b"2,\xff\n", "id,x\n1,€".encode() + b"\xe2\x82", b"id,x\n1,2\n"],
)
def test_the_utf8_check_reads_blocks_and_names_the_first_bad_byte(tmp_path, block, data):
    """The file is checked a block at a time (flat memory); a character split across blocks is still one character."""
    from pipeline.files import _check_utf8

    path = tmp_path / "batch.csv"
    path.write_bytes(data)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        with pytest.raises(PipelineError, match=rf"\(byte 0x{data[error.start]:02x} at offset {error.start}\)"):
            _check_utf8(path, block)
    else:
        _check_utf8(path, block)


# Booleans: pandas makes a boolean of anything (None False; NaN, "no" and 2 True), so coercion alone would hide
# a missing or a wrong value. The toy contracts have `member` (bool) and `newsletter` (pandas' boolean, nullable).


def _with_column(frame: pd.DataFrame, name: str, values: list) -> pd.DataFrame:
    frame = frame.astype({name: object})
    frame[name] = values
    return frame


@pytest.mark.parametrize(
    ("values", "check", "count", "examples"),
    [
        (["yes", "no"] * 20, "is_boolean", 40, ["'yes'", "'no'"]),  # words, which pandas would make True
        ([True, False, None, None] + [True] * 36, "not_nullable", 2, []),  # missing: not False
        ([1, 0, 2] + [0] * 37, "is_boolean", 1, ["'2'"]),
    ],
)
def test_a_boolean_column_takes_booleans_and_its_nulls_only_where_allowed(
    toy_contracts, tmp_path, values, check, count, examples
):
    schema, frame = toy_frame(toy_contracts)
    broken = _with_column(frame, "member", values)
    path = write_csv(broken, tmp_path / "batch.csv")

    for report, validated in (check_file(path, schema), check_frame(broken, schema, str(path))):
        assert validated is None
        [failure] = report.failures
        assert (failure.column, failure.check, failure.count) == ("member", check, count)
        assert failure.rows == [i for i, v in enumerate(values) if v not in (True, False, 0, 1)][:20]
        assert failure.examples == examples
    request = broken.drop(columns=[features_of(schema).target]).astype(object)
    checker = FrameChecker(schema, labels_optional=True)
    assert checker.check(request, "request") == check_frame(request, schema, "request", labels_optional=True)


def test_booleans_as_0_and_1_pass_and_a_nullable_boolean_keeps_its_nulls(toy_contracts, tmp_path):
    schema, frame = toy_frame(toy_contracts)
    frame = _with_column(frame, "member", [1, 0] * 20)
    frame = _with_column(frame, "newsletter", [True, None, False, None] * 10)
    path = write_csv(frame, tmp_path / "batch.csv")

    report, validated = check_file(path, schema)

    assert report.failures == []
    assert validated["member"].tolist() == [True, False] * 20
    assert validated["newsletter"].isna().tolist() == [False, True] * 20  # missing stays missing, not False
    assert validated["newsletter"].dropna().tolist() == [True, False] * 10


def test_boolean_failures_name_rows_as_pandera_does_in_a_frame_that_starts_further_on(toy_contracts):
    """A partition of a larger dataset (the Dask path) is a frame whose index is the rows' numbers in the whole."""
    schema, frame = toy_frame(toy_contracts)
    frame.index = frame.index + 1000
    broken = _with_column(frame, "member", [True] * 3 + ["yes"] + [False] * 36)
    broken.loc[1005, "size"] = -1.0  # out of range: pandera's own failure

    report, _ = check_frame(broken, schema, "part-00001.parquet")

    assert {f.column: f.rows for f in report.failures} == {"member": [1003], "size": [1005]}
