"""The contract check of a frame or a file: one core for validate, drift, predict, serve and monitor.

Validation is lazy, so one check lists every problem at once: the file,
column, check, how many rows fail and a few example values. A batch without
labels may leave out the target (`labels_optional`), as production data does.

`FrameChecker` is the same check for callers that check many frames against
one contract (each request of the HTTP app, each batch of batch scoring): it
prepares the contract once and runs each column's checks directly, and asks
pandera only when a frame fails (see its docstring).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import PipelineError
from pipeline.features import features_of
from pipeline.files import read_table

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pandera.pandas as pa

EXAMPLES_PER_CHECK = 5
ROWS_PER_CHECK = 20
_FRAME_CHECKS = {"column_in_dataframe": "missing column", "column_in_schema": "unexpected column (not in the contract)"}


@dataclass(frozen=True)
class Failure:
    column: str | None
    check: str
    count: int
    examples: list[str] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # the first failing rows' positions (0 = the first data row)

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column else "file"
        examples = f", e.g. {', '.join(self.examples)}" if self.examples else ""
        rows = f": {self.count} row(s)" if self.count else ""
        return f"{where}, check {self.check}{rows}{examples}"


@dataclass(frozen=True)
class FileReport:
    path: str
    rows: int
    labelled: bool
    failures: list[Failure]

    @property
    def passed(self) -> bool:
        return not self.failures


def check_frame(
    frame: pd.DataFrame, contract: pa.DataFrameSchema, path: str, labels_optional: bool = False
) -> tuple[FileReport, pd.DataFrame | None]:
    """Validate one frame lazily; return its report and, when it passed, the coerced frame."""
    import pandera.pandas as pa

    target = features_of(contract).target
    labelled = target in frame.columns or not labels_optional
    if not labelled:
        contract = contract.remove_columns([target])
    if frame.empty:
        failure = Failure(None, "has data rows", 0, ["the file has a header but no rows"] if len(frame.columns) else [])
        return FileReport(path, 0, labelled, [failure]), None
    failures = boolean_failures(frame, contract)
    try:
        validated = contract.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        failures, validated = failures + summarize(errors.failure_cases), None
    if failures:
        return FileReport(path, len(frame), labelled, sorted(failures, key=_failure_order)), None
    return FileReport(path, len(frame), labelled, []), validated


def _is_boolean(value: object) -> bool:
    import numpy as np

    return isinstance(value, bool | np.bool_) or (isinstance(value, int | float | np.number) and value in (0, 1))


def _failure_order(failure: Failure) -> tuple:
    """By column, then check, the file's own failures (no column) last: the order `summarize` gives."""
    return (failure.column is None, failure.column or "", failure.check)


def boolean_columns(contract: pa.DataFrameSchema) -> tuple[str, ...]:
    """The contract's boolean columns (numpy's bool or pandas' nullable boolean)."""
    import pandas as pd

    return tuple(
        name
        for name, column in contract.columns.items()
        if column.dtype is not None and pd.api.types.is_bool_dtype(column.dtype.type)
    )


def boolean_failures(frame: pd.DataFrame, contract: pa.DataFrameSchema) -> list[Failure]:
    """What coercion to bool would hide, in the contract's boolean columns.

    pandas makes a boolean of anything (None is False; NaN, "no" and 2 are True),
    so pandera's coercion passes them all and a missing value is no longer missing.
    A boolean column takes true, false, 0 and 1; nulls only where it is nullable.
    """
    import numpy as np

    def rows_of(positions) -> list[int]:  # the frame's row labels, as pandera's failure cases name rows
        return sorted(int(label) for label in frame.index[positions])[:ROWS_PER_CHECK]

    failures = []
    for name in boolean_columns(contract):
        if name not in frame.columns:
            continue
        series = frame[name]
        if series.dtype == bool:
            continue
        missing = series.isna().to_numpy()
        values = series.to_numpy(dtype=object)
        allowed = np.fromiter(map(_is_boolean, values), dtype=bool, count=len(values))
        bad = np.flatnonzero(~allowed & ~missing)
        if len(bad):
            examples = list(dict.fromkeys(repr(str(values[i])) for i in bad))[:EXAMPLES_PER_CHECK]
            failures.append(Failure(name, "is_boolean", len(bad), examples, rows_of(bad)))
        nulls = np.flatnonzero(missing)
        if len(nulls) and not contract.columns[name].nullable:
            failures.append(Failure(name, "not_nullable", len(nulls), [], rows_of(nulls)))
    return failures


