"""The Dask path gives one machine's answers: a real LocalCluster on 127.0.0.1, two workers, no dashboard.

The same partitioned data goes through each path twice, on the cluster and
here (no scheduler), and the results must be identical: predictions,
contract failures (a partition with a broken row, an id repeated in another
partition) and the drift report. The command lines run against the cluster's
address too, as a user would run them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipeline.checks import check_frame
from pipeline.distributed import Runner, check_partitions
from pipeline.drift import drift_partitions
from pipeline.drift_columns import feature_kinds, feature_report
from pipeline.model_store import save_model
from pipeline.predict import predict_partitions
from pipeline.synthetic import generate
from pipeline.train import fit_model

ROOT = Path(__file__).resolve().parents[2]
PARTS = 4


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed", reason="the `scale` extra (dask, distributed) is not installed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
    ) as local:
        yield local.scheduler_address


def write_parts(frame: pd.DataFrame, directory: Path, parts: int = PARTS) -> Path:
    directory.mkdir(parents=True)
    size = -(-len(frame) // parts)
    for i in range(parts):
        frame.iloc[i * size : (i + 1) * size].to_parquet(directory / f"part-{i:05d}.parquet", index=False)
    return directory


@pytest.fixture(scope="module")
def data(contract, features, params, tmp_path_factory):
    base = tmp_path_factory.mktemp("scale")
    frame = generate(1200, seed=11, contract=contract)
    reference = check_frame(frame.iloc[:800], contract, "reference")[1]
    current = frame.iloc[800:].drop(columns=[features.target]).reset_index(drop=True)
    model = base / "model.skops"
    save_model(fit_model(reference, features, params.train), model)
    return {
        "model": model,
        "reference": write_parts(reference, base / "reference"),
        "current": write_parts(current, base / "current"),
        "base": base,
    }


def test_predictions_are_identical_on_the_cluster_and_here(cluster, data, contract, tmp_path):
    raw = data["model"].read_bytes()
    with Runner(cluster) as remote:
        remote_rows = predict_partitions(remote, data["current"], tmp_path / "remote", raw, "v-test", contract)
    with Runner(None) as local:
        local_rows = predict_partitions(local, data["current"], tmp_path / "local", raw, "v-test", contract)

    assert remote_rows == local_rows == 400
    remote_files = sorted(p.name for p in (tmp_path / "remote").glob("*.parquet"))
    assert remote_files == [f"part-{i:05d}.parquet" for i in range(PARTS)]
    for name in remote_files:
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "remote" / name), pd.read_parquet(tmp_path / "local" / name)
        )


def test_contract_failures_are_identical_and_name_rows_of_the_whole_dataset(
    cluster, data, contract, features, tmp_path
):
    frame = pd.concat([pd.read_parquet(p) for p in sorted(data["current"].glob("*.parquet"))], ignore_index=True)
    broken = frame.copy()
    broken["not_in_the_contract"] = 1
    if features.id:
        broken.loc[350, features.id] = broken.loc[5, features.id]  # the same id in the first and the last part
    directory = write_parts(broken, tmp_path / "broken")

    with Runner(cluster) as remote:
        on_cluster = check_partitions(remote, directory, contract, labels_optional=True)
    with Runner(None) as local:
        here = check_partitions(local, directory, contract, labels_optional=True)

    assert on_cluster == here
    checks = {(f.column, f.check) for f in here.failures}
    assert ("not_in_the_contract", "unexpected column (not in the contract)") in checks
    if features.id:
        [duplicate] = [f for f in here.failures if f.check == "field_uniqueness (across batches)"]
        assert duplicate.rows == [5, 350]
    assert here.rows == len(frame)


def test_drift_reports_are_identical_to_the_single_machine_report(cluster, data, features, params):
    kinds = feature_kinds(features)
    with Runner(cluster) as remote:
        on_cluster = drift_partitions(remote, data["reference"], data["current"], kinds, params.drift)
    reference = pd.concat([pd.read_parquet(p) for p in sorted(data["reference"].glob("*.parquet"))], ignore_index=True)
    current = pd.concat([pd.read_parquet(p) for p in sorted(data["current"].glob("*.parquet"))], ignore_index=True)
    single = feature_report(reference, current, kinds, params.drift)

    assert json.dumps(on_cluster, sort_keys=True) == json.dumps(single, sort_keys=True)


def cli(*args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_command_lines_take_a_scheduler_address(cluster, data, tmp_path):
    out = tmp_path / "scored"
    scored = cli("pipeline.predict", data["current"], "-o", out, "--model", data["model"], "--scheduler", cluster)
    assert scored.returncode == 0, scored.stderr
    assert "400 rows scored" in scored.stderr
    assert len(list(out.glob("*.parquet"))) == PARTS

    checked = cli("pipeline.validate", "--unlabelled", data["current"], env={"DASK_SCHEDULER_ADDRESS": cluster})
    assert checked.returncode == 0, checked.stderr
    assert "400 rows in 1 file(s) passed the data contract" in checked.stderr

    drifted = cli(
        "pipeline.drift", data["reference"], data["current"], "--out", tmp_path / "drift", "--scheduler", cluster
    )
    assert drifted.returncode == 0, drifted.stderr
    assert json.loads((tmp_path / "drift" / "drift.json").read_text())["current_rows"] == 400


def test_an_unreachable_scheduler_is_a_one_line_error(data, tmp_path):
    quick = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}  # Dask's own setting: 30 s by default
    done = cli("pipeline.validate", data["current"], "--scheduler", "tcp://127.0.0.1:9", env=quick)
    assert done.returncode == 1
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr
