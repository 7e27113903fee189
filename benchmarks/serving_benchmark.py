"""HTTP serving: Ratchet's app against MLServer's scikit-learn runtime and the in-process predict_proba floor.

Both servers run side by side on 127.0.0.1, each from its own environment:
Ratchet (`python -m pipeline.serve`) from .venv, MLServer 1.7 with
mlserver-sklearn from .venv-mlserver (`make mlserver-env`), serving the same
fitted model. MLServer's runtime loads joblib (pickle) files only, so for this
benchmark alone the model is exported with joblib into a temporary directory;
Ratchet itself never pickles a model.

For single-row and 100-row requests, each server gets the same rows (Ratchet
in MLflow's `dataframe_split` format, MLServer as a V2 inference request with
pandas content type asking for `predict_proba`) from a bounded closed loop:
C clients on keep-alive connections (threads with http.client), each sending
its share of a fixed number of requests, one after another. Servers take turns
(never loaded at once) in interleaved rounds, so a busy moment on a shared
machine hits both. The floor is `model.predict_proba` on the same rows,
already in a frame, in this process: no HTTP, no parsing, no checks. Every
answer's probabilities are compared with the floor's before timing starts.

    make benchmark-serving   # = .venv/bin/python benchmarks/serving_benchmark.py

Prints a markdown table and the ratios, and writes the results as JSON
(--out). Peak memory is each server's kernel high-water mark (VmHWM), for
MLServer summed over its process tree (it runs inference in a worker process).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

from measured import write_results

ROOT = Path(__file__).resolve().parents[1]
RATCHET_PYTHON = ROOT / ".venv/bin/python"
MLSERVER_PYTHON = ROOT / ".venv-mlserver/bin/python"
STARTUP_DEADLINE = 120.0  # seconds: a guard against a server that never comes up
SERVERS = ("ratchet", "mlserver")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Payloads: the same rows for both servers.


def benchmark_rows(rows: int):
    """`rows` rows that pass the contract (without the target), from the contract-driven generator."""
    from pipeline.features import contract_schema, features_of
    from pipeline.synthetic import generate

    contract = contract_schema()
    features = features_of(contract)
    frame = generate(max(rows, 200), seed=11, contract=contract).head(rows)
    return frame.drop(columns=[features.target]).reset_index(drop=True), contract, features


def plain(value: object) -> object:
    """A JSON value: numpy scalars as Python ones, missing values as null."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def ratchet_body(frame) -> bytes:
    data = [[plain(v) for v in row] for row in frame.itertuples(index=False)]
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": data}}).encode()


def mlserver_body(frame) -> bytes:
    """A V2 inference request as MLServer's PandasCodec writes it: one input per column, pandas content type."""
    import pandas as pd

    inputs = []
    for name in frame.columns:
        column = frame[name]
        values = [plain(v) for v in column]
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            spec = {"datatype": "FP64", "data": [np.nan if v is None else float(v) for v in values]}
            spec["data"] = [None if np.isnan(v) else v for v in spec["data"]]
        else:
            spec = {"datatype": "BYTES", "data": values, "parameters": {"content_type": "str"}}
        inputs.append({"name": name, "shape": [len(frame), 1], **spec})
    request = {"parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": [{"name": "predict_proba"}]}
    return json.dumps(request).encode()


def ratchet_proba(answer: dict) -> np.ndarray:
    return np.asarray(answer["probabilities"], dtype="float64")


def mlserver_proba(answer: dict) -> np.ndarray:
    [output] = answer["outputs"]
    return np.asarray(output["data"], dtype="float64").reshape(output["shape"])


# Servers


