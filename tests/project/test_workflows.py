"""The GitHub workflows: valid, least-privilege, pinned, fork-safe, and running our own commands.

GitHub itself cannot run here, so these checks stop at its boundary: the
schema (check-jsonschema), zizmor's offline audits, and the properties we
promise in the README, read straight from the YAML.
"""

from __future__ import annotations

import os
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


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_nothing(persona):
    done = subprocess.run(
        [BIN / "zizmor", "--offline", "--no-progress", f"--persona={persona}", *WORKFLOWS],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings" in done.stdout + done.stderr


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
    assert job["env"] == {"BASELINE": "${{ github.base_ref }}"}  # to make through the environment
    by_name = {step.get("name", step.get("uses", "")): step for step in job["steps"]}
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    cache = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == ".dvc/cache"
    assert "hashFiles('dvc.lock')" in cache["with"]["key"]
    run = "\n".join(step.get("run", "") for step in job["steps"])
    for command in ("dvc pull --allow-missing", "make run", "make report", 'make check GATES_FROM="${gates_from}"'):
        assert command in run
    assert "GITHUB_STEP_SUMMARY" in run
    comment = by_name["Post or update the PR comment"]
    assert comment["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert "comment update" in comment["run"]
    assert '--watermark-title="Ratchet model report"' in comment["run"]
    assert "publish=false" in comment["run"]  # images stay private unless vars.PUBLISH_PLOTS opts in
    assert "exit" in job["steps"][-1]["run"]  # the gate decides the check's colour, after the report


def test_ci_judges_a_pull_request_with_the_base_branchs_gates_unless_told_otherwise():
    job = load(ROOT / ".github/workflows/pr-report.yml")["jobs"]["report"]
    [gates] = [step for step in job["steps"] if step.get("id") == "gates"]
    assert gates["env"] == {"OWN_GATES": "${{ vars.RATCHET_OWN_GATES }}"}
    assert "gates_from=baseline" in gates["run"]
    assert 'if [ "${OWN_GATES}" = "true" ]; then gates_from=branch; fi' in gates["run"]


def test_cml_comes_from_a_pinned_commit_with_its_locked_dependency_tree():
    job = load(ROOT / ".github/workflows/pr-report.yml")["jobs"]["report"]
    [cml] = [step for step in job["steps"] if step.get("with", {}).get("repository") == "iterative/cml"]
    assert re.fullmatch(r"[0-9a-f]{40}", cml["with"]["ref"])
    assert "# v0.20.6" in (ROOT / ".github/workflows/pr-report.yml").read_text()
    run = "\n".join(step.get("run", "") for step in job["steps"])
    assert "npm ci --prefix .cml --omit=dev --ignore-scripts" in run  # npm ci installs exactly the package-lock.json
    assert "npx" not in run  # nothing resolved afresh from the registry


SECRET = "secrets.DVC_CONFIG_LOCAL"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_remote_credentials_live_in_an_environment_and_on_disk_only_while_dvc_needs_them(path):
    workflow = load(path)
    for name, job in workflow["jobs"].items():
        uses_secret = [step for step in job.get("steps", []) if SECRET in str(step.get("env", {}))]
        if not uses_secret:
            continue
        assert job.get("environment") == "dvc-remote", name
        for step in uses_secret:
            script = step["run"]
            for tool in ("make ", "npm", "npx", "python -m"):  # the branch's code, or a tool from a registry
                assert tool not in script, (step["name"], tool)
            if "config.local" in script:
                assert script.index("trap 'rm -f .dvc/config.local' EXIT") < script.index("> .dvc/config.local")
        others = [step for step in job.get("steps", []) if step not in uses_secret]
        for step in others:
            assert "config.local" not in step.get("run", ""), step.get("name")


def test_the_credentials_file_is_gone_after_a_step_that_failed(tmp_path):
    """The pr-report pull step, run by bash as GitHub runs it, against a dvc that fails: the file is removed."""
    job = load(ROOT / ".github/workflows/pr-report.yml")["jobs"]["report"]
    [pull] = [step for step in job["steps"] if SECRET in str(step.get("env", {}))]
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "dvc").symlink_to(BIN / "dvc")  # the real dvc, in a directory that is no repo
    done = subprocess.run(
        ["bash", "-e", "-c", pull["run"]],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "DVC_CONFIG_LOCAL": "[core]\n  remote = x\n", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "dvc pull failed" in done.stdout
    assert not (tmp_path / ".dvc" / "config.local").exists()


def test_make_targets_used_by_workflows_exist():
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), flags=re.MULTILINE))
    for path in WORKFLOWS:
        for target in re.findall(r"\bmake ([a-z-]+)", path.read_text()):
            assert target in targets, f"{path.name} runs `make {target}`, which the Makefile lacks"
