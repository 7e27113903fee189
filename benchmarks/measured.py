"""What every benchmark does around its runs: a process timed to its end with its peak memory, and the results file.

Shared by the benchmark scripts (run as `python benchmarks/<name>.py`, so this
directory is on their import path).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_measured(command: list[str], threads: str | None = None, what: str | None = None) -> dict:
    """Run `command` to its end from the project root: wall seconds, peak RSS in MB (the kernel's) and its stdout.

    `threads` sets OMP_NUM_THREADS for it. Its stdout goes to a file, so a
    chatty process never blocks on a full pipe; stderr passes through. A
    failure stops the benchmark, naming `what` (default: the command).
    """
    env = {**os.environ, **({"OMP_NUM_THREADS": threads} if threads is not None else {})}
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, text=True, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        stdout = out.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"{what or command} failed with exit status {code}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}  # ru_maxrss: KiB on Linux


def write_results(results: dict, path: str | Path) -> Path:
    """The run's results as JSON at `path` (its directory made), and where they went, printed."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {out}")
    return out
