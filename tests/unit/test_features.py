"""What the pipeline reads from a contract: roles, task, classes, positive class, feature kinds.

A contract mistake must stop the run with a message naming src/pipeline/contract.py
and the column, never a traceback; the task follows from the target alone.
"""

from __future__ import annotations

import pandera.pandas as pa
import pytest

from pipeline.errors import ConfigError
from pipeline.features import CLASSIFICATION, REGRESSION, features_of


def schema(**columns: pa.Column) -> pa.DataFrameSchema:
    return pa.DataFrameSchema(columns, strict=True, coerce=True)


def target(dtype=str, checks=None, **metadata) -> pa.Column:
    return pa.Column(dtype, checks or [], metadata={"role": "target", **metadata})


def test_the_projects_contract_is_read(features, contract):
    assert features.target in contract.columns
    assert set(features.columns) | {features.target, features.id, *features.ignored} - {None} == set(contract.columns)
    assert features.task in (CLASSIFICATION, REGRESSION)
    if features.is_binary:
        assert features.positive_class in features.target_classes


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_toy_contracts_give_their_task(toy_contracts, task):
    features = features_of(toy_contracts[task])
    assert features.task == (REGRESSION if task == "regression" else CLASSIFICATION)
    assert features.numeric == ("size", "count")
    assert features.categorical == ("colour", "shop")
    assert features.categories == {"colour": ("red", "green", "blue"), "shop": None}  # shop: learned from data
    assert (features.id, features.ignored) == ("row_id", ("note",))
    assert len(features.target_classes) == {"binary": 2, "multiclass": 3, "regression": 0}[task]


def test_numeric_target_without_isin_is_regression():
    features = features_of(schema(y=target(float), x=pa.Column(float)))
    assert (features.task, features.target_classes, features.positive_class) == (REGRESSION, (), None)


def test_integer_target_with_isin_is_classification_and_one_is_positive():
    features = features_of(schema(y=target(int, [pa.Check.isin([1, 0])]), x=pa.Column(float)))
    assert (features.task, features.target_classes, features.positive_class) == (CLASSIFICATION, (1, 0), 1)


def test_boolean_target_is_classification_and_true_is_positive():
    features = features_of(schema(y=target(bool), x=pa.Column(float)))
    assert (features.task, features.positive_class) == (CLASSIFICATION, True)


def test_positive_class_is_explicit_and_order_does_not_matter():
    for order in (["no", "yes"], ["yes", "no"]):
        features = features_of(schema(y=target(str, [pa.Check.isin(order)], positive="yes"), x=pa.Column(float)))
        assert features.positive_class == "yes"


def test_binary_text_target_without_positive_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"contract\.py: the binary target 'y' needs its positive class"):
        features_of(schema(y=target(str, [pa.Check.isin(["no", "yes"])]), x=pa.Column(float)))


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"y": target(str, [pa.Check.isin(["a", "b"])], positive="c")}, "positive 'c', which is not one of"),
        ({"y": target(str, [pa.Check.isin(["a", "b", "c"])], positive="a")}, "applies to binary targets only"),
        ({"y": target(float, positive=1.0)}, "applies to binary targets only"),
        ({"y": target(str)}, "is text without isin"),
        ({"y": target(str, [pa.Check.isin(["a"])])}, "lists 1 class"),
        ({"x": pa.Column(float)}, "no column is marked as the target"),
        ({"y": target(float), "z": target(float)}, "more than one column has role 'target'"),
        ({"y": target(float), "x": pa.Column(float, metadata={"role": "label"})}, "has role 'label'; roles are"),
        ({"y": target(float), "x": pa.Column(float, metadata={"role": "id"})}, "no feature columns"),
        ({"y": target(float), "when": pa.Column("datetime64[ns]")}, "column 'when' has type"),
    ],
)
def test_contract_mistakes_are_config_errors_naming_the_file(columns, message):
    columns = {"x": pa.Column(float), **columns} if "x" not in columns and "when" not in columns else columns
    with pytest.raises(ConfigError, match=r"src/pipeline/contract\.py") as error:
        features_of(schema(**columns))
    assert message in str(error.value)


def test_identity_is_json_ready():
    features = features_of(schema(y=target(int, [pa.Check.isin([0, 1])]), x=pa.Column(float)))
    assert features.identity() == {"task": CLASSIFICATION, "target": "y", "classes": [0, 1], "positive": 1}
