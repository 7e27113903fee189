"""The retrain workflow, run for real up to GitHub's API: the decision, the data update, the repro, the PR text.

A copy of the reproduced project becomes an own-data project (the ingest
stage removed, the raw files added with DVC), scores its current batch with
`pipeline.predict --prediction-log` (the logs), writes the batch's labels
(the late ground truth), and tracks both with DVC in a local remote. Then the
`retrain` job's shell steps run in a fresh clone as GitHub runs them (`bash
-e`, its env, GITHUB_OUTPUT, the secret as .dvc/config.local), with a manual
run's reason, so the decision is "retrain" whatever the data. What would go
to GitHub's API (the pull request) is checked as the files it would send.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

VENV = Path(sys.executable).parent.parent
EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")


def workflow() -> dict:
    text = (Path(__file__).resolve().parents[3] / ".github/workflows/retrain.yml").read_text()
    loaded = yaml.safe_load(text)
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def test_the_workflow_runs_on_a_schedule_and_on_demand_with_least_privilege():
    flow = workflow()
    assert "cron" in flow["on"]["schedule"][0]
    assert "reason" in flow["on"]["workflow_dispatch"]["inputs"]
    retrain, pull_request = flow["jobs"]["retrain"], flow["jobs"]["pull-request"]
    assert retrain["permissions"] == {"contents": "read"}
    assert retrain["environment"] == "dvc-remote"
    assert pull_request["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert pull_request["if"] == "needs.retrain.outputs.retrain == 'true'"
    create = next(s for s in pull_request["steps"] if s.get("uses", "").startswith("peter-evans/create-pull-request@"))
    assert create["with"]["branch"] == "ratchet/retrain"  # one pull request, updated in place
    assert create["with"]["token"] == "${{ steps.app.outputs.token || github.token }}"
    app = next(s for s in pull_request["steps"] if s.get("id") == "app")
    assert app["with"]["permission-contents"] == "write"
    text = (Path(__file__).resolve().parents[3] / ".github/workflows/retrain.yml").read_text()
    assert "GITHUB_TOKEN start no other workflow" in text  # the caveat, and the GitHub App token it documents
    for forbidden in ("auto-merge", "gh pr merge", "--approve", "merge_method"):
        assert forbidden not in text


@pytest.fixture
def own_data_project(workspace, features, tmp_path):
    """The reproduced project as a team's own: DVC-tracked raw data, logs and labels, pushed to a local remote."""
    if not features.id:
        pytest.skip("labels join the logs on the contract's id column, and this contract has none")
    ws = workspace.single_threaded()
    paths = ws.params()["paths"]
    current = ws.path / paths["raw_current"]
    import pandas as pd

    if features.target not in pd.read_csv(current, nrows=1).columns:
        pytest.skip("the current batch has no labels to play the late ground truth")
    if "ingest" in ws.stages():
        ws.dvc("remove", "ingest")
        ws.dvc("add", paths["raw_reference"], paths["raw_current"])
    logs = ws.path / paths["prediction_logs"]
    ws.python(
        "-m",
        "pipeline.predict",
        paths["raw_current"],
        "-o",
        str(tmp_path / "scored.parquet"),
        "--prediction-log",
        str(logs / "batch.jsonl"),
    )
    labels = ws.path / "data/monitoring/labels.csv"
    pd.read_csv(current, dtype={features.id: str})[[features.id, features.target]].to_csv(labels, index=False)
    params = (ws.path / "params.yaml").read_text()
    (ws.path / "params.yaml").write_text(params.replace("  labels: null", "  labels: data/monitoring/labels.csv"))
    ws.run("git", "rm", "-q", "--cached", "-r", "--ignore-unmatch", "data/monitoring")  # gitignored in the template
    (ws.path / ".gitignore").write_text((ws.path / ".gitignore").read_text().replace("/data/monitoring/\n", ""))
    ws.dvc("add", "data/monitoring/logs", str(labels.relative_to(ws.path)))
    ws.dvc("repro")  # params changed (monitor.labels): nothing it feeds, but keep the lock current
    ws.set_remote(tmp_path / "remote")
    ws.dvc("push")
    ws.commit("Our own data, prediction logs and labels")
    return ws


def run_job(ws, tmp_path: Path, secret: str, reason: str) -> dict[str, str]:
    """The retrain job's shell steps, as GitHub runs them (bash -e, env, GITHUB_OUTPUT, `if:` on outputs)."""
    job = workflow()["jobs"]["retrain"]
    stamp = tmp_path / "venv-is-synced"
    stamp.touch()
    if not (ws.path / ".venv").exists():  # stands in for `make venv`, the one step skipped
        (ws.path / ".venv").symlink_to(VENV, target_is_directory=True)
    values = {"secrets.DVC_CONFIG_LOCAL": secret, "inputs.reason": reason}
    outputs: dict[str, str] = {}
    for number, step in enumerate(job["steps"]):
        if "run" not in step or step["run"] == "make venv":
            continue
        condition = step.get("if")
        if condition and outputs.get("retrain") != "true":
            continue
        env = {key: EXPRESSION.sub(lambda m: values[m[1]], value) for key, value in step.get("env", {}).items()}
        github_output = tmp_path / f"output-{number}"
        github_output.touch()
        env |= {
            "GITHUB_OUTPUT": str(github_output),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "MAKEFLAGS": f"BIN={VENV / 'bin'} STAMP={stamp}",  # never sync the test's own venv
        }
        ws.run("bash", "-e", "-c", step["run"], env=env)
        outputs |= dict(line.split("=", 1) for line in github_output.read_text().splitlines() if "=" in line)
    return outputs


def test_a_manual_run_retrains_and_prepares_the_pull_request(own_data_project, tmp_path, features):
    ws = own_data_project
    reference_rows = len((ws.path / ws.params()["paths"]["raw_reference"]).read_text().splitlines())
    current_rows = len((ws.path / ws.params()["paths"]["raw_current"]).read_text().splitlines()) - 1
    model_before = ws.locked_out_md5(ws.params()["paths"]["model"])
    secret = (ws.path / ".dvc" / "config.local").read_text()
    checkout = ws.clone_to(tmp_path / "checkout")

    outputs = run_job(checkout, tmp_path, secret, "the field team asked for it")

    assert outputs["retrain"] == "true"
    assert not (checkout.path / ".dvc" / "config.local").exists()  # removed after each credentialed step
    reference = checkout.path / checkout.params()["paths"]["raw_reference"]
    assert len(reference.read_text().splitlines()) == reference_rows + current_rows  # appended: the policy
    assert checkout.locked_out_md5(checkout.params()["paths"]["model"]) != model_before  # retrained
    pr = checkout.path / "pr"
    title = (pr / "title.txt").read_text().strip()
    assert title.startswith("Retrain: ")
    assert "\n" not in title
    body = (pr / "body.md").read_text()
    assert "- event: the field team asked for it" in body  # every reason, the manual run's among them
    assert "Nothing here merges itself" in body
    assert "**Retrain**" in body
    assert "## Health" in body
    patch = pr / "changes.patch"
    assert "dvc.lock" in patch.read_text(errors="replace")
    fresh = ws.clone_to(tmp_path / "fresh")
    subprocess.run(["git", "apply", "--check", str(patch)], cwd=fresh.path, check=True)
    assert (checkout.path / "reports/monitoring.json").is_file()
