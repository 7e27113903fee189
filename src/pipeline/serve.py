"""Serve: the model over HTTP (FastAPI on uvicorn), guarded by the data contract.

    python -m pipeline.serve [--host 127.0.0.1] [--port 8000] [--model PATH | --stage prod] [--prediction-log PATH]

`POST /predict` (and `POST /invocations`, the path MLflow's scoring server
uses) take the request formats MLflow's server accepts, so its clients work:

    {"dataframe_records": [{"col": 1.5, ...}, ...]}
    {"dataframe_split": {"columns": ["col", ...], "data": [[1.5, ...], ...]}}

and answer `{"predictions": [...], "probabilities": [[...]], "classes": [...],
"model_version": "..."}` (no probabilities for regression). Every request is
checked against the contract, without the target, by the same core as
`pipeline.validate`: a failure is a 422 whose body names each column, check
and row. Malformed JSON, NaN or Infinity literals and unknown formats are
400s, an oversized body or too many rows 413: never a 500, and the server
keeps serving. `GET /healthz` (alive), `GET /readyz` (model loaded, version),
`GET /metrics` (Prometheus) and `GET /docs` (OpenAPI, with the contract's
columns) complete it. With a prediction log, each prediction is one JSON line
(prediction_log.py), written off the request path.

Each request is checked by one `FrameChecker` built at start (checks.py) and
scored on one native thread (OMP_NUM_THREADS=1 unless set); what a request
costs beyond the model's own is measured in docs/benchmarks.md.

A canary (`--canary-model PATH` or `--canary-stage canary`) serves beside
prod. In `split` mode it answers the requests whose id hashes into its share
(`routed_to_canary`: the same requests on every run, and raising the share
only adds requests); in `shadow` mode prod answers every request and the
canary's predictions on the same rows are only logged, after the answer.
Answers carry `x-model-role`, log records `role`, and the metrics the model
version and role; `python -m pipeline.monitor --canary` compares the two.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoints' parameter
# types (`request: Request`) at runtime, and Request is imported inside create_app.
import argparse
import contextlib
import gc
import hashlib
import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import run_main

if TYPE_CHECKING:
    import pandas as pd
    import pandera.pandas as pa
    from fastapi import FastAPI

    from pipeline.checks import FrameChecker
    from pipeline.model_source import LoadedModel
    from pipeline.prediction_log import PredictionLog

FORMATS = ("dataframe_records", "dataframe_split")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


PR_SET_PDEATHSIG = 1  # prctl(2)
WORKER_MIN_SECONDS = 5.0  # a worker that dies sooner is not restarted: it would die again

ROLES = ("prod", "canary")
MODES = ("split", "shadow")


def routed_to_canary(request_id: str, share: float) -> bool:
    """Whether a request goes to the canary: the first 8 bytes of its id's SHA-256, as a fraction, below the share."""
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass(frozen=True)
class Canary:
    """The second model, the share of requests it answers (split) and the mode."""

    loaded: "LoadedModel"
    share: float
    mode: str

    def describe(self) -> dict:
        return {"model_version": self.loaded.version, "share": self.share, "mode": self.mode}


class RequestError(Exception):
    """A request the app refuses: the HTTP status and a JSON body."""

    def __init__(self, status: int, detail: str, failures: list[dict] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.failures = status, detail, failures

    def body(self) -> dict:
        return {"detail": self.detail, **({"failures": self.failures} if self.failures is not None else {})}


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int
    max_rows: int


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})  # json.loads makes these exact types, or dict and list