class Served:
    """A server process on 127.0.0.1, stopped by its PID."""

    def __init__(
        self, name: str, command: list[str], port: int, paths: tuple[str, str, str], cwd: Path, log: Path, env=None
    ):
        self.name, self.port = name, port
        self.path, ready, self.health = paths  # predict, readiness, liveness
        self.log = log
        env = {**os.environ, **(env or {})}
        with log.open("w") as out:
            self.process = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + STARTUP_DEADLINE
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"{name} exited with {self.process.returncode}:\n{log.read_text()}")
            try:
                if request(self.port, "GET", ready, None)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)  # polling for readiness, bounded by the deadline
        self.stop()
        sys.exit(f"{name} did not become ready within {STARTUP_DEADLINE} s:\n{log.read_text()}")

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark of resident memory, summed over the process and its children."""
        import psutil

        root = psutil.Process(self.process.pid)
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except FileNotFoundError:
                continue
        return total / 1024

    def cpu_seconds(self) -> float:
        """User and system CPU time used so far by the process and its children."""
        import psutil

        root = psutil.Process(self.process.pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def request(port: int, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        headers = {"content-type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start_ratchet(model: Path, work: Path, workers: int) -> Served:
    port = free_port()
    command = [str(RATCHET_PYTHON), "-m", "pipeline.serve", "--model", str(model), "--port", str(port)]
    command += ["--workers", str(workers)]
    return Served("ratchet", command, port, ("/predict", "/readyz", "/healthz"), ROOT, work / "ratchet.log")


def start_mlserver(model_path: Path, work: Path) -> Served:
    """MLServer on 127.0.0.1 with the model exported by joblib (for this peer only), its defaults otherwise."""
    import joblib

    from pipeline.model_store import load_model

    repository = work / "mlserver"
    (repository / "model").mkdir(parents=True)
    joblib.dump(load_model(model_path), repository / "model" / "model.joblib")
    settings = {
        "model_settings": {
            "name": "model",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib"},
        },
        "model_name": "model",
    }
    (repository / "model" / "model-settings.json").write_text(json.dumps(settings["model_settings"]))
    port = free_port()
    server_settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "debug": False,  # no access log, as Ratchet's app
    }
    (repository / "settings.json").write_text(json.dumps(server_settings))
    command = [str(MLSERVER_PYTHON.parent / "mlserver"), "start", str(repository)]
    # The same native threads per prediction as Ratchet's app runs with (one, unless OMP_NUM_THREADS says).
    env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    paths = ("/v2/models/model/infer", "/v2/models/model/ready", "/v2/health/live")
    return Served("mlserver", command, port, paths, repository, work / "mlserver.log", env)


# Load


def closed_loop(port: int, path: str, body: bytes | None, clients: int, total: int) -> dict:
    """`clients` threads on keep-alive connections send `total` requests between them; latencies in seconds."""
    shares = [total // clients + (1 if i < total % clients else 0) for i in range(clients)]
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    barrier = threading.Barrier(clients + 1)
    headers = {"content-type": "application/json"} if body is not None else {}
    method = "POST" if body is not None else "GET"

    def client(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.connect()
        mine = latencies[i]
        barrier.wait()
        try:
            for _ in range(shares[i]):
                started = time.perf_counter()
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                if response.status != 200:
                    errors.append(f"status {response.status}")
                    return
        except OSError as error:
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        sys.exit(f"requests failed on port {port}: {errors[:3]}")
    return {"seconds": seconds, "latencies": [x for part in latencies for x in part]}


def measure(runs: dict, key: tuple, served: Served, body: bytes | None, clients: int, total: int) -> None:
    """One closed-loop run, pooled into `runs[key]` with the server's CPU time."""
    cpu = served.cpu_seconds()
    run = closed_loop(served.port, served.path if body is not None else served.health, body, clients, total)
    pooled = runs.setdefault(key, {"seconds": 0.0, "latencies": [], "cpu_seconds": 0.0})
    pooled["cpu_seconds"] += served.cpu_seconds() - cpu
    pooled["seconds"] += run["seconds"]
    pooled["latencies"] += run["latencies"]


def floor_latencies(model, frame, calls: int) -> tuple[list[float], float]:
    """Each call's latency, and the CPU seconds of all of them (this process's threads included)."""
    out = []
    cpu = time.process_time()
    for _ in range(calls):
        started = time.perf_counter()
        model.predict_proba(frame)
        out.append(time.perf_counter() - started)
    return out, time.process_time() - cpu


