"""The benchmarks themselves must keep working: small runs of each, both tools or servers, identical verdicts.

Only that it runs and agrees is checked here; its timings belong in
docs/benchmarks.md, never in an assertion.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def run_benchmark(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_serving_benchmark_runs_both_servers_and_the_floor(tmp_path, fitted):
    out = tmp_path / "serving.json"
    done = run_benchmark(
        "serving_benchmark.py",
        *("--model", str(fitted[0])),
        *("--requests", "20", "--batch-requests", "4", "--batch-size", "5", "--clients", "1", "2", "--rounds", "1"),
        *("--out", str(out)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    measured = {(row["server"], row["rows"], row["clients"]) for row in results["table"]}
    for server in ("ratchet", "mlserver"):
        assert {(server, 1, 1), (server, 1, 2), (server, 5, 1), (server, 5, 2)} <= measured
    assert ("predict_proba (1 thread)", 1, 1) in measured
    assert set(results["peak_rss_mb"]) == {"ratchet", "mlserver"}
    assert "| 1 | ratchet | 1 |" in done.stdout


def test_batch_benchmark_scores_a_file_and_measures_the_floor(tmp_path, fitted):
    out = tmp_path / "batch.json"
    done = run_benchmark(
        "batch_benchmark.py",
        *("--rows", "3000", "--model", str(fitted[0])),
        *("--data-dir", str(tmp_path / "data"), "--out", str(out)),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [size] = json.loads(out.read_text())["sizes"]
    assert size["rows"] == 3000
    assert size["predict_peak_rss_mb"] > 0
    assert size["bare_peak_rss_mb"] > 0
    assert (tmp_path / "data" / "batch-3000.parquet").is_file()
    assert "| 3,000 |" in done.stdout


def test_scale_benchmark_runs_the_pipeline_and_the_floor(tmp_path):
    """Own data in a copy of the project, `dvc repro` stage by stage and the floor; both reach the same answers."""
    out = tmp_path / "scale.json"
    done = run_benchmark(
        "scale_benchmark.py", "--rows", "1000", "--data-dir", str(tmp_path / "data"), "--out", str(out)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [size] = json.loads(out.read_text())["sizes"]
    assert size["rows"] == 1000
    assert size["floor"]["rows"] == {"reference": 1000, "current": 200, "train": 750, "test": 250}
    stages = [stage["stage"] for stage in size["repro"]["stages"]]
    assert {"validate", "split", "train", "evaluate", "predict", "drift"} <= set(stages)
    assert "ingest" not in stages  # the README's own-data steps removed it
    assert all(stage["peak_rss_mb"] > 0 for stage in size["repro"]["stages"])
    for name, (pipeline, floor) in size["agree"].items():  # the same model and statistics: the same answers
        assert pipeline == pytest.approx(floor), name
    assert size["reports"]["total_bytes"] > 0
    assert "| 1,000 |" in done.stdout
    assert "| validate |" in done.stdout


def test_dask_benchmark_scores_on_a_local_cluster_and_in_one_process_alike(tmp_path):
    out = tmp_path / "dask.json"
    done = run_benchmark(
        "dask_benchmark.py", "--rows", "2000", "--partitions", "2", "--data-dir", str(tmp_path), "--out", str(out)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads(out.read_text())
    assert results["identical"] is True
    assert results["single"]["peak_rss_mb"] > 0
    assert results["cluster"]["peak_rss_mb"] > 0
    assert "predictions identical: True" in done.stdout
