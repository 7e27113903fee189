"""The contract check of a frame or a file: one core for validate, drift, predict, serve and monitor.

Validation is lazy, so one check lists every problem at once: the file,
column, check, how many rows fail and a few example values. A batch without
labels may leave out the target (`labels_optional`), as production data does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError
from pipeline.features import features_of
from pipeline.files import read_table

if TYPE_CHECKING:
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
    try:
        validated = contract.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return FileReport(path, len(frame), labelled, summarize(errors.failure_cases)), None
    return FileReport(path, len(frame), labelled, []), validated


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
