"""The prediction log: one JSON line per prediction or rejected request, for monitoring live traffic.

Each line is an object with `kind`:

- `prediction`: `request_id`, `row` (within the request or file), `time` (UTC,
  ISO 8601), `source` (`serve` or `batch`), `model_version`, `inputs` (the
  row's columns), `prediction`, `probabilities` (class -> probability, for
  classification) and `latency_ms` (the whole request's, for `serve`);
- `rejected`: a request that broke the contract (`status` 422), was
  malformed (4xx) or that the model failed on (500): `request_id`, `time`,
  `model_version`, `status`, `rows`, `failures` (column, check, count) and
  `latency_ms`.

The server adds `role` (`prod` or `canary`) to both kinds, and `shadow: true`
to the canary's records in shadow mode (prod answered; the canary was only
logged), so the monitor can compare the two on the same window.

The server hands lines to `PredictionLog`, which writes them from a thread of
its own through a bounded queue, so a request never waits for the disk; when
the queue is full, lines are dropped and counted, never blocking. Batch
scoring writes aside and moves the file into place only when the whole input
passed (`BatchLog`).
"""

from __future__ import annotations

import json
import math
import os
import queue
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.features import Features

QUEUE_LINES = 10_000


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain(value: object) -> object:
    """A JSON value: numpy scalars become Python ones, NaN and infinities become null."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def prediction_records(
    inputs: pd.DataFrame,
    scored: pd.DataFrame,
    classes: Sequence,
    *,
    request_id: str,
    source: str,
    version: str,
    time: str,
    latency_ms: float | None = None,
    first_row: int = 0,
    role: str | None = None,
    shadow: bool = False,
) -> list[dict]:
    """One `prediction` record per row of a scored request or batch (`role`, `shadow`: the server's canary)."""
    import pandas as pd

    from pipeline.predictions import PREDICTION, proba_column

    columns = list(inputs.columns)
    values = inputs.to_numpy(dtype=object)
    values[pd.isna(values)] = None  # every null, pandas' own (NA, NaT) included: JSON null
    predicted = scored[PREDICTION].to_numpy(dtype=object)
    proba = {cls: scored[proba_column(cls)].to_numpy() for cls in classes}
    records = []
    for i in range(len(inputs)):
        record = {
            "kind": "prediction",
            "request_id": request_id,
            "row": first_row + i,
            "time": time,
            "source": source,
            "model_version": version,
            "inputs": {name: plain(value) for name, value in zip(columns, values[i], strict=True)},
            "prediction": plain(predicted[i]),
        }
        if classes:
            record["probabilities"] = {str(cls): float(proba[cls][i]) for cls in classes}  # exact: log loss needs them
        if latency_ms is not None:
            record["latency_ms"] = round(latency_ms, 3)
        if role is not None:
            record["role"] = role
        if shadow:
            record["shadow"] = True
        records.append(record)
    return records


def line(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=True, allow_nan=False, default=plain) + "\n"


class PredictionLog:
    """Lines appended to a file by a background thread; `submit` never blocks a request.

    The thread starts with the first line, in the process that submits it: a
    server that forks its workers after building the app (`serve --workers`)
    gives each worker a thread of its own. Each thread appends what it has
    queued in one `write` to a file opened with O_APPEND, so the lines of
    several workers sharing one log never interleave within a line.
    """

    def __init__(self, path: str | Path, on_drop: Callable[[int], None] | None = None, size: int = QUEUE_LINES):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size = size
        self._on_drop = on_drop
        self.dropped = 0
        self._queue: queue.Queue[list[dict] | None] | None = None
        self._thread: threading.Thread | None = None
        self._owner = 0  # the process whose thread writes
        self._starting = threading.Lock()

    def submit(self, records: list[dict]) -> None:
        if self._owner != os.getpid():
            self._start()
        try:
            self._queue.put_nowait(records)
        except queue.Full:
            self.dropped += len(records)
            if self._on_drop:
                self._on_drop(len(records))

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the thread (this process's; nothing to do if it never wrote)."""
        if self._owner == os.getpid() and self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._owner = 0

    def _start(self) -> None:
        with self._starting:  # the event loop and a shadow canary's thread may both submit first
            if self._owner == os.getpid():
                return
            self._queue = queue.Queue(maxsize=self._size)
            self._thread = threading.Thread(target=self._run, args=(self._queue,), name="prediction-log", daemon=True)
            self._thread.start()
            self._owner = os.getpid()

    def _run(self, lines: queue.Queue[list[dict] | None]) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            done = False
            while not done:
                batches = [lines.get()]
                while batches[-1] is not None and not lines.empty() and len(batches) < 1_000:
                    batches.append(lines.get_nowait())
                done = batches[-1] is None
                data = "".join(line(record) for batch in batches if batch is not None for record in batch)
                written = memoryview(data.encode("utf-8"))
                while written:
                    written = written[os.write(descriptor, written) :]
        finally:
            os.close(descriptor)


class BatchLog:
    """The log of one batch-scoring run, written aside and appended to the log only when the run succeeds."""

    def __init__(self, path: str | Path, source: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self.path.with_name(self.path.name + f".{os.getpid()}.partial")
        self.request_id = f"batch:{source.name}:{now()}"
        self._handle = self.partial.open("w", encoding="utf-8")

    def write(self, inputs: pd.DataFrame, scored: pd.DataFrame, version: str, first_row: int) -> None:
        from pipeline.predictions import PROBA_PREFIX

        classes = [name.removeprefix(PROBA_PREFIX) for name in scored.columns if name.startswith(PROBA_PREFIX)]
        records = prediction_records(
            inputs,
            scored,
            classes,
            request_id=self.request_id,
            source="batch",
            version=version,
            time=now(),
            first_row=first_row,
        )
        self._handle.writelines(line(record) for record in records)

    def commit(self) -> None:
        self._handle.close()
        with self.path.open("a", encoding="utf-8") as target, self.partial.open(encoding="utf-8") as written:
            for chunk in iter(lambda: written.read(1 << 20), ""):
                target.write(chunk)
        self.partial.unlink()

    def discard(self) -> None:
        self._handle.close()
        self.partial.unlink(missing_ok=True)


# Reading the logs back (the monitor, the refresh)


def log_files(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.rglob("*.jsonl"))
        elif path.is_file():
            files.append(path)
        else:
            raise PipelineError(f"{path}: no such log file or directory")
    if not files:
        raise PipelineError(f"no prediction logs (*.jsonl) in {', '.join(map(str, paths))}")
    return files


def read_logs(files: Sequence[Path]) -> list[dict]:
    """Every record of every log; a line that is not a JSON object is an error naming the file and line."""
    records = []
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    raise PipelineError(f"{path}:{number}: not a JSON line ({error.msg})") from None
                if not isinstance(record, dict) or record.get("kind") not in ("prediction", "rejected"):
                    raise PipelineError(f"{path}:{number}: not a prediction-log record (kind prediction or rejected)")
                records.append(record)
    return records


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        raise PipelineError(f"{text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_labels(path: str | Path, features: Features) -> pd.DataFrame:
    """Late ground truth: the id and the target columns of a CSV or parquet file."""
    from pipeline.files import read_table

    if not features.id:
        raise PipelineError("labels are joined on the contract's id column, and the contract has none")
    labels = read_table(path, string_columns=(features.id,))
    missing = [name for name in (features.id, features.target) if name not in labels.columns]
    if missing:
        raise PipelineError(f"{path}: lacks {', '.join(missing)}; labels need the id and the target")
    return labels[[features.id, features.target]].drop_duplicates(subset=features.id, keep="last")
