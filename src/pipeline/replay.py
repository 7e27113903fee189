"""Replay: send a file's rows to a running server as requests, as production traffic would come.

    python -m pipeline.replay FILE --url http://127.0.0.1:8000 [--rows-per-request 10] [--max-rows N]
        [--labels-out labels.csv [--labels-if-any]]

Each request carries `X-Request-ID: replay-<first row>`, so the canary share
and the logs are the same on every run. The target, when the file has it, is
held back from the requests and written to `--labels-out` (the id and the
target): the late labels a monitor joins on the id. Without an id in the
contract or a target in the file there are none to write: an error, or with
`--labels-if-any` a note (and no stale file left behind). A bounded loop: one
pass over the file, one request at a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError, PipelineError, run_main

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.features import Features


def late_labels(frame: pd.DataFrame, features: Features) -> pd.DataFrame | str:
    """The id and target columns a monitor joins on the id later, or why a file has none."""
    if not features.id:
        return "the contract has no id column to join labels on"
    if features.target not in frame.columns:
        return f"the file has no target column {features.target!r}"
    return frame[[features.id, features.target]]


def post(url: str, payload: dict, request_id: str) -> int:
    request = urllib.request.Request(
        url.rstrip("/") + "/predict",
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json", "x-request-id": request_id},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except urllib.error.URLError as error:
        raise PipelineError(f"cannot reach the server at {url}: {error.reason}") from None


def wait_for(url: str, seconds: float) -> None:
    """Poll /healthz until it answers, for at most `seconds`."""
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise PipelineError(f"the server at {url} did not answer /healthz within {seconds:g} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.replay", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="a CSV or parquet file of rows that follow the contract")
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default: http://127.0.0.1:8000)")
    parser.add_argument("--rows-per-request", type=int, default=10, help="rows in each request (default: 10)")
    parser.add_argument("--labels-out", help="write the id and the target here: the labels that arrive later")
    parser.add_argument(
        "--labels-if-any", action="store_true", help="with --labels-out: no id or no target is a note, not an error"
    )
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the server's /healthz first")
    parser.add_argument("--max-rows", type=int, help="replay only the file's first N rows (default: all)")
    args = parser.parse_args(argv)
    if args.rows_per_request < 1:
        raise ConfigError(f"--rows-per-request must be at least 1 (got {args.rows_per_request})")
    if args.max_rows is not None and args.max_rows < 1:
        raise ConfigError(f"--max-rows must be at least 1 (got {args.max_rows})")
    from pipeline.checks import text_columns
    from pipeline.features import contract_schema, features_of
    from pipeline.files import read_table, write_csv

    if args.wait:
        wait_for(args.url, args.wait)
    contract = contract_schema()
    features = features_of(contract)
    frame = read_table(args.file, text_columns(contract))
    if args.max_rows is not None:
        frame = frame.head(args.max_rows)  # the labels written are the replayed rows' too
    if args.labels_out:
        labels = late_labels(frame, features)
        if isinstance(labels, str):
            if not args.labels_if_any:
                raise ConfigError(f"--labels-out: {labels}")
            Path(args.labels_out).unlink(missing_ok=True)
            print(f"no labels written to {args.labels_out}: {labels}", file=sys.stderr)
        else:
            write_csv(labels, args.labels_out)
    rows = frame.drop(columns=[features.target], errors="ignore")
    statuses: dict[int, int] = {}
    for start in range(0, len(rows), args.rows_per_request):
        chunk = rows.iloc[start : start + args.rows_per_request]
        payload = {"dataframe_records": json.loads(chunk.to_json(orient="records"))}
        status = post(args.url, payload, f"replay-{start}")
        statuses[status] = statuses.get(status, 0) + 1
    summary = ", ".join(f"{count} answered {status}" for status, count in sorted(statuses.items()))
    print(f"{len(rows)} rows in {sum(statuses.values())} requests: {summary}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
