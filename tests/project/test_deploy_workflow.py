"""The registry's wiring: dvc.yaml declares the model, the Makefile tags it, the deploy workflow acts on prod tags.

tests/project/test_workflows.py holds every workflow to the schema, zizmor and
least privilege; this file checks what is particular to deploy.yml: it runs
on prod assignment tags only, reads nothing but the code, and runs the same
commands that tests/integration/test_registry.py runs for real.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import yaml

from pipeline.registry import Release

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github/workflows/deploy.yml"


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def makefile_default(variable: str) -> str:
    return re.search(rf"^{variable} \?= (\S+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)[1]


def recipe(target: str) -> str:
    return re.search(rf"^{target}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)[1]


def test_dvc_yaml_declares_the_model_the_makefile_registers():
    artifacts = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    model = artifacts[makefile_default("ARTIFACT")]
    assert model["type"] == "model"
    assert model["path"] == params["paths"]["model"]  # written literally: keep them equal
    assert model["desc"]
    assert model["labels"]


def test_make_targets_run_gto_and_the_registry_module():
    assert makefile_default("STAGE") == "prod"
    # Values come from the environment, quoted by the shell (the Makefile exports them).
    assert 'pipeline.registry declared "$$ARTIFACT" --rev "$$REV"' in recipe("register")
    assert '$(BIN)/gto register "$$ARTIFACT" "$$REV"' in recipe("register")
    assert '$(BIN)/gto assign "$$ARTIFACT" --version "$$VERSION" --stage "$$STAGE"' in recipe("promote")
    assert 'pipeline.registry rollback-target "$$ARTIFACT" --stage "$$STAGE"' in recipe("rollback")
    assert 'gto assign "$$ARTIFACT"' in recipe("rollback")
    assert "--force" in recipe("rollback")  # GTO refuses a version that was in the stage before without it


def test_deploy_runs_on_prod_assignment_tags_only():
    workflow = load_workflow()
    assert workflow["on"] == {"push": {"tags": ["*#prod#*"]}}
    [pattern] = workflow["on"]["push"]["tags"]
    for tag in ("model#prod#1", "model#prod#12"):  # what `gto assign --stage prod` (make promote/rollback) makes
        assert fnmatchcase(tag, pattern), tag
    for tag in ("model@v1.0.0", "model#staging#1", "model#prod!#2", "v1.0.0"):
        assert not fnmatchcase(tag, pattern), tag


def test_deploy_reads_the_code_and_nothing_else():
    workflow = load_workflow()
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    [job] = workflow["jobs"].values()
    assert job["permissions"] == {"contents": "read"}
    assert job["env"] == {"TAG": "${{ github.ref_name }}"}
    uses = [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]
    assert uses == ["actions/checkout", "actions/setup-python"]  # no cache (poisoning), no upload: shipping is later
    checkout = job["steps"][0]
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    for step in job["steps"]:
        assert "${{" not in step.get("run", ""), "expressions go through env:, never inline in run:"


def test_deploy_runs_the_registry_check_then_dvc_artifacts_get():
    [job] = load_workflow()["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[0] == "make venv"
    check = next(step for step in job["steps"] if "pipeline.registry check" in step.get("run", ""))
    assert '.venv/bin/python -m pipeline.registry check "${TAG}" > release.env' in check["run"]
    assert 'cat release.env >> "${GITHUB_OUTPUT}"' in check["run"]
    fetch = job["steps"][-1]
    assert '.venv/bin/dvc artifacts get . "${NAME}" --rev "${VERSION}" -o "${MODEL_PATH}"' in fetch["run"]
    assert "printf '%s\\n' \"${DVC_CONFIG_LOCAL}\" > .dvc/config.local" in fetch["run"]
    assert fetch["env"]["DVC_CONFIG_LOCAL"] == "${{ secrets.DVC_CONFIG_LOCAL }}"
    # Every output the fetch step reads is a line `check` prints.
    outputs = set(re.findall(rf"steps\.{check['id']}\.outputs\.(\w+)", str(fetch["env"])))
    assert outputs == {"name", "version", "path"}
    assert outputs <= {field.name for field in dataclasses.fields(Release)}


def test_the_registry_commands_the_workflow_and_makefile_run_exist():
    for command in ("check", "declared", "rollback-target"):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.registry", command, "--help"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
