"""FrameChecker: the same verdict and the same coerced frame as `check_frame` (pandera), on any frame.

Its fast path may only say "pass" where pandera passes, and must then return
pandera's frame; every failure is pandera's own report. Frames come from the
contract-driven generator, as typed columns (parquet) and as JSON requests
make them (object columns), then get cells replaced by values of every JSON
type, in and out of each column's checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.checks import FrameChecker, check_frame
from pipeline.features import features_of
from pipeline.synthetic import generate

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ("project", "binary", "regression")
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 25, 70, 150, 2000, 7000, -25.5, 1e9, "1.5", "", " ", "x y", "R000001", "shop-a"]),
    st.sampled_from(["Adelie", "Biscoe", "Yes", "No", "male", "red", "blue", "yes", "low", "female"]),
    st.text(max_size=8),
)


def schema_of(name: str, contract, toy_contracts):
    return contract if name == "project" else toy_contracts[name]


def as_request(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as the HTTP app builds it from JSON: object columns of Python values."""
    records = json.loads(frame.to_json(orient="records"))
    return pd.DataFrame(records, columns=list(frame.columns), dtype=object)


def same_verdict(checker: FrameChecker, frame: pd.DataFrame, schema, labels_optional: bool, objects=False) -> None:
    """`objects`: the frame is a request's (object columns only), checked as the server checks one."""
    expected_report, expected = check_frame(frame, schema, "f", labels_optional=labels_optional)
    report, validated = checker.check(frame, "f", objects=objects)
    assert report == expected_report
    if expected is None:
        assert validated is None
    else:
        pd.testing.assert_frame_equal(validated, expected)


@pytest.mark.parametrize("name", CONTRACTS)
@pytest.mark.parametrize("shape", ["typed", "request"])
@pytest.mark.parametrize("labelled", [True, False])
def test_a_passing_frame_takes_the_fast_path_and_gets_pandera_s_frame(name, shape, labelled, contract, toy_contracts):
    schema = schema_of(name, contract, toy_contracts)
    target = features_of(schema).target
    frame = generate(50, seed=1, contract=schema)
    frame = frame if labelled else frame.drop(columns=[target])
    frame = as_request(frame) if shape == "request" else frame
    checker = FrameChecker(schema, labels_optional=True)

    objects = shape == "request"
    assert checker._passing(frame, labelled, objects) is not None  # checked without pandera
    same_verdict(checker, frame, schema, labels_optional=True, objects=objects)


# The project's own contract gets the most examples; the toy contracts, the same in every project, fewer.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edit_of_a_request_gets_pandera_s_verdict(data, contract, toy_contracts):
    edit_a_request_and_compare("project", data, contract, toy_contracts)


@pytest.mark.parametrize("name", ["binary", "regression"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_edit_of_a_toy_request_gets_pandera_s_verdict(name, data, contract, toy_contracts):
    edit_a_request_and_compare(name, data, contract, toy_contracts)


def edit_a_request_and_compare(name, data, contract, toy_contracts):
    schema = schema_of(name, contract, toy_contracts)
    target = features_of(schema).target
    frame = as_request(generate(6, seed=2, contract=schema).drop(columns=[target]))
    for _ in range(data.draw(st.integers(0, 4))):
        row = data.draw(st.integers(0, len(frame) - 1))
        column = data.draw(st.sampled_from(list(frame.columns)))
        frame.iat[row, frame.columns.get_loc(column)] = data.draw(VALUES)
    if data.draw(st.booleans()):
        frame = frame.drop(columns=[data.draw(st.sampled_from(list(frame.columns)))])
    if data.draw(st.booleans()):
        frame["not_in_the_contract"] = pd.Series([1] * len(frame), dtype=object)
    assert all(pd.api.types.is_object_dtype(dtype) for dtype in frame.dtypes)  # as parse_request builds it

    same_verdict(FrameChecker(schema, labels_optional=True), frame, schema, labels_optional=True, objects=True)


@pytest.mark.parametrize("name", CONTRACTS)
def test_typed_columns_with_nulls_and_duplicates_get_pandera_s_verdict(name, contract, toy_contracts):
    schema = schema_of(name, contract, toy_contracts)
    frame = generate(40, seed=3, contract=schema)
    checker = FrameChecker(schema)
    for column in frame.columns:
        broken = frame.astype({column: object}) if frame[column].dtype == bool else frame.copy()  # bool holds no null
        broken.loc[[0, 1], column] = None
        same_verdict(checker, broken, schema, labels_optional=False)
        duplicated = frame.copy()
        duplicated.loc[1, column] = duplicated.loc[0, column]
        same_verdict(checker, duplicated, schema, labels_optional=False)


def test_the_fast_path_works_in_a_fresh_process_before_pandera_has_validated_anything(contract, features, tmp_path):
    # pandera registers its built-in checks' pandas functions lazily; a server checks requests from the start.
    path = tmp_path / "rows.json"
    generate(20, seed=4, contract=contract).drop(columns=[features.target]).to_json(path, orient="records")
    code = (
        "import json, sys; import pandas as pd\n"
        "from pipeline.checks import FrameChecker\n"
        "from pipeline.features import contract_schema\n"
        "frame = pd.DataFrame(json.load(open(sys.argv[1])), dtype=object)\n"
        "assert FrameChecker(contract_schema(), labels_optional=True)._passing(frame, False) is not None\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
