"""Several server processes on one port (`--workers`): one model load, shared counts, one intact log.

The supervisor forks the workers after loading the model; prometheus-client's
multiprocess mode keeps each worker's counts in files, so /metrics adds up
every worker's requests, a replaced worker's included. Each worker appends
its log lines with one write per batch, so lines from two workers never mix.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 60.0  # seconds: bounds for waiting on processes, not timing assertions


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (Linux's /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return sorted(found)


def alive(pid: int) -> bool:
    """Running: its /proc entry exists and it is not a zombie waiting for a parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_for(condition, what: str):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def requests_counted(server, expected: int) -> float:
    """The count of answered /predict requests, once it reaches `expected` (or the deadline passes).

    A request is counted just after its answer is sent, so the last answers' counts may land a
    moment after the client has them.
    """

    def count() -> float:
        text = server.get("/metrics")[1].decode()
        found = re.search(r'ratchet_requests_total\{endpoint="/predict",status="200"\} (\S+)', text)
        return float(found.group(1)) if found else 0.0

    deadline = time.monotonic() + DEADLINE
    while (counted := count()) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return counted


def post_many(server, body: bytes, clients: int, each: int) -> list[int]:
    """`clients` keep-alive connections at once, `each` requests on each: the statuses."""
    host, port = server.url.removeprefix("http://").split(":")
    statuses: list[int] = []

    def client() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        for _ in range(each):
            connection.request("POST", "/predict", body, {"content-type": "application/json"})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    return statuses


@pytest.fixture
def body(fitted) -> bytes:
    rows = fitted[1].head(3).reset_index(drop=True)
    return json.dumps({"dataframe_records": json.loads(rows.to_json(orient="records"))}).encode()


def test_counts_survive_every_worker_being_replaced_and_a_killed_supervisor_takes_them_along(
    servers, fitted, tmp_path, body
):
    server = servers.start(fitted[0], tmp_path / "log.jsonl", "--workers", "2")
    supervisor = server.process.pid
    first = wait_for(lambda: len(children(supervisor)) == 2 and children(supervisor), "two workers")

    assert post_many(server, body, clients=4, each=5) == [200] * 20
    assert requests_counted(server, 20) == 20
    time.sleep(5.5)  # a worker that dies in its first 5 s is not replaced (it would die again): outlive that

    for pid in first:  # one at a time, so the port is always served
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda gone=pid: gone not in children(supervisor) and len(children(supervisor)) == 2, "a new worker")
    assert not set(children(supervisor)) & set(first)

    assert post_many(server, body, clients=2, each=3) == [200] * 6
    assert requests_counted(server, 26) == 26  # the dead workers' 20 are still counted

    workers = children(supervisor)
    servers.running.remove(server)
    server.process.kill()  # no chance to forward anything: the workers must go by themselves
    output, _ = server.process.communicate(timeout=DEADLINE)
    assert f"worker {first[0]} stopped" in output  # the supervisor said which worker it replaced
    wait_for(lambda: not any(alive(pid) for pid in workers), "the workers to go")


def test_sigterm_stops_every_worker_and_the_log_is_whole(servers, fitted, tmp_path, body):
    log = tmp_path / "log.jsonl"
    server = servers.start(fitted[0], log, "--workers", "2")
    workers = wait_for(lambda: len(children(server.process.pid)) == 2 and children(server.process.pid), "workers")

    assert post_many(server, body, clients=6, each=10) == [200] * 60
    output = servers.stop(server)  # SIGTERM to the supervisor only

    assert server.process.returncode == 0, output
    assert "Traceback" not in output, output
    assert not any(alive(pid) for pid in workers)
    lines = log.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole: none cut by another worker's
    assert len(records) == 60 * 3
    assert sorted({(r["request_id"], r["row"]) for r in records}) == sorted(
        (r["request_id"], r["row"]) for r in records
    )


@pytest.mark.parametrize("workers", ["0", "65"])
def test_a_worker_count_out_of_range_is_a_clear_error(fitted, workers):
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.serve", "--model", str(fitted[0]), "--workers", workers],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "--workers must be between 1 and 64" in done.stderr
    assert "Traceback" not in done.stderr
