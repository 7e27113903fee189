"""The GitHub workflows: valid, least-privilege, pinned, fork-safe, and running our own commands.

GitHub itself cannot run here, so these checks stop at its boundary: the
schema (check-jsonschema), zizmor's offline audits, and the properties we
promise in the README, read straight from the YAML.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def steps(workflow: dict):
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def test_there_are_ci_and_pr_report_workflows():
    assert {p.stem for p in WORKFLOWS} >= {"ci", "pr-report"}


def test_workflows_match_githubs_schema():
    subprocess.run([BIN / "check-jsonschema", "--builtin-schema", "vendor.github-workflows", *WORKFLOWS], check=True)


def test_zizmor_finds_nothing():
    done = subprocess.run(
        [BIN / "zizmor", "--offline", "--no-progress", *WORKFLOWS], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_least_privilege_and_pinned_actions(path):
    workflow = load(path)
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    for job in workflow["jobs"].values():
        assert "write-all" not in str(job.get("permissions"))
    for step in steps(workflow):
        if "uses" in step:
            assert PINNED.match(step["uses"]), step["uses"]
            if step["uses"].startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
    text = path.read_text()
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d", line), f"no version comment: {line.strip()}"


def test_ci_runs_lint_and_make_test_on_push_and_pull_request():
    workflow = load(ROOT / ".github/workflows/ci.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    commands = [step.get("run", "") for step in steps(workflow)]
    assert "make test" in commands
    assert "make lint" in commands


def test_pr_report_runs_our_commands_and_is_fork_safe():
    workflow = load(ROOT / ".github/workflows/pr-report.yml")
    assert set(workflow["on"]) == {"pull_request"}
    job = workflow["jobs"]["report"]
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    by_name = {step.get("name", step.get("uses", "")): step for step in job["steps"]}
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == ".dvc/cache"
    assert "hashFiles('dvc.lock')" in cache["with"]["key"]
    run = "\n".join(step.get("run", "") for step in job["steps"])
    for command in ('make run REPRO_FLAGS="--pull --allow-missing"', "make run", "make report", "make check"):
        assert command in run
    assert "GITHUB_STEP_SUMMARY" in run
    comment = by_name["Post or update the PR comment"]
    assert comment["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert "comment update" in comment["run"]
    assert '--watermark-title="Ratchet model report"' in comment["run"]
    assert "publish=false" in comment["run"]  # images stay private unless vars.PUBLISH_PLOTS opts in
    assert job["steps"][-1]["run"] == "make check"  # the gate decides the check's colour, after the report


def test_make_targets_used_by_workflows_exist():
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    for path in WORKFLOWS:
        for target in re.findall(r"\bmake ([a-z-]+)", path.read_text()):
            assert target in targets, f"{path.name} runs `make {target}`, which the Makefile lacks"
