"""The synthetic generator honours every check a contract can state, for any contract.

A property-based test (Hypothesis) builds many random contracts (numbers with
open or closed ranges, integers, booleans, categories, patterned and unique
text, nullable columns, each task) and checks that what the generator makes
validates against each one. Generated ids follow their pattern and stay
distinct, so a project whose id is `^F\\d{5}$` gets ids like F00042.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.checks import check_frame
from pipeline.errors import ConfigError
from pipeline.features import features_of
from pipeline.synthetic import generate
from pipeline.synthetic_strings import PatternError, shape_for, strings

PATTERNS = [
    r"^F\d{5}$",
    r"^\S+$",
    r"^[A-Z]{2}-\d+$",
    r"^(EU|US)_[a-z]{3}\d?$",
    r"^id[0-9a-f]{8}$",
    r"^\w{4,10}$",
    r"^[^\s,]+$",
]


def test_the_projects_contract(contract, synthetic):
    report, _ = check_frame(synthetic, contract, "synthetic")
    assert report.passed, report.failures


def test_synthetic_is_deterministic_per_seed(contract):
    pd.testing.assert_frame_equal(generate(200, seed=7, contract=contract), generate(200, seed=7, contract=contract))
    assert not generate(200, seed=7, contract=contract).equals(generate(200, seed=8, contract=contract))


def test_nulls_only_in_nullable_columns(contract, features):
    frame = generate(2000, seed=0, contract=contract)
    with_nulls = set(frame.columns[frame.isna().any()])
    nullable = {name for name, column in contract.columns.items() if column.nullable}
    assert with_nulls <= nullable
    assert features.target not in with_nulls


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_strings_match_and_are_distinct(pattern):
    values = strings(pattern, np.arange(5000), 5000)
    assert len(set(values)) == 5000
    assert all(re.match(pattern, value) for value in values)


def test_a_pattern_too_small_for_the_rows_is_a_clear_error():
    schema = pa.DataFrameSchema(
        {
            "fid": pa.Column(str, pa.Check.str_matches(r"^F\d{2}$"), unique=True, metadata={"role": "id"}),
            "y": pa.Column(float, metadata={"role": "target"}),
            "x": pa.Column(float),
        }
    )
    with pytest.raises(ConfigError, match=r"column 'fid'.*fewer than the 101 distinct strings.*holds 100"):
        generate(101, seed=0, contract=schema)


def test_a_pattern_with_few_strings_still_fills_a_column_that_may_repeat():
    schema = pa.DataFrameSchema(
        {"t": pa.Column(str, pa.Check.str_matches(r"x+y*z")), "y": pa.Column(float, metadata={"role": "target"})}
    )
    frame = generate(50, seed=0, contract=schema)
    assert frame["t"].str.fullmatch(r"x+y*z").all()


def test_a_lookaround_is_refused_by_name():
    with pytest.raises(PatternError, match="assert"):
        shape_for(r"^(?=a)\w+$", 10)


# Random contracts: one strategy per column kind, each stating checks the generator must honour.


@st.composite
def number_column(draw):
    integer = draw(st.booleans())
    low = draw(st.one_of(st.none(), st.integers(-1000, 1000)))
    width = draw(st.integers(25, 5000))
    high = draw(st.one_of(st.none(), st.just(None if low is None else low + width), st.integers(-1000, 1000)))
    if low is not None and high is not None and high < low + 25:
        high = low + width
    nullable = draw(st.booleans())
    unique = not nullable and draw(st.booleans())
    if unique and integer and low is not None and high is not None:
        high = max(high, low + 410)  # room for a distinct integer per row (up to 400) besides the forbidden ones
    checks = []
    if low is not None:
        checks.append(draw(st.sampled_from([pa.Check.ge, pa.Check.gt]))(low))
    if high is not None:
        checks.append(draw(st.sampled_from([pa.Check.le, pa.Check.lt]))(high))
    if integer and draw(st.booleans()) and low is not None:
        checks.append(pa.Check.notin([low + 1, low + 2]))
    return pa.Column(int if integer else float, checks, nullable=nullable and not integer, unique=unique)


@st.composite
def category_column(draw):
    values = draw(st.lists(st.text("abcdefgh", min_size=1, max_size=6), min_size=2, max_size=6, unique=True))
    if draw(st.booleans()):
        return pa.Column(int, pa.Check.isin(list(range(len(values)))), nullable=False)
    return pa.Column(str, pa.Check.isin(values), nullable=draw(st.booleans()))


@st.composite
def text_column(draw):
    checks = []
    if draw(st.booleans()):
        checks.append(pa.Check.str_matches(draw(st.sampled_from(PATTERNS))))
    else:
        if draw(st.booleans()):
            checks.append(pa.Check.str_startswith(draw(st.sampled_from(["A", "id-", "x_"]))))
        if draw(st.booleans()):
            checks.append(pa.Check.str_length(3, 12))
    unique = draw(st.booleans())
    return pa.Column(str, checks, nullable=not unique and draw(st.booleans()), unique=unique)


@st.composite
def contracts(draw):
    task = draw(st.sampled_from(["binary", "multiclass", "regression-float", "regression-int"]))
    target = {
        "binary": pa.Column(str, pa.Check.isin(["n", "y"]), metadata={"role": "target", "positive": "y"}),
        "multiclass": pa.Column(int, pa.Check.isin([1, 2, 3]), metadata={"role": "target"}),
        "regression-float": pa.Column(float, pa.Check.in_range(-5, 5), metadata={"role": "target"}),
        "regression-int": pa.Column(int, pa.Check.ge(0), metadata={"role": "target"}),
    }[task]
    kinds = draw(
        st.lists(st.sampled_from([number_column, category_column, text_column, "bool"]), min_size=1, max_size=6)
    )
    columns = {"target": target}
    for i, kind in enumerate(kinds):
        columns[f"c{i}"] = pa.Column(bool) if kind == "bool" else draw(kind())
    if not any(kind in (number_column, category_column, "bool") for kind in kinds):
        columns["n"] = pa.Column(float)
    if draw(st.booleans()):
        columns["key"] = pa.Column(
            str, pa.Check.str_matches(draw(st.sampled_from(PATTERNS[:6]))), unique=True, metadata={"role": "id"}
        )
    return pa.DataFrameSchema(columns, strict=True, coerce=True)


@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=contracts(), rows=st.integers(30, 400), seed=st.integers(0, 2**16))
def test_generated_data_passes_any_contract(schema, rows, seed):
    frame = generate(rows, seed=seed, contract=schema)  # validates itself; this re-checks independently
    schema.validate(frame, lazy=True)
    assert len(frame) == rows
    features = features_of(schema)
    if features.is_classification:
        assert set(frame[features.target]) <= set(features.target_classes)
