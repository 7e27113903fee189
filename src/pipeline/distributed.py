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
partitions themselves, so the directory must be at the same path on every
worker and here: a shared filesystem, or an object store mounted there (s3://
URLs are not read directly).
Training stays on one machine, on at most `train.max_rows` rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError, PipelineError

if TYPE_CHECKING:
    import pandera.pandas as pa

    from pipeline.checks import FileReport

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
                # How long to try: Dask's own setting (distributed.comm.timeouts.connect, 30 s by default;
                # DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=10s in the environment).
                self.client = Client(address)
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


def read_partition(path: str, first_row: int):
    """A partition as a frame whose index is its rows' numbers in the whole dataset."""
    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(path)
    frame.index = np.arange(first_row, first_row + len(frame))
    return frame


def unique_hashes(frame, contract: pa.DataFrameSchema) -> dict:
    """Per unique column of the contract: the hashes of its values and their row numbers."""
    import pandas as pd

    return {
        name: (pd.util.hash_pandas_object(frame[name].astype("str"), index=False).to_numpy(), frame.index.to_numpy())
        for name, column in contract.columns.items()
        if column.unique and name in frame.columns
    }


def _check_partition(item: tuple[str, int], contract: pa.DataFrameSchema, labels_optional: bool) -> PartitionCheck:
    from pipeline.checks import check_frame

    frame = read_partition(*item)
    report, _ = check_frame(frame, contract, item[0], labels_optional=labels_optional)
    return PartitionCheck(len(frame), report.failures, unique_hashes(frame, contract))


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