@dataclass(frozen=True)
class _Column:
    """One contract column, ready to check: pandera's own functions bound once, and kernels for the common ones."""

    name: str
    dtype: Any  # pandera DataType, or None
    kind: str | None  # "number" (float64) or "text" (a string dtype): kernels apply; None: pandera's functions only
    coerce: bool
    nullable: bool
    unique: bool
    required: bool
    checks: tuple[_Check, ...]


@dataclass(frozen=True)
class _Check:
    function: Any  # pandera's check function with its arguments bound
    ignore_na: bool
    element_wise: bool
    kernel: Any = None  # the same verdict on a numpy array or a list of str, for pandera's own built-in checks


class FrameChecker:
    """`check_frame` for many frames against one contract, without pandera's cost per call when a frame passes.

    pandera's `validate` costs milliseconds however small the frame (it copies
    the schema, its columns and the frame, and builds error reports on the
    way): most of a one-row request's time. For each column this runs the
    checks pandera runs, in its order: the dtype's coercion, nullability,
    uniqueness, the dtype check and each check (nulls dropped first unless
    the check keeps them), plus the frame's checks of missing and unexpected
    columns. It calls pandera's own functions, except for two common cases
    where plain numpy or Python gives the same answer without pandas' cost
    per call: float64 columns whose values are numbers (JSON numbers, or a
    numeric array), and text columns of Python strings (JSON strings), for the
    comparisons, ranges and `isin`/`notin` checks pandera builds in.

    When every check passes, the result is the frame pandera returns (the
    tests compare both on generated frames). Anything else (a failure, an
    exception, a value of another type, a contract feature not covered here:
    frame-wide checks, parsers, regex columns, defaults, grouped checks, an
    index, ordered columns) goes to pandera's `validate`, which judges it and
    writes the report. So a pass here is a pass there, and every failure reads
    as pandera says it.
    """

    def __init__(self, contract: pa.DataFrameSchema, labels_optional: bool = False):
        self.contract = contract
        self.labels_optional = labels_optional
        self.target = features_of(contract).target
        self._schemas: dict[bool, pa.DataFrameSchema] = {True: contract}
        self._columns = _compiled(contract)
        self._booleans = bool(boolean_columns(contract))
        self._engine_dtypes: dict[object, object] = {}

    def check(self, frame: pd.DataFrame, path: str, objects: bool = False) -> tuple[FileReport, pd.DataFrame | None]:
        """The report and, when the frame passed, the coerced frame: what `check_frame` returns.

        `objects`: every column of the frame is of dtype object, holding JSON's Python values (a request's).
        """
        import pandera.pandas as pa

        labelled = self.target in frame.columns or not self.labels_optional
        if frame.empty or (self._booleans and boolean_failures(frame, self.contract)):
            return check_frame(frame, self.contract, path, self.labels_optional)
        if self._columns is not None:
            validated = self._passing(frame, labelled, objects)
            if validated is not None:
                return FileReport(path, len(frame), labelled, []), validated
        if labelled not in self._schemas:
            self._schemas[labelled] = self.contract.remove_columns([self.target])
        try:
            validated = self._schemas[labelled].validate(frame, lazy=True)
        except pa.errors.SchemaErrors as errors:
            return FileReport(path, len(frame), labelled, summarize(errors.failure_cases)), None
        return FileReport(path, len(frame), labelled, []), validated

    def _passing(self, frame: pd.DataFrame, labelled: bool, objects: bool = False) -> pd.DataFrame | None:
        """The coerced frame when every check passes; None when one fails or cannot be judged here."""
        import pandas as pd
        from pandera.config import get_config_context

        if not get_config_context().validation_enabled or not frame.columns.is_unique:
            return None
        columns = [c for c in self._columns if labelled or c.name != self.target]
        names = {c.name for c in columns}
        if self.contract.strict and any(name not in names for name in frame.columns):
            return None
        coerced = {}
        present = {name: i for i, name in enumerate(frame.columns)}
        # A frame of Python objects (a request's JSON values): one 2-D array, and each column a view of it,
        # instead of a pandas Series per column (most of a one-row request's check, measured).
        table = frame.to_numpy() if objects else None
        try:
            for column in columns:
                if column.name not in present:
                    if column.required:
                        return None
                    continue
                if table is not None and column.kind == "number" and column.coerce:
                    passed = self._numbers(column, table[:, present[column.name]], frame.index)
                    if passed is None:
                        return None
                    coerced[column.name] = passed
                    continue
                if table is not None:
                    raw = table[:, present[column.name]]
                    series = pd.Series(raw, index=frame.index, name=column.name, dtype=object, copy=False)
                else:
                    series = frame[column.name]
                passed = (
                    self._number(column, series)
                    if column.kind == "number" and column.coerce
                    else self._text(column, series)
                    if column.kind == "text" and column.coerce and series.dtype == object
                    else self._series(column, series)
                )
                if passed is None:
                    return None
                coerced[column.name] = passed
        except Exception:  # a coercion or a check that raises: pandera reports it
            return None
        return pd.DataFrame(
            {name: coerced[name] if name in coerced else frame[name] for name in frame.columns}, index=frame.index
        )

    def _series(self, column: _Column, series: pd.Series):
        """pandera's functions, on a pandas series: the coerced series when all pass, else None."""
        if column.coerce and column.dtype is not None:
            series = column.dtype.try_coerce(series)
        if not column.nullable and series.hasnans:
            return None
        if column.unique and not series.is_unique:
            return None
        if not self._dtype_holds(column, series):
            return None
        for check in column.checks:
            data = series.dropna() if check.ignore_na and series.hasnans else series
            if not _passed(data.map(check.function) if check.element_wise else check.function(data)):
                return None
        return series

    def _numbers(self, column: _Column, raw: np.ndarray, index: pd.Index):
        """`_number` on a column of Python objects, with no pandas Series unless a value is not a number."""
        import pandas as pd

        if not {type(value) for value in raw} <= _NUMBERS:
            return self._series(column, pd.Series(raw, index=index, name=column.name, dtype=object, copy=False))
        return self._number_checks(column, raw.astype("float64"), column.name)

    def _number(self, column: _Column, series: pd.Series):
        """A float64 column from numbers: numpy's coercion and comparisons (pandas runs the same ones)."""
        if series.dtype == object:
            return self._numbers(column, series.to_numpy(), series.index)
        if series.dtype.kind in "fiu":
            values = series.to_numpy().astype("float64")
        else:
            return self._series(column, series)
        return self._number_checks(column, values, series.name)

    def _number_checks(self, column: _Column, values: np.ndarray, name: object):
        """The checks of a number column on its float64 values: the values when all pass, else None."""
        import numpy as np

        missing = np.isnan(values)
        has_missing = bool(missing.any())
        if not column.nullable and has_missing:
            return None
        if column.unique and len(np.unique(values)) != len(values):  # NaNs equal, as pandas' is_unique has it
            return None
        if not self._dtype_holds(column, values):
            return None
        present = values[~missing] if has_missing else values
        for check in column.checks:
            data = present if check.ignore_na else values
            if check.kernel is not None and not check.element_wise:
                if not check.kernel(data):
                    return None
            elif not _passed(_on_series(check, data, name)):
                return None
        return values

    def _text(self, column: _Column, series: pd.Series):
        """A text column from Python strings: set lookups for isin/notin, pandas for the rest (and the coercion)."""
        raw = series.to_numpy()
        if not {type(value) for value in raw} <= _TEXTS:
            return self._series(column, series)
        present = [value for value in raw if value is not None]
        if not column.nullable and len(present) < len(raw):
            return None
        if column.unique and len(set(raw)) != len(raw):  # one None equals another, as pandas' is_unique has it
            return None
        coerced = column.dtype.try_coerce(series)
        if not self._dtype_holds(column, coerced):
            return None
        for check in column.checks:
            if check.kernel is not None and check.ignore_na and not check.element_wise:
                if not check.kernel(present):
                    return None
                continue
            data = coerced.dropna() if check.ignore_na and coerced.hasnans else coerced
            if not _passed(data.map(check.function) if check.element_wise else check.function(data)):
                return None
        return coerced

    def _dtype_holds(self, column: _Column, values) -> bool:
        """pandera's dtype check of a coerced column (its verdict depends on the dtype only)."""
        from pandera.engines.pandas_engine import Engine

        if column.dtype is None:
            return True
        if values.dtype not in self._engine_dtypes:
            self._engine_dtypes[values.dtype] = Engine.dtype(values.dtype)
        verdict = column.dtype.check(self._engine_dtypes[values.dtype])
        return bool(verdict if isinstance(verdict, bool) else verdict.all())


