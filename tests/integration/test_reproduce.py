"""`dvc repro` from a fresh copy: every output, sane metrics, an up-to-date pipeline and byte-identical results."""

from __future__ import annotations

import json
import math
import os

import pytest

from pipeline.metrics import LOWER_IS_BETTER, METRICS

pytestmark = pytest.mark.integration


def test_repro_runs_every_stage_with_cached_outputs(reproduced):
    """A fresh copy has no DVC cache, so every stage whose outputs live only in the cache must really run."""
    ws = reproduced.workspace
    cached = set(ws.cached_outputs())
    producers = {stage for (stage, kind, path) in ws.lock_md5s() if kind == "outs" and path in cached}
    assert {"train"} | ({"ingest"} & set(ws.stages())) <= producers
    assert producers <= set(reproduced.repro.stages_run), reproduced.repro.output


def _stage_output_paths(ws) -> dict[str, str]:
    """The params.yaml paths that some stage in dvc.yaml declares as (or around) an output."""
    declared = set().union(*ws.outputs().values())
    return {key: path for key, path in ws.params()["paths"].items() if any(ws.overlaps(path, d) for d in declared)}


def test_every_output_path_in_params_exists_after_repro(reproduced):
    ws = reproduced.workspace
    paths = ws.params()["paths"]
    outputs = _stage_output_paths(ws)
    produced = {"train", "test", "model", "eval_dir"} | (
        {"raw_reference", "raw_current"} if "ingest" in ws.stages() else set()
    )
    assert produced <= set(outputs)
    missing = {key: path for key, path in outputs.items() if not (ws.path / path).exists()}
    assert not missing, f"params.yaml paths missing after dvc repro: {missing}"
    eval_dir = ws.path / paths["eval_dir"]
    assert (eval_dir / "metrics.json").is_file()
    assert any((eval_dir / "plots").rglob("*.json"))
    assert (ws.path / paths["model"]).stat().st_size > 0


# Paths of production's files: the servers' logs, late labels kept for retraining and the monitor's
# report. `make monitoring` and the retrain workflow write them (tests/integration/production), not `make run`.
PRODUCTION_PATHS = {"prediction_logs", "labelled_rows", "monitoring_report", "monitoring_summary", "monitoring_html"}


def test_make_run_leaves_every_path_in_params(workspace):
    """Paths no stage declares (the gate's verdicts) come from the gate, which `make run` runs after `dvc repro`."""
    paths = workspace.params()["paths"]
    assert set(paths) >= PRODUCTION_PATHS
    others = {key: path for key, path in paths.items() if key not in _stage_output_paths(workspace)}
    for path in others.values():
        assert workspace.git("check-ignore", "-q", path, check=False).returncode == 0, f"{path} is not git-ignored"
    for key in ("gates_report", "gates_summary"):
        (workspace.path / paths[key]).unlink(missing_ok=True)
    workspace.python("-m", "pipeline.gate")  # what `make run` runs after `dvc repro`
    missing = {
        key: path for key, path in paths.items() if key not in PRODUCTION_PATHS and not (workspace.path / path).exists()
    }
    assert not missing, f"params.yaml paths missing after dvc repro and the gate: {missing}"
    assert workspace.porcelain() == ""


def test_metrics_are_the_tasks_and_in_range(reproduced, features):
    ws = reproduced.workspace
    eval_dir = ws.path / ws.params()["paths"]["eval_dir"]
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    assert set(metrics) == set(METRICS[features.task])
    assert json.loads((eval_dir / "task.json").read_text()) == json.loads(json.dumps(features.identity()))
    for name, value in metrics.items():
        assert isinstance(value, int | float), (name, value)
        assert not isinstance(value, bool), (name, value)
        assert math.isfinite(value), (name, value)
        if name in LOWER_IS_BETTER:
            assert value >= 0, (name, value)
        elif name != "r2":
            assert 0 <= value <= 1, (name, value)
        else:
            assert value <= 1, (name, value)


def test_dvc_status_is_up_to_date(reproduced):
    result = reproduced.workspace.dvc("status")
    assert "Data and pipelines are up to date." in result.stdout, result.output
    assert reproduced.workspace.dvc("status", "--json").stdout.strip() == "{}"


def test_repro_reproduces_the_committed_lock_and_reports(reproduced):
    """Determinism across machines: a fresh `dvc repro` rewrites neither dvc.lock nor the committed reports.

    A failure here means either the committed dvc.lock is stale (code or params changed
    without re-running `dvc repro`), or a stage's output is not byte-deterministic.
    """
    if "A  dvc.lock" in reproduced.porcelain_after_repro:
        pytest.skip("no results committed yet (a new project before its first `make run`): nothing to compare")
    assert reproduced.porcelain_after_repro == "", (
        "dvc repro changed committed files:\n" + reproduced.porcelain_after_repro + reproduced.diff_after_repro
    )


def test_forced_repro_is_byte_identical(workspace, reproduced):
    """`dvc repro -f` rewrites nothing. Once results are committed, the fresh-copy test above proves the same
    (every stage ran from scratch and matched the committed lock byte for byte), so this runs only before."""
    if "A  dvc.lock" not in reproduced.porcelain_after_repro:
        pytest.skip("covered by test_repro_reproduces_the_committed_lock_and_reports: a full run matched it")
    before = workspace.lock_md5s()
    result = workspace.dvc("repro", "-f")
    assert set(result.stages_run) == set(workspace.stages()), result.output
    assert workspace.porcelain() == "", workspace.git("diff").stdout
    assert workspace.lock_md5s() == before


def test_model_bytes_do_not_depend_on_the_thread_count(workspace):
    """`dvc repro -f` on a machine with another core count must leave the same model hash."""
    model = workspace.params()["paths"]["model"]
    expected = workspace.locked_out_md5(model)
    # More threads than the session's run can have used, whatever this machine's default.
    threads = (os.cpu_count() or 1) + 1
    if os.environ.get("OMP_NUM_THREADS") == str(threads):
        threads += 1
    workspace.dvc("repro", "-f", "-s", "train", env={"OMP_NUM_THREADS": str(threads)})
    assert workspace.md5(model) == expected