def summary(latencies: list[float], seconds: float | None = None) -> dict:
    values = np.asarray(latencies) * 1000
    throughput = len(values) / seconds if seconds else 1000 / values.mean()
    return {
        "requests": len(values),
        "throughput_rps": throughput,
        "p50_ms": float(np.percentile(values, 50)),
        "p99_ms": float(np.percentile(values, 99)),
        "mean_ms": float(values.mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(ROOT / "models/model.skops"))
    parser.add_argument("--requests", type=int, default=2000, help="single-row requests per server, level and round")
    parser.add_argument("--batch-requests", type=int, default=400, help="100-row requests per server, level and round")
    parser.add_argument("--batch-size", type=int, default=100, help="rows in the batch payload")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="closed-loop concurrency levels")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (servers alternate the lead)")
    parser.add_argument(
        "--workers", type=int, default=2, help="Ratchet's server processes (MLServer's default is two: HTTP and model)"
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/serving.json"))
    args = parser.parse_args(argv)
    for python in (RATCHET_PYTHON, MLSERVER_PYTHON):
        if not python.exists():
            sys.exit(f"{python} is missing: run `make venv mlserver-env` first")
    if not Path(args.model).is_file():
        sys.exit(f"{args.model}: model file not found; run `make run` (or pass --model PATH)")

    from threadpoolctl import threadpool_limits

    from pipeline.checks import check_frame
    from pipeline.model_store import load_model

    model = load_model(args.model)
    frame, contract, features = benchmark_rows(args.batch_size)
    payloads = {}
    for rows in (1, args.batch_size):
        part = frame.head(rows)
        _, validated = check_frame(part, contract, "rows", labels_optional=True)
        payloads[rows] = {
            "X": validated[features.columns],
            "ratchet": ratchet_body(part),
            "mlserver": mlserver_body(part),
        }
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_before": os.getloadavg()},
        "model": args.model,
        "clients": args.clients,
        "rounds": args.rounds,
        "ratchet_workers": args.workers,
    }
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        servers = {}
        try:
            servers["ratchet"] = start_ratchet(Path(args.model), work, args.workers)
            servers["mlserver"] = start_mlserver(Path(args.model), work)
            # The same answers as the floor, then warm-up.
            for rows, payload in payloads.items():
                expected = model.predict_proba(payload["X"])
                for name, served in servers.items():
                    status, body = request(served.port, "POST", served.path, payload[name])
                    if status != 200:
                        sys.exit(f"{name} answered {status}: {body[:500]!r}")
                    answer = json.loads(body)
                    got = ratchet_proba(answer) if name == "ratchet" else mlserver_proba(answer)
                    if not np.allclose(got, expected, rtol=1e-9, atol=1e-12):
                        sys.exit(f"{name}'s probabilities differ from predict_proba's for {rows} row(s)")
                    closed_loop(served.port, served.path, payload[name], 2, 100)
            runs: dict = {}
            floors: dict = {}
            for round_ in range(args.rounds):
                order = SERVERS if round_ % 2 == 0 else SERVERS[::-1]
                for rows, payload in payloads.items():
                    total = args.requests if rows == 1 else args.batch_requests
                    for threads, label in ((None, "default threads"), (1, "1 thread")):
                        with threadpool_limits(limits=threads):
                            calls, cpu = floor_latencies(model, payload["X"], max(total // 2, 50))
                        floor = floors.setdefault((rows, label), {"latencies": [], "cpu_seconds": 0.0})
                        floor["latencies"] += calls
                        floor["cpu_seconds"] += cpu
                    for clients in args.clients:
                        for name in order:
                            measure(runs, (name, rows, clients), servers[name], payload[name], clients, total)
                for name in order:  # the HTTP round trip alone: each server's liveness endpoint
                    measure(runs, (f"{name} {servers[name].health}", 0, 1), servers[name], None, 1, args.requests)
            results["peak_rss_mb"] = {name: served.peak_rss_mb() for name, served in servers.items()}
        finally:
            for served in servers.values():
                served.stop()
    results["load_after"] = os.getloadavg()
    table = []
    for (rows, label), floor in floors.items():
        row = {"server": f"predict_proba ({label})", "rows": rows, "clients": 1, **summary(floor["latencies"])}
        table.append({**row, "cpu_ms": floor["cpu_seconds"] * 1000 / len(floor["latencies"])})
    for (name, rows, clients), run in runs.items():
        row = {"server": name, "rows": rows, "clients": clients, **summary(run["latencies"], run["seconds"])}
        table.append({**row, "cpu_ms": run["cpu_seconds"] * 1000 / len(run["latencies"])})
    table.sort(key=lambda r: (r["rows"], r["clients"], r["server"]))
    results["table"] = table
    results["ratios"] = ratios(table, payloads)
    print_report(results)
    write_results(results, args.out)
    return 0


def ratios(table: list[dict], payloads: dict) -> dict:
    find = {(r["server"], r["rows"], r["clients"]): r for r in table}
    out: dict = {}
    for rows in payloads:
        floor = min(
            (r for r in table if r["rows"] == rows and r["server"].startswith("predict_proba")),
            key=lambda r: r["p99_ms"],
        )
        solo = find[("ratchet", rows, 1)]
        out[f"{rows}_rows"] = {
            "at_equal_p99": budgets(table, rows),
            "floor": floor["server"],
            "floor_p99_ms": floor["p99_ms"],
            "ratchet_p99_over_floor_ms": solo["p99_ms"] - floor["p99_ms"],
            "ratchet_p50_over_floor_ms": solo["p50_ms"] - floor["p50_ms"],
            "by_clients": {
                clients: {
                    "throughput_ratio": find[("ratchet", rows, clients)]["throughput_rps"]
                    / find[("mlserver", rows, clients)]["throughput_rps"],
                    "p99_ratio": find[("ratchet", rows, clients)]["p99_ms"]
                    / find[("mlserver", rows, clients)]["p99_ms"],
                    "mlserver_rps_at_ratchet_p99": at_p99(
                        [r for r in table if r["server"] == "mlserver" and r["rows"] == rows],
                        find[("ratchet", rows, clients)]["p99_ms"],
                    ),
                }
                for (server, r, clients) in find
                if server == "ratchet" and r == rows
            },
        }
    return out


def budgets(table: list[dict], rows: int) -> list[dict]:
    """For each p99 either server reached: the best throughput each gets without exceeding it."""
    curves = {name: [r for r in table if r["server"] == name and r["rows"] == rows] for name in SERVERS}
    levels = sorted({r["p99_ms"] for curve in curves.values() for r in curve})
    return [{"p99_ms": p99, **{name: at_p99(curve, p99) for name, curve in curves.items()}} for p99 in levels]


def at_p99(curve: list[dict], p99_ms: float) -> float:
    """A server's throughput at a given p99, interpolated between its levels of concurrency.

    0 below its lowest p99 (it cannot answer that fast); above its highest, its best throughput.
    """
    points = sorted((r["p99_ms"], r["throughput_rps"]) for r in curve)
    if not points or p99_ms < points[0][0]:
        return 0.0
    best = max(t for p, t in points if p <= p99_ms)
    for (p_low, t_low), (p_high, t_high) in pairwise(points):
        if p_low <= p99_ms <= p_high:
            best = max(best, t_low + (t_high - t_low) * (p99_ms - p_low) / max(p_high - p_low, 1e-9))
    return best


def print_report(results: dict) -> None:
    print("| rows | server | clients | req/s | p50 ms | p99 ms | CPU ms/req |\n|---|---|---|---|---|---|---|")
    for r in results["table"]:
        print(
            f"| {r['rows']} | {r['server']} | {r['clients']} | {r['throughput_rps']:.0f} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_ms']:.2f} |"
        )
    print()
    for key, ratio in results["ratios"].items():
        print(
            f"{key}: Ratchet p99 at 1 client is {ratio['ratchet_p99_over_floor_ms']:+.2f} ms over the floor "
            f"({ratio['floor']}, p99 {ratio['floor_p99_ms']:.2f} ms); p50 {ratio['ratchet_p50_over_floor_ms']:+.2f} ms"
        )
        for clients, r in ratio["by_clients"].items():
            print(
                f"  {clients} client(s): throughput {r['throughput_ratio']:.2f}x MLServer's, "
                f"p99 {r['p99_ratio']:.2f}x MLServer's; MLServer at Ratchet's p99: "
                f"{r['mlserver_rps_at_ratchet_p99']:.0f} req/s"
            )
    for key, ratio in results["ratios"].items():
        print(f"\n{key}, throughput at equal p99 (the best each server reaches without exceeding it):")
        print("| p99 budget ms | ratchet req/s | mlserver req/s |\n|---|---|---|")
        for level in ratio["at_equal_p99"]:
            print(f"| {level['p99_ms']:.1f} | {level['ratchet']:.0f} | {level['mlserver']:.0f} |")
    peaks = results["peak_rss_mb"]
    print("peak RSS MB: " + ", ".join(f"{name} {mb:.0f}" for name, mb in peaks.items()))
    print(f"load average before {results['machine']['load_before']}, after {results['load_after']}")


if __name__ == "__main__":
    raise SystemExit(main())