_NUMBERS = frozenset({float, int, type(None)})  # exact types: bool, a subclass of int, is not a number here
_TEXTS = frozenset({str, type(None)})


def _on_series(check: _Check, data, name: object):
    import pandas as pd

    series = pd.Series(data, name=name)
    return series.map(check.function) if check.element_wise else check.function(series)


def _passed(output: object) -> bool:
    """pandera's verdict on a check's output: a boolean series passes when all hold, a boolean when true."""
    import numpy as np
    import pandas as pd

    if isinstance(output, pd.Series):
        return bool(output.all())
    if isinstance(output, bool | np.bool_):
        return bool(output)
    raise TypeError(f"a check returned {type(output).__name__}")  # pandera's verdict, not ours


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


def _kernels(kind: str | None) -> dict:
    """For pandera's built-in checks (by name): the same verdict on a float64 array or a list of str."""
    import numpy as np

    if kind == "number":

        def compare(op):
            def make(**arguments):  # min_value, max_value or value
                [value] = arguments.values()
                return (lambda data: bool(op(data, value).all())) if _is_number(value) else None

            return make

        def in_range(min_value, max_value, include_min=True, include_max=True):
            if not (_is_number(min_value) and _is_number(max_value)):
                return None
            low, high = (np.greater_equal if include_min else np.greater), (np.less_equal if include_max else np.less)
            return lambda data: bool((low(data, min_value) & high(data, max_value)).all())

        def member(negate: bool):
            def make(**arguments):  # allowed_values or forbidden_values
                [values] = arguments.values()
                if isinstance(values, str | bytes) or not all(_is_number(v) for v in values):
                    return None
                allowed = np.asarray(list(values), dtype="float64")
                return lambda data: bool((np.isin(data, allowed) != negate).all())

            return make

        return {
            "greater_than_or_equal_to": compare(np.greater_equal),
            "greater_than": compare(np.greater),
            "less_than_or_equal_to": compare(np.less_equal),
            "less_than": compare(np.less),
            "equal_to": compare(np.equal),
            "not_equal_to": compare(np.not_equal),
            "in_range": in_range,
            "isin": member(False),
            "notin": member(True),
        }
    if kind == "text":

        def member_text(negate: bool):
            def make(**arguments):
                [values] = arguments.values()
                if isinstance(values, str | bytes) or not all(type(v) is str for v in values):
                    return None
                allowed = frozenset(values)
                return lambda data: all((value in allowed) != negate for value in data)

            return make

        return {"isin": member_text(False), "notin": member_text(True)}
    return {}


