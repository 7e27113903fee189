"""A seeded synthetic generator for any row count, derived from the contract.

Tests and benchmarks need data of the same shape as the real thing at sizes the
bundled sample cannot reach (a million rows in a few seconds). Everything comes
from the contract: numeric columns are drawn inside their allowed range, with a
per-class mean so the target stays learnable; categorical columns draw from
their allowed values with per-class probabilities; nullable columns get a few
nulls. Edit the contract and the generator follows.

    python -m pipeline.synthetic --rows 1000000 --seed 0 --out data/synthetic.parquet
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from pipeline.contract import features_of, schema
from pipeline.errors import ConfigError, run_main
from pipeline.files import write_csv, write_parquet

NULL_SHARE = 0.02


def generate(n_rows: int, seed: int, contract: pa.DataFrameSchema | None = None) -> pd.DataFrame:
    """`n_rows` rows that pass `contract` (the project's by default), identical for the same seed."""
    contract = contract if contract is not None else schema()
    features = features_of(contract)
    rng = np.random.default_rng(seed)
    n_classes = len(features.target_classes)
    label = rng.integers(0, n_classes, size=n_rows)
    columns: dict[str, object] = {}
    if features.id:
        columns[features.id] = np.char.mod("syn-%08d", np.arange(n_rows))
    columns[features.target] = np.asarray(features.target_classes, dtype=object)[label]
    for name in features.numeric:
        low, high = _range(contract.columns[name])
        centres = low + (high - low) * rng.uniform(0.3, 0.7, size=n_classes)
        values = rng.normal(centres[label], (high - low) * 0.08).clip(low, high)
        columns[name] = _with_nulls(values, contract.columns[name].nullable, rng)
    for name in features.categorical:
        allowed = np.asarray(features.categories[name], dtype=object)
        cumulative = rng.dirichlet(np.ones(len(allowed)), size=n_classes).cumsum(axis=1)
        picks = (rng.random(n_rows)[:, None] > cumulative[label]).sum(axis=1).clip(max=len(allowed) - 1)
        values = allowed[picks]
        if contract.columns[name].nullable:
            values[rng.random(n_rows) < NULL_SHARE] = None
        columns[name] = values
    frame = pd.DataFrame({name: columns[name] for name in contract.columns})
    return contract.validate(frame)


def _range(column: pa.Column) -> tuple[float, float]:
    bounds = {check.name: check.statistics for check in column.checks}
    low = bounds.get("greater_than_or_equal_to", {}).get("min_value", 0.0)
    high = bounds.get("less_than_or_equal_to", {}).get("max_value", low + 1.0)
    return float(low), float(high)


def _with_nulls(values: np.ndarray, nullable: bool, rng: np.random.Generator) -> np.ndarray:
    if nullable:
        values[rng.random(len(values)) < NULL_SHARE] = np.nan
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="a .csv or .parquet path")
    args = parser.parse_args(argv)
    if args.rows < 1:
        raise ConfigError(f"--rows must be at least 1 (got {args.rows})")
    frame = generate(args.rows, args.seed)
    write = write_csv if Path(args.out).suffix == ".csv" else write_parquet
    write(frame, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
