"""A seeded synthetic generator for any row count, derived from the contract.

Tests and benchmarks need data of the same shape as the real thing at sizes
the bundled sample cannot reach (a million rows in a few seconds). Everything
comes from the contract, so editing the contract is all it takes:

- numbers are drawn inside their range (`ge`, `gt`, `le`, `lt`, `in_range`),
  as integers for `Series[int]`, avoiding `notin` values, and distinct for
  `unique` (an error when the range is too small for that);
- `isin` columns draw from their values; text columns follow `str_matches`,
  `str_startswith`, `str_endswith`, `str_contains` and `str_length`
  (synthetic_strings numbers the strings a pattern matches, so ids stay
  distinct); nullable columns get a few nulls;
- the target is learnable: for classification, each class shifts the numeric
  features and the category odds; for regression, the target is a noisy
  function of the features, inside the target's range.

pandera offers `schema.example()` (Hypothesis strategies) for the same job;
it takes seconds for 50 rows, cannot be seeded and writes unreadable
strings, so this generator only borrows its idea: every value satisfies the
column's checks by construction, and the result is validated by the contract
itself before it is returned.

    python -m pipeline.synthetic --rows 1000000 --seed 0 --out data/synthetic.parquet
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError, run_main

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa

    from pipeline.features import Features

NULL_SHARE = 0.02
DEFAULT_SPAN = 100.0  # the width given to a numeric column with no range on one or both sides
CONTRACT = "src/pipeline/contract.py"


def generate(n_rows: int, seed: int, contract: pa.DataFrameSchema | None = None) -> pd.DataFrame:
    """`n_rows` rows that pass `contract` (the project's by default), identical for the same seed."""
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa

    from pipeline.features import IGNORE, contract_schema, features_of

    contract = contract if contract is not None else contract_schema()
    features = features_of(contract)
    rng = np.random.default_rng(seed)
    n_classes = len(features.target_classes) if features.is_classification else 4
    label = rng.integers(0, n_classes, size=n_rows)  # regression: a hidden group the target depends on
    columns: dict[str, object] = {}
    signal = np.zeros(n_rows)
    for name, column in contract.columns.items():
        if name == features.target:
            continue
        role = (column.metadata or {}).get("role")
        kind = None if role is not None else ("categorical" if name in features.categories else "numeric")
        unique = column.unique or name == features.id
        values = _column(name, column, kind, unique, label, n_classes, n_rows, rng)
        if kind == "numeric" and role != IGNORE:
            signal += _standardized(values)
        if column.nullable and not unique:
            values = _with_nulls(values, rng)
        columns[name] = values
    columns[features.target] = _target(contract.columns[features.target], features, label, signal, rng)
    frame = pd.DataFrame({name: columns[name] for name in contract.columns})
    try:
        return contract.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases[["column", "check"]].drop_duplicates().astype(str)
        failing = "; ".join(f"{column}: {check}" for column, check in cases.itertuples(index=False))
        raise ConfigError(f"{CONTRACT}: the synthetic generator cannot satisfy these checks: {failing}") from None


def _column(name, column, kind, unique, label, n_classes, n_rows, rng) -> np.ndarray:
    import numpy as np
    import pandas as pd

    from pipeline.features import allowed_values

    checks = {check.name: check.statistics for check in column.checks}
    allowed = allowed_values(column)
    if "equal_to" in checks:
        return np.full(n_rows, checks["equal_to"]["value"], dtype=object)
    if allowed is not None:
        if unique:
            if len(allowed) < n_rows:
                raise ConfigError(f"{CONTRACT}: column {name!r} is unique with {len(allowed)} allowed values")
            return np.asarray(allowed, dtype=object)[rng.permutation(len(allowed))[:n_rows]]
        return _categories(np.asarray(allowed, dtype=object), label, n_classes, rng)
    dtype = column.dtype.type
    if pd.api.types.is_bool_dtype(dtype):
        if unique and n_rows > 2:
            raise ConfigError(f"{CONTRACT}: column {name!r} is a unique boolean, so it holds at most 2 rows")
        odds = rng.uniform(0.2, 0.8, size=n_classes)
        return rng.random(n_rows) < odds[label]
    if pd.api.types.is_numeric_dtype(dtype):
        return _numbers(name, checks, pd.api.types.is_integer_dtype(dtype), unique, label, n_classes, rng)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        days = rng.integers(0, 3650, size=n_rows) if not unique else rng.permutation(n_rows)
        return (pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D")).to_numpy()
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return _strings(name, checks, unique, kind, label, n_classes, n_rows, rng)
    raise ConfigError(f"{CONTRACT}: the synthetic generator cannot make values of type {column.dtype} for {name!r}")


def _categories(allowed: np.ndarray, label: np.ndarray, n_classes: int, rng) -> np.ndarray:
    """Allowed values with per-class odds, so categories carry signal about the target."""
    import numpy as np

    cumulative = rng.dirichlet(np.ones(len(allowed)), size=n_classes).cumsum(axis=1)
    picks = (rng.random(len(label))[:, None] > cumulative[label]).sum(axis=1).clip(max=len(allowed) - 1)
    return allowed[picks]


def value_range(checks: dict, integer: bool, span: float = DEFAULT_SPAN) -> tuple[float, float]:
    """The closed range a numeric column may take, from its range checks; an open side gets `span`."""
    import numpy as np

    low, high = -math.inf, math.inf
    for name, stats in checks.items():
        if name == "greater_than_or_equal_to":
            low = max(low, stats["min_value"])
        elif name == "greater_than":
            low = max(
                low, math.floor(stats["min_value"]) + 1 if integer else np.nextafter(stats["min_value"], math.inf)
            )
        elif name == "less_than_or_equal_to":
            high = min(high, stats["max_value"])
        elif name == "less_than":
            high = min(
                high, math.ceil(stats["max_value"]) - 1 if integer else np.nextafter(stats["max_value"], -math.inf)
            )
        elif name == "in_range":
            bump = (1 if integer else 1e-9) if not stats["include_min"] else 0
            low = max(low, stats["min_value"] + bump)
            bump = (1 if integer else 1e-9) if not stats["include_max"] else 0
            high = min(high, stats["max_value"] - bump)
    if math.isinf(low) and math.isinf(high):
        low, high = 0.0, span
    elif math.isinf(low):
        low = high - span
    elif math.isinf(high):
        high = low + span
    if integer:
        low, high = math.ceil(low), math.floor(high)
    return float(low), float(high)


def _numbers(name, checks, integer, unique, label, n_classes, rng) -> np.ndarray:
    import numpy as np

    n_rows = len(label)
    low, high = value_range(checks, integer, max(DEFAULT_SPAN, 2.0 * n_rows) if unique else DEFAULT_SPAN)
    if low > high:
        raise ConfigError(f"{CONTRACT}: column {name!r} has an empty range ({low} to {high})")
    forbidden = set(checks.get("notin", {}).get("forbidden_values", []))
    forbidden |= {checks["not_equal_to"]["value"]} if "not_equal_to" in checks else set()
    if unique:
        if integer:
            span = int(high - low) + 1
            if span - len(forbidden) < n_rows:
                raise ConfigError(
                    f"{CONTRACT}: column {name!r} is unique, but {low:g} to {high:g} holds fewer than {n_rows} integers"
                )
            step = max(1, span // (n_rows + len(forbidden)))
            candidates = low + np.arange(n_rows + len(forbidden), dtype=np.int64) * step
            candidates = candidates[~np.isin(candidates, list(forbidden))][:n_rows]
            return rng.permutation(candidates)
        shares = (rng.permutation(n_rows) + 0.5) / n_rows
        return low + (high - low) * shares
    centres = low + (high - low) * rng.uniform(0.3, 0.7, size=n_classes)
    values = rng.normal(centres[label], max(high - low, 1e-9) * 0.08).clip(low, high)
    if integer:
        values = np.rint(values).clip(low, high).astype(np.int64)
    if forbidden:
        values = _avoid(values, forbidden, low, high, integer)
    return values


def _avoid(values: np.ndarray, forbidden: set, low: float, high: float, integer: bool) -> np.ndarray:
    """Move forbidden values to the nearest allowed one inside the range."""
    import numpy as np

    bad = np.isin(values, list(forbidden))
    if not bad.any():
        return values
    step = 1 if integer else (high - low) / 1e6 or 1e-9
    candidate = values[bad]
    for _ in range(len(forbidden) + 2):
        candidate = np.where(candidate + step <= high, candidate + step, candidate - step)
        if not np.isin(candidate, list(forbidden)).any():
            break
    values = values.copy()
    values[bad] = candidate
    return values


def _strings(name, checks, unique, kind, label, n_classes, n_rows, rng) -> np.ndarray:
    """Text from the column's string checks: distinct for unique columns, a few values for categorical ones."""
    import re

    import numpy as np
    import pandas as pd

    from pipeline.synthetic_strings import NA_STRINGS, PatternError, render, shape_for

    pattern = checks.get("str_matches", {}).get("pattern")
    length = checks.get("str_length", {})
    exact = length.get("exact_value")
    min_len = exact if exact is not None else (length.get("min_value") or 1)
    max_len = exact if exact is not None else (length.get("max_value") or max(min_len, 12))
    prefix = checks.get("str_startswith", {}).get("string", "")
    suffix = checks.get("str_endswith", {}).get("string", "")
    contains = checks.get("str_contains", {}).get("pattern")
    if pattern is None:
        fixed = len(prefix) + len(suffix)
        body_min, body_max = max(min_len - fixed, 0), max_len - fixed
        if body_max < body_min:
            raise ConfigError(f"{CONTRACT}: column {name!r}: no string fits its length and affix checks")
        middle = f"(?:{contains})" if contains else ""
        pattern = re.escape(prefix) + f"[a-z0-9]{{{body_min},{body_max}}}" + middle + re.escape(suffix)
    distinct = n_rows if unique else (min(8, n_rows) if kind == "categorical" else min(n_rows, 1000))
    wanted = distinct + max(16, distinct // 8)  # a little spare for values a check or pandas would reject
    try:
        shape = shape_for(pattern, wanted)
    except PatternError as error:
        raise ConfigError(f"{CONTRACT}: column {name!r}: its pattern {pattern!r} {error}") from None
    capacity = 1
    for chars in shape:
        capacity = min(capacity * len(chars), 2**62)
    pool = pd.Series(render(shape, np.arange(min(wanted, capacity))), dtype="str")
    fits = ~pool.isin(NA_STRINGS) & pool.str.len().between(min_len, max_len)
    fits &= pool.str.startswith(prefix) & pool.str.endswith(suffix)
    if "str_matches" in checks:
        fits &= pool.str.match(checks["str_matches"]["pattern"])
    if contains:
        fits &= pool.str.contains(contains)
    pool = pool[fits.to_numpy(dtype=bool)].to_numpy(dtype=object)
    if len(pool) < distinct and (unique or len(pool) == 0):
        held = f" (its pattern holds {capacity})" if unique else ""
        raise ConfigError(
            f"{CONTRACT}: column {name!r}: its checks allow fewer than the {distinct} distinct strings needed{held}"
        )
    pool = pool[:distinct]  # a column that need not be unique may repeat a few values
    if unique:
        return pool[rng.permutation(n_rows)]
    if kind == "categorical":
        return _categories(pool, label, n_classes, rng)
    return pool[rng.integers(0, len(pool), size=n_rows)]


def _standardized(values: np.ndarray) -> np.ndarray:
    import numpy as np

    numbers = np.asarray(values, dtype="float64")
    spread = numbers.std()
    return (numbers - numbers.mean()) / spread if spread > 0 else np.zeros(len(numbers))


def _with_nulls(values: np.ndarray, rng) -> np.ndarray:
    import numpy as np

    missing = rng.random(len(values)) < NULL_SHARE
    if values.dtype.kind in "iub":
        values = values.astype(object)
    elif values.dtype.kind == "M":
        values = values.copy()
        values[missing] = np.datetime64("NaT")
        return values
    else:
        values = values.copy()
    values[missing] = None if values.dtype == object else np.nan
    return values


def _target(column, features: Features, label: np.ndarray, signal: np.ndarray, rng) -> np.ndarray:
    """Classes straight from the hidden label, or a number in the target's range driven by the features."""
    import numpy as np
    import pandas as pd
    from scipy.special import ndtr

    if features.is_classification:
        return np.asarray(features.target_classes, dtype=object)[label]
    integer = pd.api.types.is_integer_dtype(column.dtype.type)
    checks = {check.name: check.statistics for check in column.checks}
    low, high = value_range(checks, integer)
    score = _standardized(signal + label + rng.normal(0, 0.3, size=len(label)))
    values = low + (high - low) * (0.05 + 0.9 * ndtr(score))
    return np.rint(values).astype(np.int64) if integer else values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="a .csv or .parquet path")
    args = parser.parse_args(argv)
    if args.rows < 1:
        raise ConfigError(f"--rows must be at least 1 (got {args.rows})")
    from pipeline.files import write_csv, write_parquet

    frame = generate(args.rows, args.seed)
    write = write_csv if Path(args.out).suffix == ".csv" else write_parquet
    write(frame, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