def _kind(dtype: object) -> str | None:
    import pandas as pd

    if dtype is None:
        return None
    if str(dtype) == "float64":
        return "number"
    if str(dtype) in ("str", "string", "string[python]", "string[pyarrow]") and pd.api.types.is_string_dtype(
        dtype.type
    ):
        return "text"
    return None


def _check_function(check: pa.Check):
    """The function pandera calls for a check: a built-in's is looked up by name at each call, as pandera does."""
    import pandas as pd
    import pandera.pandas as pa

    pa.Check.get_backend(pd.Series(dtype="float64"))  # registers the built-ins' pandas implementations
    name = getattr(check._check_fn, "__name__", None)
    if name is not None and pa.Check.is_builtin_check(name):
        return name, pa.Check.get_builtin_check_fn(name)
    return None, check._check_fn


def _compiled(contract: pa.DataFrameSchema) -> list[_Column] | None:
    """The contract's columns with their checks bound; None when it uses what `FrameChecker` leaves to pandera."""
    frame_wide = (
        contract.checks,
        contract.parsers,
        contract.index is not None,
        contract.dtype is not None,
        contract.unique,
        contract.ordered,
        contract.add_missing_columns,
        contract.drop_invalid_rows,
        getattr(contract, "unique_column_names", False),
        contract.strict not in (True, False),
    )
    if any(frame_wide):
        return None
    columns = []
    for name, column in contract.columns.items():
        if column.regex or column.parsers or column.default is not None or column.drop_invalid_rows:
            return None
        kind = _kind(column.dtype)
        kernels = _kernels(kind)
        checks = []
        for check in column.checks:
            if check.groupby is not None or check._check_fn is None:
                return None
            builtin, function = _check_function(check)
            make = kernels.get(builtin)
            checks.append(
                _Check(
                    function=partial(function, **check._check_kwargs),
                    ignore_na=check.ignore_na,
                    element_wise=check.element_wise,
                    kernel=make(**check._check_kwargs) if make is not None else None,
                )
            )
        columns.append(
            _Column(
                name=name,
                dtype=column.dtype,
                kind=kind,
                coerce=bool(contract.coerce or column.coerce),
                nullable=column.nullable,
                unique=column.unique,
                required=column.required,
                checks=tuple(checks),
            )
        )
    return columns


