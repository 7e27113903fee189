"""The drift benchmark itself must keep working: a small run, both tools, identical verdicts.

Only that it runs and agrees is checked here; its timings belong in
docs/benchmarks.md, never in an assertion.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_runs_both_tools_and_agrees():
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/drift_benchmark.py"), "--rows", "3000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verdicts identical" in done.stdout
    assert "| 3,000 | ratchet |" in done.stdout
    assert "| 3,000 | evidently |" in done.stdout
