"""The serving tier: a model fitted on the project's contract, batch scoring, and the real HTTP server.

`served` starts `python -m pipeline.serve` as a user would, on a free port of
127.0.0.1, waits for /healthz within a deadline, and stops the process by its
PID when the module's tests are done. Columns to break in requests are read
from the contract, as in tests/unit/test_validate.py.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE = 60.0  # seconds; a guard against a server that never comes up, not a timing assertion


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict
    headers: dict


@dataclass(frozen=True)
class Server:
    url: str
    log: Path
    process: subprocess.Popen

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def post(self, path: str, payload: object = None, raw: bytes | None = None, headers: dict | None = None) -> Reply:
        data = raw if raw is not None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, headers={"content-type": "application/json", **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Reply(response.status, json.loads(response.read()), dict(response.headers))
        except urllib.error.HTTPError as error:
            return Reply(error.code, json.loads(error.read()), dict(error.headers))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, log: Path, *extra: str) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "pipeline.serve", "--port", str(port), "--model", str(model)]
    process = subprocess.Popen(
        [*command, "--prediction-log", str(log), *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", log, process)
    deadline = time.monotonic() + STARTUP_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}:\n{process.stdout.read()}")
        try:
            if server.get("/healthz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)  # polling for readiness, bounded by the deadline
    process.kill()
    raise AssertionError(f"the server did not answer /healthz within {STARTUP_DEADLINE} s")


def stop_server(server: Server) -> str:
    server.process.terminate()
    try:
        out, _ = server.process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        out, _ = server.process.communicate()
    return out


@pytest.fixture(scope="module", params=[1, 2], ids=["1-worker", "2-workers"])
def served(fitted, tmp_path_factory, request):
    """The server, in one process and with two forked workers (metrics and the log shared between them)."""
    model, _ = fitted
    log = tmp_path_factory.mktemp("logs") / "predictions.jsonl"
    limits = ("--max-request-bytes", "65536", "--max-rows", "500")
    server = start_server(model, log, *limits, "--workers", str(request.param))
    yield server
    output = stop_server(server)
    assert "Traceback" not in output, output


class Servers:
    """Servers a test starts (`start(model, log, *flags)`) and stops (`stop(server)`: its output)."""

    def __init__(self):
        self.running: list[Server] = []

    def start(self, model: Path, log: Path, *extra: str) -> Server:
        server = start_server(model, log, *extra)
        self.running.append(server)
        return server

    def stop(self, server: Server) -> str:
        self.running.remove(server)
        return stop_server(server)


@pytest.fixture
def servers():
    """A test's own servers, each stopped by its PID at the end if the test did not stop it."""
    started = Servers()
    yield started
    for server in list(started.running):
        started.stop(server)