def summarize(cases: pd.DataFrame) -> list[Failure]:
    """Group pandera's failure cases into one Failure per column and check."""
    from pandas import isna

    cases = cases.astype({"failure_case": object})  # a copy; a frame-wide check's cases may be all booleans
    frame_level = cases["check"].isin(_FRAME_CHECKS)
    cases.loc[frame_level, "column"] = cases.loc[frame_level, "failure_case"].astype(str)
    cases.loc[frame_level, "check"] = cases.loc[frame_level, "check"].map(_FRAME_CHECKS)
    cases.loc[frame_level, "failure_case"] = None
    uncoercible = set(cases.loc[cases["check"].astype(str).str.startswith("coerce_dtype"), "column"])
    # A column that cannot be coerced also fails its dtype and range checks; report the cause only.
    redundant = cases["column"].isin(uncoercible) & ~cases["check"].astype(str).str.startswith("coerce_dtype")
    failures = []
    for (column, check), group in cases[~redundant].groupby(["column", "check"], sort=True, dropna=False):
        values = group["failure_case"].dropna().astype(str).unique()[:EXAMPLES_PER_CHECK]
        if check == "not_nullable":
            values = []
        count = 0 if check in _FRAME_CHECKS.values() else len(group)
        rows = [] if count == 0 else sorted({int(i) for i in group["index"].dropna()})[:ROWS_PER_CHECK]
        where = None if isna(column) else str(column)  # a check of the whole frame names no column
        failures.append(Failure(where, str(check), count, [repr(value) for value in values], rows))
    return failures


