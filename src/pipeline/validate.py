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

from pipeline.errors import PipelineError, run_main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.validate", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="*", help="CSV or parquet files to check (default: the pipeline's inputs)")
    parser.add_argument("--unlabelled", action="store_true", help="the files may lack the target column")
    parser.add_argument("--report", help="also write the JSON report here")
    parser.add_argument(
        "--scheduler", help="a Dask scheduler for directories of parquet partitions (or DASK_SCHEDULER_ADDRESS)"
    )
    args = parser.parse_args(argv)
    from pipeline.checks import check_file, describe_failures, report_payload
    from pipeline.features import contract_schema
    from pipeline.files import write_json, write_parquet
    from pipeline.params import load_params

    contract = contract_schema()
    if args.paths:
        results = [_check(path, contract, args.unlabelled, args.scheduler) for path in args.paths]
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


def _check(path: str, contract, unlabelled: bool, scheduler: str | None):
    """A file, or a directory of parquet partitions (on Dask when a scheduler is given)."""
    from pathlib import Path

    from pipeline.checks import check_file
    from pipeline.distributed import Runner, check_partitions, scheduler_address

    if not Path(path).is_dir():
        return check_file(path, contract, unlabelled)
    with Runner(scheduler_address(scheduler)) as runner:
        return check_partitions(runner, path, contract, unlabelled), None


if __name__ == "__main__":
    raise SystemExit(run_main(main))
