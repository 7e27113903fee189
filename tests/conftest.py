"""Fixtures shared by the test tiers: the project's contract and params, synthetic frames, and toy contracts.

Tests read everything about the data from the contract (`features`): columns,
kinds, categories, ranges, target, classes and id, so they hold for whatever
dataset the project's `Contract` describes. Where a test needs a task the
project's contract does not have (a regression test in a classification
project), it uses the toy contracts here: small, generic and independent of
any dataset.

Native thread pools are limited to one thread for the whole session: on a small,
busy CI machine OpenMP's spinning threads make a histogram gradient boosting fit
take tens of seconds instead of a fraction of one, and the tests gain nothing
from parallelism.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest
from threadpoolctl import threadpool_limits

from pipeline.features import Features, contract_schema, features_of
from pipeline.params import Params, load_params
from pipeline.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _single_threaded():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def contract() -> pa.DataFrameSchema:
    return contract_schema()


@pytest.fixture(scope="session")
def features(contract) -> Features:
    return features_of(contract)


@pytest.fixture(scope="session")
def params() -> Params:
    """The repository's own params.yaml (immutable, so one load serves every test)."""
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session")
def fitted(contract, params, tmp_path_factory):
    """(model file, held-out rows without the target): the params' model fitted on 400 synthetic rows of the contract.

    For tests that need a model without running the pipeline (a fresh clone has no models/ until `make run`).
    """
    from pipeline.model_store import save_model
    from pipeline.train import fit_model

    features = features_of(contract)
    frame = generate(600, seed=5, contract=contract)
    model = fit_model(frame.iloc[:400], features, params.train)
    path = tmp_path_factory.mktemp("model") / "model.skops"
    save_model(model, path)
    return path, frame.iloc[400:].drop(columns=[features.target]).reset_index(drop=True)


@pytest.fixture
def synthetic(contract: pa.DataFrameSchema) -> pd.DataFrame:
    """500 rows that pass the project's contract; a fresh frame per test, so tests may edit it."""
    return generate(500, seed=0, contract=contract)


def toy_schema(task: str) -> pa.DataFrameSchema:
    """A small contract of every column kind, with a target for `task` (binary, multiclass or regression)."""
    target = {
        "binary": pa.Column(str, pa.Check.isin(["no", "yes"]), metadata={"role": "target", "positive": "yes"}),
        "multiclass": pa.Column(str, pa.Check.isin(["low", "mid", "high"]), metadata={"role": "target"}),
        "regression": pa.Column(float, pa.Check.in_range(0, 1000), metadata={"role": "target"}),
    }[task]
    return pa.DataFrameSchema(
        {
            "row_id": pa.Column(str, pa.Check.str_matches(r"^R\d{6}$"), unique=True, metadata={"role": "id"}),
            "label": target,
            "size": pa.Column(float, pa.Check.in_range(0, 50), nullable=True),
            "count": pa.Column(int, pa.Check.in_range(0, 20)),
            "colour": pa.Column(str, pa.Check.isin(["red", "green", "blue"])),
            "shop": pa.Column(str, pa.Check.str_matches(r"^shop-[a-z]$"), nullable=True),
            "member": pa.Column(bool),
            "newsletter": pa.Column(pd.BooleanDtype(), nullable=True),  # pandas' boolean: nulls stay nulls
            "note": pa.Column(str, nullable=True, metadata={"role": "ignore"}),
        },
        strict=True,
        coerce=True,
    )


TASKS = ("binary", "multiclass", "regression")


@pytest.fixture(scope="session")
def toy_contracts() -> dict[str, pa.DataFrameSchema]:
    """One toy contract per task kind; independent of the project's own data."""
    return {task: toy_schema(task) for task in TASKS}
