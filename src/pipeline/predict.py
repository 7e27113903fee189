"""Predict: score a file with the model, in record batches, guarded by the data contract.

    python -m pipeline.predict INPUT -o OUTPUT [--model PATH | --stage prod] [--prediction-log PATH]

INPUT is CSV or parquet, OUTPUT parquet or CSV (by suffix). The input is checked
against the contract without the target, batch by batch, with the same
messages as `python -m pipeline.validate`; a file that fails anywhere writes
nothing (the output is written aside and moved into place only at the end).
Memory stays flat as the file grows: one batch of `predict.batch_rows` rows is
read, checked, scored and written at a time. Unique columns (the id) are
checked across batches too. The output holds the id, the prediction, one
probability per class and the model version (see predictions.py).

Without INPUT it is the pipeline's `predict` stage: it scores the training
split and the current batch for the drift stage, with the model file's md5 as
its version, so the outputs depend on code, params and data only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError, PipelineError, run_main

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa

    from pipeline.checks import Failure
    from pipeline.model_source import LoadedModel


@dataclass(frozen=True)
class Scored:
    rows: int
    batches: int
    output: str


def read_batches(path: Path, text_columns: Sequence[str], batch_rows: int) -> Iterator[pd.DataFrame]:
    """The file as frames of at most `batch_rows` rows: CSV read as `pipeline.validate` reads it, parquet by batch."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.files import reject_wrong_delimiter

    if path.stat().st_size == 0:
        raise PipelineError(f"{path}: file is empty (0 bytes); expected a header row and data rows")
    if path.suffix == ".parquet":
        try:
            # pre_buffer=False: pyarrow's default (True) keeps every row group it has pre-read until the file is
            # closed, so memory grew with the file, about 60 bytes a row (benchmarks/batch_benchmark.py).
            source = pq.ParquetFile(path, pre_buffer=False)
            for batch in source.iter_batches(batch_size=batch_rows):
                yield batch.to_pandas()
        except (pa.ArrowException, OSError) as error:
            raise PipelineError(f"{path}: cannot be read as parquet: {error}") from None
        return
    try:
        text = dict.fromkeys(text_columns, "str")
        with pd.read_csv(path, chunksize=batch_rows, dtype=text, encoding="utf-8") as chunks:
            for number, chunk in enumerate(chunks):
                if number == 0:
                    reject_wrong_delimiter(path, chunk)
                yield chunk
    except UnicodeDecodeError as error:
        raise PipelineError(
            f"{path}: not UTF-8 text ({error.reason} at byte offset {error.start} of a block); "
            "re-save the file with UTF-8 encoding"
        ) from None
    except pd.errors.EmptyDataError:
        raise PipelineError(f"{path}: file has no header row") from None
    except pd.errors.ParserError as error:
        raise PipelineError(f"{path}: cannot be parsed as CSV: {str(error).strip()}") from None


