"""A canary release for real: registry stages, one server with prod and a canary, the monitor's verdict applied.

In a copy of the reproduced project: the pipeline's model is registered and
made prod. A deliberately worse model (a gradient boosting of one tiny step,
which predicts about the prior) is trained, registered and given the stage
`canary`. The real server runs `--stage prod --canary-stage canary` and the
current batch is replayed to it, its labels arriving later; `pipeline.monitor
--canary --apply` must withdraw the canary (a GTO tag, exit 4). Then a good
canary (prod's own model, registered anew) runs in shadow beside prod and,
with `canary.auto_promote`, the monitor promotes it: prod now holds it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPLAY_ROWS = 400  # a bounded replay, one row per request: enough requests for the canary's share to be judged
STARTUP_DEADLINE = 90.0  # seconds; a guard against a server that never answers, not a timing assertion


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def set_params(ws, **sections) -> None:
    path = ws.path / "params.yaml"
    text = path.read_text(encoding="utf-8")
    params = yaml.safe_load(text)
    for dotted, value in sections.items():
        *parents, key = dotted.split("__")
        node = params
        for parent in parents:
            node = node[parent]
        node[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def serve_and_replay(ws, replay_file: Path, log: Path, labels: Path, mode: str = "split") -> dict:
    """Serve prod and the canary, replay the rows, stop the server: what /readyz said."""
    port = free_port()
    server = subprocess.Popen(
        [
            *("python", "-m", "pipeline.serve", "--port", str(port), "--stage", "prod"),
            *("--canary-stage", "canary", "--canary-share", "0.5", "--canary-mode", mode),
            *("--prediction-log", str(log)),
        ],
        cwd=ws.path,
        env=ws.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        ws.python(
            *("-m", "pipeline.replay", str(replay_file), "--url", f"http://127.0.0.1:{port}"),
            *("--wait", str(STARTUP_DEADLINE), "--labels-out", str(labels), "--rows-per-request", "1"),
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=30) as response:
            ready = json.loads(response.read())
    finally:
        server.terminate()
        try:
            output, _ = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
    assert "Traceback" not in output, output
    return ready


def judge(ws, log: Path, labels: Path) -> tuple:
    """`pipeline.monitor LOG --labels LABELS --canary --apply`: its result and the report it wrote."""
    judged = ws.python("-m", "pipeline.monitor", str(log), "--labels", str(labels), "--canary", "--apply", check=False)
    return judged, json.loads((ws.path / ws.params()["paths"]["monitoring_report"]).read_text())


def holder(ws, stage: str) -> str | None:
    """The version a registry stage holds now, as GTO reads the tags (None: nobody)."""
    shown = json.loads(ws.run("gto", "show", "--json").stdout)
    return shown["model"]["stage"].get(stage)


def test_a_worse_canary_is_withdrawn_and_a_good_one_promoted(workspace, make, features, tmp_path):
    if not features.id:
        pytest.skip("late labels join the logs on the contract's id column, and this contract has none")
    ws = workspace.single_threaded()
    paths = ws.params()["paths"]
    import pandas as pd

    current = pd.read_parquet(ws.path / paths["validated_current"])
    if features.target not in current.columns or current[features.target].isna().all():
        pytest.skip("the current batch has no labels to judge the canary by")
    replay_file = tmp_path / "replay.parquet"
    current.head(REPLAY_ROWS).to_parquet(replay_file, index=False)
    ws.set_remote(tmp_path / "remote")
    ws.dvc("push")
    make("register", "VERSION=v1.0.0")
    make("promote", "VERSION=v1.0.0")

    # A worse canary: one boosting step of a tiny learning rate predicts about the prior.
    original = (ws.path / "params.yaml").read_text(encoding="utf-8")
    set_params(
        ws,
        train__model="hist_gradient_boosting",
        train__hist_gradient_boosting__max_iter=1,
        train__hist_gradient_boosting__learning_rate=1e-6,
    )
    ws.dvc("repro", "--single-item", "train")
    ws.commit("A worse model, for the canary")
    ws.dvc("push")
    make("register", "VERSION=v1.1.0")
    make("promote", "VERSION=v1.1.0", "STAGE=canary")
    assert holder(ws, "canary") == "v1.1.0"

    # Few requests decide, for a test: the thresholds themselves are the defaults.
    set_params(ws, canary__min_requests=10, canary__promote_after_requests=10)
    logs = tmp_path / "logs"
    ready = serve_and_replay(ws, replay_file, logs / "worse.jsonl", tmp_path / "labels.csv")
    assert ready["model_version"] == "v1.0.0"
    assert ready["canary"] == {"model_version": "v1.1.0", "share": 0.5, "mode": "split"}
    judged, report = judge(ws, logs / "worse.jsonl", tmp_path / "labels.csv")
    prod_score = report["canary"]["prod"]
    assert judged.returncode == 4, judged.output
    assert report["canary"]["action"] == "rollback", report["canary"]
    assert any("balanced_accuracy" in reason or "r2" in reason for reason in report["canary"]["because"]), prod_score
    assert report["canary"]["withdrawn"] == ["v1.1.0"]
    assert holder(ws, "canary") is None
    assert holder(ws, "prod") == "v1.0.0"
    refused = ws.python("-m", "pipeline.serve", "--stage", "prod", "--canary-stage", "canary", check=False)
    assert refused.returncode == 1, refused.output
    assert "canary" in refused.stderr
    assert "Traceback" not in refused.output

    # A good canary: prod's own model, trained again from the original params and registered anew.
    (ws.path / "params.yaml").write_text(original, encoding="utf-8")
    ws.dvc("repro", "--single-item", "train")
    # The same model on both sides: their latency differs only by this shared machine's noise.
    set_params(
        ws,
        canary__min_requests=10,
        canary__promote_after_requests=10,
        canary__auto_promote=True,
        canary__max_latency_p99_ratio=1000,
    )
    ws.commit("The prod model again, as a canary")
    make("register", "VERSION=v1.2.0")
    make("promote", "VERSION=v1.2.0", "STAGE=canary")
    # In shadow: both models score every row, so the same model scores the same, with no sampling noise.
    ready = serve_and_replay(ws, replay_file, logs / "good.jsonl", tmp_path / "labels.csv", mode="shadow")
    assert ready["canary"] == {"model_version": "v1.2.0", "share": 0.5, "mode": "shadow"}
    judged, report = judge(ws, logs / "good.jsonl", tmp_path / "labels.csv")
    assert judged.returncode in (0, 3), judged.output  # 3: the window may also ask for a retrain; not the canary's
    assert report["canary"]["action"] == "promote", report["canary"]
    assert report["canary"]["promoted"] == ["v1.2.0"]
    assert holder(ws, "prod") == "v1.2.0"
