"""Validate: check every input file against the contract before anything learns from it.

Validation is lazy, so one run lists every problem in every file: the file,
column, check, how many rows fail and a few example values. Only when all files
pass are the typed, validated copies written; otherwise the stage exits
non-zero and DVC runs nothing downstream.

Run `python -m pipeline.validate PATH...` to check a new batch before adding it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

from pipeline.contract import Features, features_of, schema
from pipeline.errors import PipelineError, run_main
from pipeline.files import read_table, write_json, write_parquet
from pipeline.params import load_params

EXAMPLES_PER_CHECK = 5
_FRAME_CHECKS = {"column_in_dataframe": "missing column", "column_in_schema": "unexpected column (not in the contract)"}


@dataclass(frozen=True)
class Failure:
    column: str | None
    check: str
    count: int
    examples: list[str] = field(default_factory=list)

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
    cases = cases.copy()
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
        failures.append(Failure(str(column), str(check), count, [repr(value) for value in values]))
    return failures


def check_file(path: str | Path, contract: pa.DataFrameSchema, labels_optional: bool = False):
    """Read and validate one file; an unreadable file is a failure of the file, not a crash."""
    features = features_of(contract)
    try:
        frame = read_table(path, string_columns=_text_columns(features))
    except PipelineError as error:
        return FileReport(str(path), 0, not labels_optional, [Failure(None, "readable", 0, [str(error)])]), None
    return check_frame(frame, contract, str(path), labels_optional)


def _text_columns(features: Features) -> tuple[str, ...]:
    ids = (features.id,) if features.id else ()
    return (*ids, features.target, *features.categorical)


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.validate", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", help="CSV or parquet files to check (default: the pipeline's inputs)")
    parser.add_argument("--unlabelled", action="store_true", help="the files may lack the target column")
    parser.add_argument("--report", help="also write the JSON report here")
    args = parser.parse_args(argv)
    contract = schema()
    if args.paths:
        results = [check_file(path, contract, args.unlabelled) for path in args.paths]
        report_path, outputs = args.report, []
    else:
        params = load_params()
        inputs = [(params.paths.raw_reference, False), (params.paths.raw_current, True)]
        results = [check_file(path, contract, optional) for path, optional in inputs]
        report_path = params.paths.validation_report
        outputs = [params.paths.validated_reference, params.paths.validated_current]
    reports = [report for report, _ in results]
    if report_path:
        write_json(report_payload(reports), report_path)
    if not all(report.passed for report in reports):
        raise PipelineError(describe_failures(reports))
    for (_, frame), output in zip(results, outputs, strict=False):
        write_parquet(frame, output)
    print(f"{sum(r.rows for r in reports)} rows in {len(reports)} file(s) passed the data contract", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