def read_ahead(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The same batches, the next one read by a thread while this one is checked and scored.

    Parquet and CSV decoding mostly run without the GIL, so reading overlaps
    the model's work; one batch waits at most, so memory stays flat. An error
    while reading is raised here, at the batch it stopped.
    """
    import queue
    import threading

    slot: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    end = object()

    def offer(item: tuple) -> None:
        while not stop.is_set():
            try:
                slot.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read() -> None:
        try:
            for frame in batches:
                offer((frame, None))
                if stop.is_set():
                    return
            offer((end, None))
        except BaseException as error:
            offer((end, error))
        finally:
            batches.close()

    thread = threading.Thread(target=read, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            frame, error = slot.get()
            if error is not None:
                raise error
            if frame is end:
                return
            yield frame
    finally:
        stop.set()
        thread.join()


class Writer:
    """Batches appended to a file written aside (`.partial`) and moved into place by `commit`."""

    def __init__(self, path: Path, classes: Sequence):
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.classes = list(classes)
        self._parquet = None
        self._rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from pipeline.predictions import schema_metadata

        if self.path.suffix == ".parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                schema = table.schema.with_metadata({**(table.schema.metadata or {}), **schema_metadata(self.classes)})
                self._parquet = pq.ParquetWriter(self.partial, schema)
            self._parquet.write_table(table.replace_schema_metadata(self._parquet.schema.metadata))
        else:
            frame.to_csv(self.partial, mode="a" if self._rows else "w", header=not self._rows, index=False)
        self._rows += len(frame)

    def commit(self) -> None:
        self._close()
        self.partial.replace(self.path)

    def discard(self) -> None:
        self._close()
        self.partial.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None


def predict_file(
    source: Path,
    output: Path,
    loaded: LoadedModel,
    contract: pa.DataFrameSchema,
    batch_rows: int,
    log_path: Path | None = None,
    validated: bool = False,
) -> Scored:
    """Check, score and write `source` batch by batch; nothing is left at `output` unless every row passed.

    `validated`: the file is the validate stage's output (or a split of it), so it is
    read as it is and not checked again.
    """
    import numpy as np

    from pipeline.checks import (
        FileReport,
        FrameChecker,
        describe_failures,
        duplicates_across,
        merge_failures,
        text_columns,
    )
    from pipeline.features import features_of
    from pipeline.files import output_dir
    from pipeline.prediction_log import BatchLog
    from pipeline.predictions import classes_of, score

    if not source.is_file():
        raise PipelineError(f"{source}: file not found")
    features = features_of(contract)
    checker = FrameChecker(contract, labels_optional=True)
    output_dir(output.parent)
    writer = Writer(output, classes_of(loaded.model))
    unique = [name for name, column in contract.columns.items() if column.unique]
    seen: list[tuple[int, dict]] = []  # per batch: its first row, and unique column -> hashes (8 bytes a row)
    failures: list[Failure] = []
    rows = batches = 0
    log = BatchLog(log_path, source) if log_path else None
    try:
        for frame in read_ahead(read_batches(source, text_columns(contract), batch_rows)):
            frame.index = np.arange(rows, rows + len(frame))  # failures name rows of the whole file
            if validated:
                checked = frame
            else:
                report, checked = checker.check(frame, str(source))
                failures += report.failures
                if any(f.count == 0 and f.column for f in report.failures):
                    rows += len(frame)
                    break  # a missing or unexpected column: every batch would say the same
                seen.append((rows, {name: _hashes(frame[name]) for name in unique if name in frame}))
            if checked is not None and not failures:
                scored = score(loaded.model, checked, features, loaded.version)
                writer.write(scored)
                if log:
                    log.write(checked, scored, loaded.version, first_row=rows)
            rows += len(frame)
            batches += 1
        failures = merge_failures(failures) + duplicates_across(_repeated(seen))
        if rows == 0 and not failures:
            failures.append(_no_rows())
        if failures:
            raise PipelineError(describe_failures([FileReport(str(source), rows, False, failures)]))
        writer.commit()
    except BaseException:
        writer.discard()
        if log:
            log.discard()
        raise
    if log:
        log.commit()
    return Scored(rows, batches, str(output))


def _hashes(values: pd.Series):
    import pandas as pd

    return pd.util.hash_pandas_object(values.astype("str"), index=False).to_numpy()


def _repeated(seen: Sequence[tuple[int, dict]]) -> list[dict]:
    """`duplicates_across`' parts (hashes, rows) for the values whose hash occurs more than once in the file.

    The batches keep only their hashes, and the rows of a value seen once are
    dropped before the parts are joined, so the check across batches costs 8
    bytes a row of the file, not the 40 or so of sorting every row with its
    row number and batch (docs/benchmarks.md). The parts it returns give the
    same failures as all the rows would: a value seen once is in no pair.
    """
    import numpy as np

    out: list[dict] = [{} for _ in seen]
    for name in {name for _, part in seen for name in part}:
        everything = np.concatenate([part[name] for _, part in seen if name in part])
        everything.sort()
        repeated = everything[1:][everything[1:] == everything[:-1]]
        del everything
        if not len(repeated):
            continue
        for kept, (first, part) in zip(out, seen, strict=True):
            if name in part:
                rows = np.flatnonzero(np.isin(part[name], repeated))
                kept[name] = (part[name][rows], rows + first)
    return out


def _no_rows() -> Failure:
    from pipeline.checks import Failure

    return Failure(None, "has data rows", 0, ["the file has a header but no rows"])


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


def _score_partition(item: tuple[str, int, str], contract: pa.DataFrameSchema, model_bytes: bytes, version: str):
    """Check a partition and, when it passes, write its predictions to `out` (aside; moved into place later)."""
    from pipeline.checks import check_frame
    from pipeline.distributed import PartitionCheck, read_partition, unique_hashes
    from pipeline.features import features_of
    from pipeline.predictions import classes_of, score, write_predictions

    path, first_row, out = item
    frame = read_partition(path, first_row)
    report, validated = check_frame(frame, contract, path, labels_optional=True)
    hashes = unique_hashes(frame, contract)
    if validated is not None:
        model = _model(model_bytes)
        write_predictions(score(model, validated, features_of(contract), version), out, classes_of(model))
    return PartitionCheck(len(frame), report.failures, hashes)


def predict_partitions(
    runner,
    directory: str | Path,
    output: str | Path,
    model_bytes: bytes,
    version: str,
    contract: pa.DataFrameSchema,
) -> int:
    """Score every partition into `output/` (one predictions file per input file); nothing is left on failure."""
    import shutil

    from pipeline.checks import FileReport, describe_failures, duplicates_across, merge_failures
    from pipeline.distributed import partitions, row_offsets

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.predict", description=__doc__.split("\n")[0])
    parser.add_argument("input", nargs="?", help="CSV or parquet file to score (default: the pipeline's stage)")
    parser.add_argument("-o", "--output", help="parquet or CSV file to write (by suffix)")
    parser.add_argument("--model", help="a model file (default: paths.model in params.yaml)")
    parser.add_argument("--stage", help="the registry stage whose version to use, e.g. prod (instead of --model)")
    parser.add_argument("--prediction-log", help="also append one JSON line per prediction here (for monitoring)")
    parser.add_argument("--batch-rows", type=int, help="rows per batch (default: predict.batch_rows in params.yaml)")
    parser.add_argument(
        "--scheduler", help="a Dask scheduler for a directory of parquet partitions (or DASK_SCHEDULER_ADDRESS)"
    )
    args = parser.parse_args(argv)
    from pipeline.features import contract_schema
    from pipeline.model_source import from_file, resolve
    from pipeline.params import load_params

    params = load_params()
    batch_rows = params.predict.batch_rows if args.batch_rows is None else args.batch_rows
    if batch_rows < 1:
        raise ConfigError(f"--batch-rows must be at least 1 (got {batch_rows})")
    contract = contract_schema()
    if args.input is None:
        if args.output or args.stage or args.model:
            parser.error("INPUT is needed with --output, --model or --stage")
        return _pipeline_stage(params, contract, batch_rows, from_file(params.paths.model, registry=False))
    if not args.output:
        parser.error("give the output file: -o OUTPUT")
    output = Path(args.output)
    if output.suffix not in (".parquet", ".csv") and not Path(args.input).is_dir():
        raise ConfigError(f"{output}: the output must end in .parquet or .csv")
    if not Path(args.input).exists():  # before the model: a missing input is the first thing to say
        raise PipelineError(f"{args.input}: file not found")
    loaded = resolve(args.model, args.stage, params.paths.model)
    if Path(args.input).is_dir():
        return _partitions(args, loaded, contract)
    log = Path(args.prediction_log) if args.prediction_log else None
    scored = predict_file(Path(args.input), output, loaded, contract, batch_rows, log)
    print(f"{scored.rows} rows scored by {loaded.version} into {scored.output}", file=sys.stderr)
    return 0


def _partitions(args, loaded: LoadedModel, contract) -> int:
    """A directory of parquet partitions in, a directory of prediction partitions out, on Dask if asked."""
    from pipeline.distributed import Runner, scheduler_address

    if args.prediction_log:
        raise ConfigError("--prediction-log is for single files; log partitions by scoring them one by one")
    if Path(args.output).suffix:
        raise ConfigError(f"{args.output}: partitions in, partitions out: the output must be a directory")
    with Runner(scheduler_address(args.scheduler)) as runner:
        rows = predict_partitions(runner, args.input, args.output, loaded.raw, loaded.version, contract)
    print(f"{rows} rows scored by {loaded.version} into {args.output}/", file=sys.stderr)
    return 0


def _pipeline_stage(params, contract, batch_rows: int, loaded: LoadedModel) -> int:
    """The training split and the current batch, both checked by the validate stage: read as they are."""
    for source, output in (
        (params.paths.train, params.paths.predictions_reference),
        (params.paths.validated_current, params.paths.predictions_current),
    ):
        predict_file(Path(source), Path(output), loaded, contract, batch_rows, validated=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
