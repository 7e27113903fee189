"""When one machine is not enough: the data-parallel work on a Dask cluster, with one machine's results.

Contract checks, batch scoring and the drift statistics take a directory of
parquet partitions and, optionally, a Dask scheduler (`--scheduler
tcp://host:8786`, or the DASK_SCHEDULER_ADDRESS variable, as Dask's own
tools read it). The same functions run either way: on a cluster each
partition (or, for drift, each column) is one task; without one they run here,
one after another. So the answers are the same by construction: identical
predictions, identical contract failures (rows counted across the whole
directory, unique columns checked across partitions), identical drift verdicts
(each column's whole sample is tested in one task, as on one machine).

What moves over the network: partition paths, the model file's bytes (skops,
loaded by each worker, never pickled), and small results (failures, row
counts, per-column verdicts, hashes of unique columns). Workers read the
partitions themselves, so the directory must be on storage they all see (a
shared filesystem, or s3://... with the right credentials on the workers).
Training stays on one machine, on at most `train.max_rows` rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError, PipelineError

if TYPE_CHECKING:
    import pandera.pandas as pa

    from pipeline.checks import FileReport
    from pipeline.drift_columns import ColumnDrift
    from pipeline.params import DriftParams

ENV = "DASK_SCHEDULER_ADDRESS"


def scheduler_address(flag: str | None) -> str | None:
    return flag or os.environ.get(ENV) or None


class Runner:
    """`map` over items, on a Dask cluster when an address is given, else here."""

    def __init__(self, address: str | None):
        self.address = address
        self.client = None
        if address:
            try:
                from distributed import Client
            except ImportError:
                raise ConfigError(
                    "a Dask scheduler was given, but dask is not installed: install the `scale` extra"
                ) from None
            try:
                self.client = Client(address, timeout="30s")
            except OSError as error:
                raise PipelineError(f"cannot reach the Dask scheduler at {address}: {error}") from None

    def map(self, function: Callable, items: Sequence, **shared: Any) -> list:
        if self.client is None:
            return [function(item, **shared) for item in items]
        # Shared arguments (the contract, the model's bytes) go to every worker once, as data, not as tasks.
        scattered = {key: self.client.scatter(value, broadcast=True, hash=False) for key, value in shared.items()}
        futures = self.client.map(function, list(items), **scattered, pure=False)
        return self.client.gather(futures)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def partitions(directory: str | Path) -> list[Path]:
    """The parquet files of a partitioned dataset, in name order (a dataset's order)."""
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*.parquet") if p.is_file()) if directory.is_dir() else []
    if not files:
        raise PipelineError(f"{directory}: no parquet partitions (*.parquet) in this directory")
    return files


def row_offsets(files: Sequence[Path]) -> list[int]:
    """The first row of each partition within the whole dataset, from the parquet footers."""
    import pyarrow.parquet as pq

    offsets, total = [], 0
    for path in files:
        offsets.append(total)
        total += pq.ParquetFile(path).metadata.num_rows
    return offsets


@dataclass(frozen=True)
class PartitionCheck:
    rows: int
    failures: list
    hashes: dict  # unique column -> (hashes, row numbers) of this partition


def _check_partition(item: tuple[str, int], contract: pa.DataFrameSchema, labels_optional: bool) -> PartitionCheck:
    import numpy as np
    import pandas as pd

    from pipeline.checks import check_frame

    path, first_row = item
    frame = pd.read_parquet(path)
    frame.index = np.arange(first_row, first_row + len(frame))
    report, _ = check_frame(frame, contract, path, labels_optional=labels_optional)
    hashes = {
        name: (pd.util.hash_pandas_object(frame[name].astype("str"), index=False).to_numpy(), frame.index.to_numpy())
        for name, column in contract.columns.items()
        if column.unique and name in frame.columns
    }
    return PartitionCheck(len(frame), report.failures, hashes)


def check_partitions(
    runner: Runner, directory: str | Path, contract: pa.DataFrameSchema, labels_optional: bool = False
) -> FileReport:
    """The contract's verdict on a partitioned dataset, as one file's: failures merged, uniqueness across parts."""
    from pipeline.checks import FileReport, duplicates_across, merge_failures

    files = partitions(directory)
    items = list(zip(map(str, files), row_offsets(files), strict=True))
    checked = runner.map(_check_partition, items, contract=contract, labels_optional=labels_optional)
    failures = merge_failures([f for part in checked for f in part.failures])
    failures += duplicates_across([part.hashes for part in checked])
    rows = sum(part.rows for part in checked)
    return FileReport(str(directory), rows, not labels_optional, failures)


# Batch scoring of partitions


_MODELS: dict[str, Any] = {}  # per worker process: md5 -> loaded model, so each worker loads it once


def _model(model_bytes: bytes) -> Any:
    import hashlib
    import tempfile

    from pipeline.model_store import load_model

    key = hashlib.md5(model_bytes, usedforsecurity=False).hexdigest()
    if key not in _MODELS:
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "model.skops"
            path.write_bytes(model_bytes)
            _MODELS[key] = load_model(path)  # skops with the trusted types, as everywhere
    return _MODELS[key]


def _score_partition(
    item: tuple[str, int, str], contract: pa.DataFrameSchema, model_bytes: bytes, version: str
) -> PartitionCheck:
    """Check a partition and, when it passes, write its predictions to `out` (aside; moved into place later)."""
    import numpy as np
    import pandas as pd

    from pipeline.checks import check_frame
    from pipeline.features import features_of
    from pipeline.predictions import classes_of, score, write_predictions

    path, first_row, out = item
    frame = pd.read_parquet(path)
    frame.index = np.arange(first_row, first_row + len(frame))
    report, validated = check_frame(frame, contract, path, labels_optional=True)
    hashes = {
        name: (pd.util.hash_pandas_object(frame[name].astype("str"), index=False).to_numpy(), frame.index.to_numpy())
        for name, column in contract.columns.items()
        if column.unique and name in frame.columns
    }
    if validated is not None:
        model = _model(model_bytes)
        write_predictions(score(model, validated, features_of(contract), version), out, classes_of(model))
    return PartitionCheck(len(frame), report.failures, hashes)


def predict_partitions(
    runner: Runner,
    directory: str | Path,
    output: str | Path,
    model_bytes: bytes,
    version: str,
    contract: pa.DataFrameSchema,
) -> int:
    """Score every partition into `output/` (one predictions file per input file); nothing is left on failure."""
    import shutil

    from pipeline.checks import FileReport, describe_failures, duplicates_across, merge_failures

    files = partitions(directory)
    output = Path(output)
    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    items = [
        (str(path), first, str(partial / path.relative_to(directory)))
        for path, first in zip(files, row_offsets(files), strict=True)
    ]
    for _, _, out in items:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    scored = runner.map(_score_partition, items, contract=contract, model_bytes=model_bytes, version=version)
    failures = merge_failures([f for part in scored for f in part.failures])
    failures += duplicates_across([part.hashes for part in scored])
    rows = sum(part.rows for part in scored)
    if failures:
        shutil.rmtree(partial, ignore_errors=True)
        raise PipelineError(describe_failures([FileReport(str(directory), rows, False, failures)]))
    shutil.rmtree(output, ignore_errors=True)
    partial.rename(output)
    return rows


# Drift statistics: one task per column, over every partition of both sides


def _column_drift(
    item: tuple[str, str], reference: Sequence[str], current: Sequence[str], params: DriftParams
) -> ColumnDrift:
    import pyarrow.parquet as pq

    from pipeline.drift_columns import column_drift

    name, kind = item
    ref = pq.read_table(list(reference), columns=[name]).column(name).to_pandas()
    cur = pq.read_table(list(current), columns=[name]).column(name).to_pandas()
    return column_drift(name, ref, cur, kind, params)


def drift_partitions(
    runner: Runner, reference: str | Path, current: str | Path, kinds: Mapping[str, str], params: DriftParams
) -> dict:
    """The drift report's feature part for two partitioned datasets, as `feature_report` gives it for two frames."""
    from pipeline.drift_columns import check_overrides, judge_dataset, report_of

    check_overrides(params, kinds)
    ref_files, cur_files = [list(map(str, partitions(side))) for side in (reference, current)]
    ref_rows, cur_rows = (sum(_rows(files)) for files in (ref_files, cur_files))
    for side, rows in (("reference", ref_rows), ("current batch", cur_rows)):
        if rows == 0:
            raise PipelineError(f"the {side} has no rows; there is nothing to compare")
    columns = runner.map(_column_drift, list(kinds.items()), reference=ref_files, current=cur_files, params=params)
    judged, verdict = judge_dataset(columns, ref_rows, cur_rows, params)
    return report_of(judged, verdict, ref_rows, cur_rows)


def _rows(files: Sequence[str]) -> list[int]:
    import pyarrow.parquet as pq

    return [pq.ParquetFile(path).metadata.num_rows for path in files]
