"""What the pipeline reads from a contract: roles, task, classes, positive class, feature kinds.

A contract mistake must stop the run with a message naming src/pipeline/contract.py
and the column, never a traceback; the task follows from the target alone.
"""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.errors import ConfigError
from pipeline.features import CLASSIFICATION, REGRESSION, contract_schema, features_of


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
    assert features.numeric == ("size", "count", "member", "newsletter")  # booleans are numbers to the model
    assert features.nullable_extension == ("newsletter",)  # its nulls are pd.NA, not NaN
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


def test_contract_mistakes_say_exactly_what_to_fix():
    def message(**columns: pa.Column) -> str:
        with pytest.raises(ConfigError) as error:
            features_of(schema(**{"x": pa.Column(float), **columns}))
        return str(error.value)

    file = "src/pipeline/contract.py"
    assert message(y=target(str, [pa.Check.isin(["a", "b", "c"])], positive="a")) == (
        f"{file}: the target 'y' is a 3-class target; \"positive\" applies to binary targets only"
    )
    assert message(y=target(float, positive=1.0)) == (
        f"{file}: the target 'y' is a numeric (regression) target; \"positive\" applies to binary targets only"
    )
    assert message(y=target(str)) == (
        f"{file}: the target 'y' is text without isin=[...]: list its classes for classification, "
        "or make it a number (Series[float]) for regression"
    )
    assert (
        message(y=target(str, [pa.Check.isin(["a"])])) == f"{file}: the target 'y' lists 1 class; it needs at least 2"
    )
    assert message(y=target(float), z=target(float), w=target(float)) == (
        f"{file}: more than one column has role 'target': y, z, w"
    )
    assert message(y=target(float), v=pa.Column(float, metadata={"role": "label"})) == (
        f"{file}: column 'v' has role 'label'; roles are target, id, ignore, time"
    )
    assert message(y=target(float), when=pa.Column("datetime64[ns]")) == (
        f"{file}: column 'when' has type datetime64[ns], which the model cannot learn from; convert it to a number "
        'or text, or keep it out of the features with metadata={"role": "ignore"}'
    )
    assert message(y=target(float), v=pa.Column()) == f"{file}: column 'v' has no type; give it one, e.g. Series[float]"


def test_object_and_boolean_columns_are_features():
    features = features_of(schema(y=target(float), o=pa.Column(object), b=pa.Column(bool)))
    assert (features.numeric, features.categorical, features.categories) == (("b",), ("o",), {"o": None})


def test_a_target_with_classes_but_no_type_is_classification():
    column = pa.Column(checks=[pa.Check.isin(["a", "b"])], metadata={"role": "target", "positive": "b"})
    features = features_of(schema(y=column, x=pa.Column(float)))
    assert (features.task, features.target_classes, features.positive_class) == (CLASSIFICATION, ("a", "b"), "b")


def test_the_positive_class_may_be_given_as_text_for_numeric_classes():
    features = features_of(schema(y=target(int, [pa.Check.isin([0, 1])], positive="1"), x=pa.Column(float)))
    assert features.positive_class == 1
    assert type(features.positive_class) is int


def test_only_0_and_1_leave_the_positive_class_implicit():
    with pytest.raises(ConfigError, match=r"the binary target 'y' needs its positive class"):
        features_of(schema(y=target(int, [pa.Check.isin([1, 2])]), x=pa.Column(float)))


def test_identity_of_numpy_classes_is_plain_json():
    features = features_of(schema(y=target(int, [pa.Check.isin(list(np.array([0, 1])))]), x=pa.Column(float)))

    identity = features.identity()

    assert [type(c) for c in identity["classes"]] == [int, int]
    assert type(identity["positive"]) is int
    assert json.loads(json.dumps(identity)) == identity


def test_a_contract_file_without_the_contract_class_is_a_config_error(monkeypatch):
    """What a user sees after renaming the class: the file, the cause, one line."""
    monkeypatch.setitem(sys.modules, "pipeline.contract", types.ModuleType("pipeline.contract"))

    with pytest.raises(ConfigError) as error:
        contract_schema()

    assert str(error.value) == (
        "src/pipeline/contract.py: the Contract class does not load: "
        "ImportError: cannot import name 'Contract' from 'pipeline.contract' (unknown location)"
    )


def test_the_contract_is_built_without_importing_dask_and_is_the_same_schema():
    """Building the contract skips pandera's Dask annotation types (a second per stage), and changes nothing."""
    import subprocess

    pytest.importorskip("dask.dataframe", reason="without dask there is nothing to skip")
    build = "from pipeline.features import contract_schema; schema = repr(contract_schema()); import sys; "
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for code in (
            build + "print('dask.dataframe' in sys.modules); print(schema)",
            "import dask.dataframe; " + build + "print(False); print(schema)",
        )
    ]
    assert runs[0].startswith("False\n")
    assert runs[0] == runs[1]


def test_a_nullable_numpy_bool_is_refused_with_the_type_that_keeps_nulls():
    """numpy's bool has no null: pandera's coercion would turn every missing value into False."""
    with pytest.raises(ConfigError) as refused:
        features_of(schema(y=target(float), x=pa.Column(float), flag=pa.Column(bool, nullable=True)))
    message = str(refused.value)
    assert "'flag'" in message
    assert "Series[pd.BooleanDtype]" in message
    nullable = pa.Column(pd.BooleanDtype(), nullable=True)
    features = features_of(schema(y=target(float), x=pa.Column(float), flag=nullable))
    assert features.numeric == ("x", "flag")
    assert features.nullable_extension == ("flag",)
    assert features_of(schema(y=target(float), flag=pa.Column(bool))).nullable_extension == ()