def check_file(path: str | Path, contract: pa.DataFrameSchema, labels_optional: bool = False):
    """Read and validate one file; an unreadable file is a failure of the file, not a crash."""
    try:
        frame = read_table(path, string_columns=text_columns(contract))
    except PipelineError as error:
        return FileReport(str(path), 0, not labels_optional, [Failure(None, "readable", 0, [str(error)])]), None
    return check_frame(frame, contract, str(path), labels_optional)


def text_columns(contract: pa.DataFrameSchema) -> tuple[str, ...]:
    """The contract's text columns, read from CSV as text: ids like "007" keep their zeros."""
    import pandas as pd

    return tuple(
        name
        for name, column in contract.columns.items()
        if column.dtype is not None and pd.api.types.is_string_dtype(column.dtype.type)
    )


def load_checked(paths: Sequence[str | Path], contract: pa.DataFrameSchema) -> list[pd.DataFrame]:
    """Files that must follow the contract (labels optional); broken ones stop with the contract's message."""
    results = [check_file(path, contract, labels_optional=True) for path in paths]
    failed = [report for report, frame in results if frame is None]
    if failed:
        raise PipelineError(describe_failures(failed))
    return [frame for _, frame in results]


def report_payload(reports: Sequence[FileReport]) -> dict:
    return {
        "passed": all(report.passed for report in reports),
        "rows_checked": sum(report.rows for report in reports),
        "files": [{**asdict(report), "passed": report.passed} for report in reports],
    }


def describe_failures(reports: Sequence[FileReport]) -> str:
    lines = []
    for report in reports:
        if report.passed:
            continue
        lines.append(f"{report.path} breaks the data contract ({report.rows} rows checked):")
        lines += [f"  - {failure.describe()}" for failure in report.failures]
    return "\n".join(lines)


def merge_failures(failures: Iterable[Failure]) -> list[Failure]:
    """One failure per column and check over all parts: counts added, the first examples and rows kept."""
    merged: dict[tuple, Failure] = {}
    for failure in failures:
        key = (failure.column, failure.check)
        old = merged.get(key)
        if old is None:
            merged[key] = failure
            continue
        examples = list(dict.fromkeys([*old.examples, *failure.examples]))[:EXAMPLES_PER_CHECK]
        rows = sorted({*old.rows, *failure.rows})[:ROWS_PER_CHECK]
        merged[key] = Failure(old.column, old.check, old.count + failure.count, examples, rows)
    return sorted(merged.values(), key=lambda f: (str(f.column), f.check))


def duplicates_across(parts: Sequence[Mapping]) -> list[Failure]:
    """Values of a unique column that appear in two parts (each part's own duplicates its check reports)."""
    import numpy as np

    found = []
    for name in sorted({name for part in parts for name in part}):
        pieces = [(part[name], i) for i, part in enumerate(parts) if name in part]
        if len(pieces) < 2:
            continue
        hashes = np.concatenate([h for (h, _), _ in pieces])
        rows = np.concatenate([r for (_, r), _ in pieces])
        owner = np.concatenate([np.full(len(h), i) for (h, _), i in pieces])
        order = np.argsort(hashes, kind="stable")
        same = hashes[order][1:] == hashes[order][:-1]
        across = same & (owner[order][1:] != owner[order][:-1])
        if across.any():
            dup = np.unique(np.concatenate([rows[order][1:][across], rows[order][:-1][across]]))
            found.append(
                Failure(name, "field_uniqueness (across batches)", len(dup), [], dup[:ROWS_PER_CHECK].tolist())
            )
    return found