def _no_constants(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parse_request(body: bytes, limits: Limits) -> "pd.DataFrame":
    """The request's rows as a frame; anything but a well-formed request in one of the two formats is a RequestError."""
    import pandas as pd

    if len(body) > limits.max_request_bytes:
        raise RequestError(413, f"the request body is {len(body)} bytes; the limit is {limits.max_request_bytes}")
    try:
        payload = json.loads(body, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise RequestError(400, "the request body is not UTF-8 JSON") from None
    except (json.JSONDecodeError, ValueError) as error:
        raise RequestError(400, f"malformed JSON: {error}") from None
    if not isinstance(payload, dict) or len(set(payload) & set(FORMATS)) != 1:
        raise RequestError(
            400,
            'expected {"dataframe_records": [{column: value, ...}, ...]} or '
            '{"dataframe_split": {"columns": [...], "data": [[...], ...]}}',
        )
    if "dataframe_records" in payload:
        records = payload["dataframe_records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise RequestError(400, "dataframe_records must be a list of objects, one per row")
        columns = list(dict.fromkeys(name for record in records for name in record))
        rows = [[record.get(name) for name in columns] for record in records]
    else:
        split = payload["dataframe_split"]
        if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
            raise RequestError(400, "dataframe_split needs columns (a list of names) and data (a list of rows)")
        columns, rows = split["columns"], split.get("data")
        if not all(isinstance(name, str) for name in columns) or len(set(columns)) != len(columns):
            raise RequestError(400, "dataframe_split.columns must be distinct column names")
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise RequestError(400, "dataframe_split.data must be a list of rows, each a list of values")
        for i, row in enumerate(rows):
            if len(row) != len(columns):
                raise RequestError(
                    400, f"dataframe_split.data row {i} has {len(row)} values for {len(columns)} columns"
                )
    if not rows:
        raise RequestError(422, "the request has no rows", [{"column": None, "check": "has rows", "count": 0}])
    if len(rows) > limits.max_rows:
        raise RequestError(413, f"the request has {len(rows)} rows; the limit is {limits.max_rows}")
    if not {type(value) for row in rows for value in row} <= _JSON_SCALARS:
        for i, row in enumerate(rows):
            for name, value in zip(columns, row, strict=True):
                if type(value) not in _JSON_SCALARS:
                    kind = "an object" if isinstance(value, dict) else "a list"
                    raise RequestError(400, f"row {i}, column {name!r}: {kind} is not a value")
    return pd.DataFrame(rows, columns=columns, dtype=object)


def contract_failures(frame: "pd.DataFrame", checker: "FrameChecker") -> "tuple[list[dict], pd.DataFrame | None]":
    """The contract's verdict on a request frame: failures as the 422 body lists them, and the coerced frame."""
    from dataclasses import asdict

    report, validated = checker.check(frame, "request", objects=True)  # parse_request's frame
    return [asdict(failure) for failure in report.failures], validated


class Measure:
    """ASGI middleware: the request id (x-request-id, else a new one) and each request's count and latency."""

    def __init__(self, app, metrics: "Metrics"):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"").decode("latin-1")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"], state["started"] = request_id, started
        status = 500

        async def send_with_id(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            endpoint = route.path if route is not None else "unmatched"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (with the process's CPU and memory).

    With several workers (`--workers`, PROMETHEUS_MULTIPROC_DIR set before prometheus_client is
    imported), each worker's counts live in files of that directory and `/metrics` adds them up
    whichever worker answers it (prometheus_client's multiprocess mode); the process metrics are
    then the answering worker's own.
    """

    def __init__(self, loaded: "LoadedModel", classes: Sequence, canary: "Canary | None" = None):
        from prometheus_client import CollectorRegistry, Counter, Histogram, Info, PlatformCollector, ProcessCollector

        self.registry = CollectorRegistry()  # what /metrics shows
        counted = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client.multiprocess import MultiProcessCollector

            MultiProcessCollector(self.registry)
            counted = CollectorRegistry()  # the counters' own values are read from the files, not from here
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "ratchet_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=counted
        )
        self.latency = Histogram(
            "ratchet_request_duration_seconds",
            "Request latency by endpoint, from the request's arrival to its answer",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=counted,
        )
        self.predictions = Counter(
            "ratchet_predictions",
            "Predictions made, by predicted class (regression: class is 'value')",
            ["class"],
            registry=counted,
        )
        self.rows = Counter("ratchet_predicted_rows", "Rows scored", registry=counted)
        self.model_rows = Counter(
            "ratchet_model_rows",
            "Rows scored by each model: its role (prod or canary) and version; shadow rows count for the canary",
            ["role", "version"],
            registry=counted,
        )
        self.failures = Counter(
            "ratchet_validation_failures",
            "Contract failures in requests, by column and check",
            ["column", "check"],
            registry=counted,
        )
        self.dropped = Counter(
            "ratchet_prediction_log_dropped",
            "Prediction log lines dropped because the queue was full",
            registry=counted,
        )
        Info("ratchet_model", "The model being served", registry=self.registry).info(
            {"version": loaded.version, "source": loaded.source}
        )
        if canary is not None:
            Info(
                "ratchet_canary", "The canary beside it: version, share of requests and mode", registry=self.registry
            ).info(
                {
                    "version": canary.loaded.version,
                    "source": canary.loaded.source,
                    **{k: str(v) for k, v in canary.describe().items() if k != "model_version"},
                }
            )
        self.classes = [str(c) for c in classes]


def create_app(
    loaded: "LoadedModel",
    contract: "pa.DataFrameSchema",
    limits: Limits,
    log: "PredictionLog | None" = None,
    canary: "Canary | None" = None,
) -> "FastAPI":
    """The FastAPI app around the prod model, and a canary beside it when given (same classes: `same_classes`)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from starlette.background import BackgroundTask

    from pipeline.checks import FrameChecker
    from pipeline.features import features_of
    from pipeline.prediction_log import now, prediction_records
    from pipeline.predictions import classes_of, predict_arrays, scored_frame

    features = features_of(contract)
    checker = FrameChecker(contract, labels_optional=True)
    classes = classes_of(loaded.model)
    if canary is not None:
        same_classes(classes, classes_of(canary.loaded.model), canary.loaded.source)
    models = {"prod": loaded, "canary": canary.loaded if canary is not None else None}
    metrics = Metrics(loaded, classes, canary)
    if log is not None:
        log._on_drop = metrics.dropped.inc
    app = FastAPI(
        title="Ratchet model",
        version=loaded.version,
        description="Predictions from the model, for rows that follow the data contract (the target is optional).",
    )
    app.add_middleware(Measure, metrics=metrics)

    def role_of(request: Request) -> str:
        """Who answers: the canary for its share of ids in split mode, prod otherwise."""
        split = canary is not None and canary.mode == "split"
        return "canary" if split and routed_to_canary(request.state.request_id, canary.share) else "prod"

    def refuse(request: Request, error: RequestError, role: str = "prod", rows: int = 0) -> JSONResponse:
        for failure in error.failures or []:
            metrics.failures.labels(failure["column"] or "(request)", str(failure["check"])).inc()
        if log is not None:
            log.submit([_rejected(request, error, rows, models[role].version, role)])
        return JSONResponse(error.body(), status_code=error.status, headers={"x-model-role": role})

    def score(role: str, validated: "pd.DataFrame", request: Request, latency_ms, shadow: bool = False):
        """The model's predictions, counted, and its log records (`latency_ms()`: the request's so far)."""
        model = models[role]
        predicted, proba = predict_arrays(model.model, validated, features)
        metrics.model_rows.labels(role, model.version).inc(len(predicted))
        if log is not None:
            scored = scored_frame(validated, features, model.version, predicted, proba, classes)
            log.submit(
                prediction_records(
                    validated,
                    scored,
                    classes,
                    request_id=request.state.request_id,
                    source="serve",
                    version=model.version,
                    time=now(),
                    latency_ms=latency_ms(),
                    role=role,
                    shadow=shadow,
                )
            )
        return predicted, proba

    def shadow(validated: "pd.DataFrame", request: Request, checked_ms: float) -> None:
        """The canary on the rows prod answered, after the answer: its latency is the check's plus its own."""
        started = time.perf_counter()
        try:
            score("canary", validated, request, lambda: checked_ms + (time.perf_counter() - started) * 1000, True)
        except Exception as error:  # the canary failing must not touch prod's answer: it is logged as its error
            _print_failure(error)
            if log is not None:
                failed = RequestError(500, f"the canary failed: {type(error).__name__}")
                log.submit([_rejected(request, failed, len(validated), models["canary"].version, "canary", True)])

    async def predict(request: Request) -> JSONResponse:
        role = role_of(request)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_request_bytes:
            return refuse(
                request,
                RequestError(413, f"the request body is {declared} bytes; the limit is {limits.max_request_bytes}"),
                role,
            )
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limits.max_request_bytes:
                error = RequestError(413, f"the request body is over {limits.max_request_bytes} bytes")
                return refuse(request, error, role)
        try:
            frame = parse_request(bytes(body), limits)
            failures, validated = contract_failures(frame, checker)
            if validated is None:
                raise RequestError(422, "the request breaks the data contract", failures)
        except RequestError as error:
            return refuse(request, error, role)
        checked_ms = (time.perf_counter() - request.state.started) * 1000

        def elapsed_ms() -> float:
            return (time.perf_counter() - request.state.started) * 1000

        # On the event loop, not in a thread pool: a one-row predict_proba is mostly Python holding the GIL,
        # and handing it to a thread cost half as much CPU again per request under concurrency (measured by
        # benchmarks/serving_benchmark.py). The process's parallelism is more processes, not threads.
        try:
            predicted, proba = score(role, validated, request, elapsed_ms)
        except Exception as error:  # the model failed: a 500, logged against the model that failed
            _print_failure(error)
            failed = RequestError(500, f"the model failed to predict: {type(error).__name__}")
            return refuse(request, failed, role, len(validated))
        predictions = predicted.tolist()
        answer = {"predictions": predictions, "model_version": models[role].version}
        if proba is not None:
            answer["probabilities"] = proba.tolist()
            answer["classes"] = classes  # plain values (classes_of)
            for value, count in Counter(predictions).items():
                metrics.predictions.labels(str(value)).inc(count)
        else:
            metrics.predictions.labels("value").inc(len(predictions))
        metrics.rows.inc(len(predictions))
        background = (
            BackgroundTask(shadow, validated, request, checked_ms)
            if canary is not None and canary.mode == "shadow"
            else None
        )
        return JSONResponse(answer, headers={"x-model-role": role}, background=background)

    schema = request_schema(contract, features)
    for path in ("/predict", "/invocations"):
        app.add_api_route(
            path,
            predict,
            methods=["POST"],
            summary="Predict for rows that follow the data contract",
            openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}},
            responses={
                200: {"description": "Predictions, in row order"},
                400: {"description": "Malformed JSON, NaN or Infinity, or not one of the two formats"},
                413: {"description": "Body or row count over the limit"},
                422: {"description": "Rows that break the data contract: each failing column, check and row"},
            },
        )

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model (and the canary, if any) is loaded and can answer")
    async def readyz() -> dict:
        ready = {"ready": True, "model_version": loaded.version, "task": features.task}
        return {**ready, "canary": canary.describe()} if canary is not None else ready

    @app.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        _print_failure(error)
        return JSONResponse({"detail": "internal error", "request_id": request.state.request_id}, status_code=500)

    return app


def request_schema(contract: "pa.DataFrameSchema", features) -> dict:
    """The OpenAPI schema of a request: the two formats, with the contract's columns and their types."""
    import pandas as pd

    properties = {}
    for name, column in contract.columns.items():
        dtype = column.dtype.type if column.dtype is not None else None
        if dtype is not None and pd.api.types.is_bool_dtype(dtype):
            kind = {"type": "boolean"}
        elif dtype is not None and pd.api.types.is_integer_dtype(dtype):
            kind = {"type": "integer"}
        elif dtype is not None and pd.api.types.is_numeric_dtype(dtype):
            kind = {"type": "number"}
        else:
            kind = {"type": "string"}
        from pipeline.features import allowed_values
        from pipeline.prediction_log import plain

        allowed = allowed_values(column)
        if allowed is not None:
            kind["enum"] = [plain(v) for v in allowed]
        if column.nullable:
            kind = {"anyOf": [kind, {"type": "null"}]}
        role = (column.metadata or {}).get("role")
        kind["description"] = f"{role} (optional)" if name == features.target else (role or "feature")
        properties[name] = kind
    required = [name for name in contract.columns if name != features.target]
    record = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return {
        "oneOf": [
            {
                "title": "dataframe_records",
                "type": "object",
                "properties": {"dataframe_records": {"type": "array", "items": record, "minItems": 1}},
                "required": ["dataframe_records"],
            },
            {
                "title": "dataframe_split",
                "type": "object",
                "properties": {
                    "dataframe_split": {
                        "type": "object",
                        "properties": {
                            "columns": {"type": "array", "items": {"type": "string", "enum": list(contract.columns)}},
                            "data": {"type": "array", "items": {"type": "array"}, "minItems": 1},
                        },
                        "required": ["columns", "data"],
                    }
                },
                "required": ["dataframe_split"],
            },
        ]
    }


def same_classes(prod: Sequence, canary: Sequence, source: str) -> None:
    """A canary must know the classes prod knows, in the same order: answers and logs share one `classes`."""
    from pipeline.errors import PipelineError

    if list(prod) != list(canary):
        raise PipelineError(
            f"{source}: the canary's classes {list(canary)} are not prod's {list(prod)}; "
            "a canary must be a model of the same task and classes"
        )


def _print_failure(error: BaseException) -> None:
    """An unexpected error, for the server's operator: the traceback goes to stderr, never to the client."""
    import traceback

    traceback.print_exception(error, file=sys.stderr)


def _rejected(request, error: RequestError, rows: int, version: str, role: str = "prod", shadow: bool = False) -> dict:
    from pipeline.prediction_log import now

    failures = [{"column": f["column"], "check": f["check"], "count": f["count"]} for f in (error.failures or [])]
    return {
        "role": role,
        **({"shadow": True} if shadow else {}),
        "kind": "rejected",
        "request_id": request.state.request_id,
        "time": now(),
        "source": "serve",
        "model_version": version,
        "status": error.status,
        "detail": error.detail,
        "rows": rows,
        "failures": failures,
        "latency_ms": round((time.perf_counter() - request.state.started) * 1000, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.serve", description=__doc__.split("\n")[0])
    parser.add_argument("--host", help="address to listen on (default: serve.host in params.yaml)")
    parser.add_argument("--port", type=int, help="port (default: serve.port in params.yaml)")
    parser.add_argument("--model", help="a model file (default: paths.model in params.yaml)")
    parser.add_argument("--stage", help="serve the version a registry stage holds, e.g. prod (instead of --model)")
    parser.add_argument(
        "--model-version", default=os.environ.get("MODEL_VERSION"), help="the version to report (the image sets it)"
    )
    parser.add_argument("--prediction-log", help="append one JSON line per prediction here (serve.prediction_log)")
    parser.add_argument("--max-request-bytes", type=int, help="default: serve.max_request_bytes in params.yaml")
    parser.add_argument("--max-rows", type=int, help="default: serve.max_rows in params.yaml")
    parser.add_argument("--workers", type=int, help="server processes sharing the port (default: serve.workers)")
    canary = parser.add_mutually_exclusive_group()
    canary.add_argument("--canary-model", help="a second model file, served beside prod as its canary")
    canary.add_argument("--canary-stage", help="the version a registry stage holds as the canary, e.g. canary")
    parser.add_argument("--canary-share", type=float, help="of requests the canary answers (default: canary.share)")
    parser.add_argument("--canary-mode", choices=MODES, help="split or shadow (default: canary.mode in params.yaml)")
    args = parser.parse_args(argv)
    # One native thread per prediction, before numpy and scikit-learn load their thread pools: the app's
    # parallelism is across requests, and on a busy machine OpenMP's spinning threads turn a one-row
    # predict_proba into tens of milliseconds (benchmarks/serving_benchmark.py). An explicit value wins.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from pipeline.errors import ConfigError
    from pipeline.features import contract_schema
    from pipeline.model_source import from_file, from_stage, resolve
    from pipeline.params import MAX_WORKERS, load_params
    from pipeline.prediction_log import PredictionLog

    params = load_params()  # the serving image carries params.yaml too
    workers = params.serve.workers if args.workers is None else args.workers
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers must be between 1 and {MAX_WORKERS} (got {workers})")
    contract = contract_schema()
    if args.model_version and not args.stage:
        loaded = from_file(args.model or params.paths.model, args.model_version)
    else:
        loaded = resolve(args.model, args.stage, params.paths.model)
    share = params.canary.share if args.canary_share is None else args.canary_share
    if not 0 <= share <= 1:
        raise ConfigError(f"--canary-share must be between 0 and 1 (got {share})")
    if args.canary_stage:
        canary = Canary(from_stage(args.canary_stage), share, args.canary_mode or params.canary.mode)
    elif args.canary_model:
        canary = Canary(from_file(args.canary_model), share, args.canary_mode or params.canary.mode)
    elif args.canary_share is not None or args.canary_mode:
        raise ConfigError("--canary-share and --canary-mode need a canary: --canary-model or --canary-stage")
    else:
        canary = None
    limits = Limits(args.max_request_bytes or params.serve.max_request_bytes, args.max_rows or params.serve.max_rows)
    log_path = args.prediction_log or params.serve.prediction_log
    log = PredictionLog(log_path) if log_path else None
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        import tempfile

        # Before prometheus_client is imported (create_app): the workers' counts go to files there.
        metrics_dir = tempfile.TemporaryDirectory(prefix="ratchet-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    app = create_app(loaded, contract, limits, log, canary)
    # What is built by now (modules, the model, the app) lives as long as the process: frozen, it is out of
    # the collector's sight, so a full collection no longer walks its 240,000 objects (over 100 ms on the
    # benchmark's machine, stalling every request in flight) every few thousand requests (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    host, port = args.host or params.serve.host, args.port or params.serve.port
    print(
        f"serving {loaded.version} ({loaded.source}) on http://{host}:{port}"
        + (f" with {workers} workers" if workers > 1 else ""),
        file=sys.stderr,
    )
    if canary is not None:
        print(
            f"canary {canary.loaded.version} ({canary.loaded.source}): {canary.mode}, share {canary.share:g}",
            file=sys.stderr,
        )
    try:
        return run_workers(app, host, port, workers, log)
    finally:
        if metrics_dir is not None:
            metrics_dir.cleanup()


def run_workers(app: "FastAPI", host: str, port: int, workers: int, log: "PredictionLog | None") -> int:
    """Serve until SIGTERM or SIGINT: in this process, or in `workers` processes forked from it.

    The workers share the listening socket, the loaded model and the app (copy-on-write: the
    model is loaded once), like gunicorn's preloading. This process only supervises: it forwards
    SIGTERM and SIGINT to every worker and waits for them (each finishes its requests and writes
    its queued log lines), and replaces a worker that dies, unless it died within its first
    seconds, which would repeat: then it stops them all and exits 1.
    """
    import signal

    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    if workers == 1:
        try:
            uvicorn.Server(config).run()
        finally:
            if log is not None:
                log.close()
        return 0
    listening = config.bind_socket()
    supervisor = os.getpid()
    started: dict[int, float] = {}
    stopping: list[int] = []

    def fork() -> None:
        pid = os.fork()
        if pid == 0:  # the worker: uvicorn installs its own signal handlers
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            if sys.platform == "linux":  # the worker goes when the supervisor goes, even killed
                import ctypes

                ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != supervisor:
                os._exit(1)
            code = 1
            try:
                uvicorn.Server(config).run(sockets=[listening])
                code = 0
            except BaseException as error:  # os._exit below would lose it: the operator sees why
                _print_failure(error)
            finally:
                if log is not None:
                    log.close()
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)  # not the supervisor's exit path: its atexit and finally blocks are its own
        started[pid] = time.monotonic()
        if stopping:  # a signal came between the fork and the line above: this worker missed it
            os.kill(pid, signal.SIGTERM)

    def stop(signum, _frame) -> None:
        stopping.append(signum)
        for pid in list(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        fork()
    code = 0
    while started:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        since = time.monotonic() - started.pop(pid, time.monotonic())
        if stopping:
            continue
        exit_code = os.waitstatus_to_exitcode(status)
        print(f"worker {pid} stopped (exit code {exit_code}) after {since:.1f} s", file=sys.stderr)
        if since < WORKER_MIN_SECONDS:
            print("it stopped too soon to be restarted: stopping every worker", file=sys.stderr)
            code = 1
            stop(signal.SIGTERM, None)
        else:
            fork()
    listening.close()
    return code


if __name__ == "__main__":
    raise SystemExit(run_main(main))
