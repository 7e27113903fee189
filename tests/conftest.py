"""Fixtures shared by the test tiers: the project's contract, its params and a synthetic frame.

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

from pipeline.contract import schema
from pipeline.params import Params, load_params
from pipeline.synthetic import generate

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _single_threaded():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def contract() -> pa.DataFrameSchema:
    return schema()


@pytest.fixture(scope="session")
def params() -> Params:
    """The repository's own params.yaml (immutable, so one load serves every test)."""
    return load_params(ROOT / "params.yaml")


@pytest.fixture
def synthetic(contract: pa.DataFrameSchema) -> pd.DataFrame:
    """500 rows that pass the contract; a fresh frame per test, so tests may edit it."""
    return generate(500, seed=0, contract=contract)
