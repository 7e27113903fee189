"""Gate: every rule's verdict, the table CI prints, the git baseline, and the CLI end to end.

evaluate_gates is pure, so each rule is checked on its own with GateParams
built here. The baseline is read from a real git repository made in a
temporary directory (branches, tags, a remote-only branch), and the CLI runs in
such a repository with the project's params.yaml, as CI runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.baseline import read_committed_json, resolve_revision
from pipeline.gate import GateResult, all_passed, evaluate_gates, markdown_table
from pipeline.params import Bound, GateParams, Regression

ROOT = Path(__file__).resolve().parents[2]
METRICS = "reports/eval/metrics.json"
GOOD = {"accuracy": 0.9, "balanced_accuracy": 0.88, "roc_auc": 0.93, "log_loss": 0.3}


def gates(
    metrics: dict[str, Bound] | None = None,
    regressions: dict[str, Regression] | None = None,
    max_drift_share: float = 0.5,
    require_validation: bool = True,
) -> GateParams:
    return GateParams(
        baseline="main",
        metrics=metrics or {},
        regressions=regressions or {},
        max_drift_share=max_drift_share,
        require_validation=require_validation,
    )


def only(results: list[GateResult], rule: str) -> GateResult:
    [result] = [r for r in results if r.rule == rule]
    return result


# evaluate_gates


@pytest.mark.parametrize(("value", "passed"), [(0.85, True), (0.8, True), (0.7999, False)])
def test_min_gate(value, passed):
    results = evaluate_gates({"roc_auc": value}, None, 0.0, True, gates(metrics={"roc_auc": Bound(min=0.8)}))

    result = only(results, "min")
    assert (result.name, result.value, result.threshold, result.passed) == ("roc_auc >= 0.8", value, 0.8, passed)
    assert all_passed(results) is passed


@pytest.mark.parametrize(("value", "passed"), [(0.3, True), (0.5, True), (0.5001, False)])
def test_max_gate(value, passed):
    results = evaluate_gates({"log_loss": value}, None, 0.0, True, gates(metrics={"log_loss": Bound(max=0.5)}))

    result = only(results, "max")
    assert (result.name, result.passed) == ("log_loss <= 0.5", passed)
    assert all_passed(results) is passed


def test_min_and_max_on_one_metric_are_two_gates():
    params = gates(metrics={"accuracy": Bound(min=0.5, max=0.99)})

    results = evaluate_gates({"accuracy": 0.995}, None, 0.0, True, params)

    assert [(r.rule, r.passed) for r in results if r.rule in ("min", "max")] == [("min", True), ("max", False)]


def test_gate_on_a_metric_missing_from_the_metrics_fails():
    params = gates(metrics={"roc_auc": Bound(min=0.8)}, regressions={"roc_auc": Regression(max_drop=0.01)})

    results = evaluate_gates({"accuracy": 0.9}, {"roc_auc": 0.9}, 0.0, True, params)

    assert [(r.rule, r.value, r.passed) for r in results if r.rule in ("min", "max_drop")] == [
        ("min", None, False),
        ("max_drop", None, False),
    ]
    assert not all_passed(results)


@pytest.mark.parametrize(
    ("value", "passed"),
    [
        (0.95, True),  # an improvement
        (0.895, True),
        (0.89, True),  # exactly the allowed drop (0.9 - 0.89 is 0.010000000000000009 in floats)
        (0.8899, False),
    ],
)
def test_max_drop_gate(value, passed):
    params = gates(regressions={"roc_auc": Regression(max_drop=0.01)})

    result = only(evaluate_gates({"roc_auc": value}, {"roc_auc": 0.9}, 0.0, True, params), "max_drop")

    assert (result.value, result.baseline, result.threshold, result.passed) == (value, 0.9, 0.01, passed)
    assert result.name == "roc_auc drops at most 0.01 vs baseline"


@pytest.mark.parametrize(
    ("value", "passed"),
    [(0.2, True), (0.3, True), (0.4, True), (0.4001, False)],  # lower is better; 0.4 is exactly the allowed rise
)
def test_max_rise_gate(value, passed):
    params = gates(regressions={"log_loss": Regression(max_rise=0.1)})

    result = only(evaluate_gates({"log_loss": value}, {"log_loss": 0.3}, 0.0, True, params), "max_rise")

    assert (result.baseline, result.passed) == (0.3, passed)
    assert result.name == "log_loss rises at most 0.1 vs baseline"


@pytest.mark.parametrize("baseline", [None, {}, {"accuracy": 0.9}])
def test_relative_gates_without_a_baseline_are_not_judged_and_do_not_block(baseline):
    params = gates(regressions={"roc_auc": Regression(max_drop=0.01), "log_loss": Regression(max_rise=0.05)})

    results = evaluate_gates({"roc_auc": 0.1, "log_loss": 9.0}, baseline, 0.0, True, params)

    relative = [r for r in results if r.rule in ("max_drop", "max_rise")]
    assert [(r.rule, r.baseline, r.passed) for r in relative] == [("max_drop", None, None), ("max_rise", None, None)]
    assert all_passed(results)


@pytest.mark.parametrize(("share", "passed"), [(0.0, True), (0.5, True), (0.51, False), (1.0, False)])
def test_max_drift_share_gate(share, passed):
    result = only(evaluate_gates({}, None, share, True, gates(max_drift_share=0.5)), "max_drift_share")

    assert (result.name, result.value, result.passed) == ("drifted columns share <= 0.5", share, passed)


@pytest.mark.parametrize("validated", [True, False])
def test_validation_gate(validated):
    results = evaluate_gates({}, None, 0.0, validated, gates(require_validation=True))

    assert only(results, "validation").passed is validated
    assert all_passed(results) is validated


def test_validation_gate_is_absent_when_not_required():
    results = evaluate_gates({}, None, 0.0, False, gates(require_validation=False))

    assert [r.rule for r in results] == ["max_drift_share"]
    assert all_passed(results)


def test_all_passed_is_false_when_any_gate_fails():
    def result(passed):
        return GateResult("g", "min", 1.0, None, 1.0, passed)

    assert all_passed([result(True), result(None)])
    assert not all_passed([result(True), result(None), result(False)])


# markdown_table


def test_table_lists_the_failed_gates_in_its_verdict():
    params = gates(metrics={"roc_auc": Bound(min=0.8), "log_loss": Bound(max=0.5)})
    results = evaluate_gates({"roc_auc": 0.7, "log_loss": 0.3}, None, 0.9, True, params)

    table = markdown_table(results)

    verdict = table.splitlines()[0]
    assert verdict == "**2 gate(s) failed:** roc_auc >= 0.8; drifted columns share <= 0.5"
    assert "| roc_auc >= 0.8 | 0.7000 | n/a | ❌ **FAIL** |" in table
    assert "| log_loss <= 0.5 | 0.3000 | n/a | ✅ pass |" in table
    assert "| input data passed validation | yes | n/a | ✅ pass |" in table


def test_table_says_all_gates_passed():
    params = gates(metrics={"roc_auc": Bound(min=0.8)}, regressions={"roc_auc": Regression(max_drop=0.01)})

    table = markdown_table(evaluate_gates({"roc_auc": 0.9}, None, 0.1, True, params))

    assert table.startswith("**All gates passed.**\n")
    assert "FAIL" not in table
    assert "| roc_auc drops at most 0.01 vs baseline | 0.9000 | n/a | ⚪ no baseline |" in table


# The git baseline

GIT_IDENTITY = ("-c", "user.name=Ratchet Tests", "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false")


def git_env() -> dict[str, str]:
    """The environment without GIT_* variables (a pre-commit hook sets GIT_DIR) and without user git config."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return {**env, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=repo, env=git_env(), capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def init_repo(path: Path, branch: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "--quiet", f"--initial-branch={branch}")
    return path


def write_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """main: a commit without metrics (tag before-metrics), then one with roc_auc 0.9 (tags v1, annotated v1-notes);
    branch feature: roc_auc 0.95."""
    repo = init_repo(tmp_path_factory.mktemp("history"), "main")
    (repo / "README.md").write_text("baseline tests\n", encoding="utf-8")
    commits = {"empty": commit(repo, "no metrics yet")}
    git(repo, "tag", "before-metrics")
    write_json(repo / METRICS, {"roc_auc": 0.9})
    commits["main"] = commit(repo, "metrics")
    git(repo, "tag", "v1")
    git(repo, "tag", "--annotate", "v1-notes", "-m", "release notes")
    git(repo, "checkout", "--quiet", "-b", "feature")
    write_json(repo / METRICS, {"roc_auc": 0.95})
    commits["feature"] = commit(repo, "better metrics")
    git(repo, "checkout", "--quiet", "main")
    return repo, commits


@pytest.mark.parametrize(
    ("rev", "commit_key", "roc_auc"),
    [("main", "main", 0.9), ("feature", "feature", 0.95), ("v1", "main", 0.9), ("v1-notes", "main", 0.9)],
)
def test_baseline_at_a_branch_or_tag(history, rev, commit_key, roc_auc):
    repo, commits = history

    resolved = resolve_revision(rev, repo)

    assert resolved == commits[commit_key]
    assert read_committed_json(resolved, METRICS, repo) == {"roc_auc": roc_auc}


def test_baseline_falls_back_to_the_remote_branch(tmp_path):
    repo = init_repo(tmp_path / "ci-checkout", "pr-branch")
    write_json(repo / METRICS, {"roc_auc": 0.91})
    sha = commit(repo, "metrics")
    git(repo, "update-ref", "refs/remotes/origin/main", sha)
    write_json(repo / METRICS, {"roc_auc": 0.5})
    commit(repo, "worse metrics on the PR branch")

    resolved = resolve_revision("main", repo)

    assert git(repo, "branch", "--list", "main") == ""  # only origin/main exists
    assert resolved == sha
    assert read_committed_json(resolved, METRICS, repo) == {"roc_auc": 0.91}


def test_local_branch_wins_over_the_remote_one(history):
    repo, commits = history
    git(repo, "update-ref", "refs/remotes/origin/main", commits["feature"])
    try:
        assert resolve_revision("main", repo) == commits["main"]
    finally:
        git(repo, "update-ref", "-d", "refs/remotes/origin/main")


def test_missing_revision_is_none(history):
    repo, _ = history

    assert resolve_revision("nonexistent", repo) is None
    assert read_committed_json(None, METRICS, repo) is None


def test_file_absent_at_the_commit_is_none(history):
    repo, commits = history

    assert read_committed_json(resolve_revision("before-metrics", repo), METRICS, repo) is None
    assert read_committed_json(commits["main"], "reports/eval/other.json", repo) is None


def test_outside_a_git_repository_there_is_no_baseline(tmp_path):
    assert resolve_revision("main", tmp_path) is None


# The gate CLI end to end


def gate_repo(path: Path, metrics: dict[str, float], drift_share: float = 0.1) -> Path:
    """A git repository with the project's params.yaml and committed reports on branch main."""
    repo = init_repo(path, "main")
    shutil.copy(ROOT / "params.yaml", repo / "params.yaml")
    write_json(repo / METRICS, metrics)
    write_json(repo / "reports/drift.json", {"dataset": {"share": drift_share}})
    write_json(repo / "reports/validation.json", {"passed": True})
    commit(repo, "baseline reports")
    return repo


def gate_cli(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline.gate ARGS` with the project's interpreter, in `repo`."""
    command = [sys.executable, "-m", "pipeline.gate", *args]
    return subprocess.run(command, cwd=repo, env=git_env(), capture_output=True, text=True, check=False)


def gates_json(repo: Path) -> dict:
    return json.loads((repo / "reports/gates.json").read_text(encoding="utf-8"))


def test_cli_check_passes_a_good_model(tmp_path):
    repo = gate_repo(tmp_path, GOOD)

    result = gate_cli(repo, "--check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("**All gates passed.**")
    report = gates_json(repo)
    assert (report["baseline"], report["passed"]) == ("main", True)
    assert {g["rule"] for g in report["gates"]} == {"min", "max", "max_drop", "max_drift_share", "validation"}
    assert (repo / "reports/gates.md").read_text(encoding="utf-8") == result.stdout.rstrip("\n") + "\n"


def test_cli_check_fails_a_model_below_the_floor(tmp_path):
    repo = gate_repo(tmp_path, GOOD)
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.7})

    result = gate_cli(repo, "--check")

    assert result.returncode == 1
    assert "| roc_auc >= 0.8 | 0.7000 | n/a | ❌ **FAIL** |" in result.stdout
    assert "| roc_auc drops at most 0.01 vs baseline | 0.7000 | 0.9300 | ❌ **FAIL** |" in result.stdout
    assert "Traceback" not in result.stderr
    report = gates_json(repo)
    assert report["passed"] is False
    failed = {g["name"] for g in report["gates"] if g["passed"] is False}
    assert failed == {"roc_auc >= 0.8", "roc_auc drops at most 0.01 vs baseline"}


def test_cli_check_fails_a_regression_against_the_committed_baseline(tmp_path):
    repo = gate_repo(tmp_path, GOOD)
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.9})  # above the floor, 0.03 below main

    result = gate_cli(repo, "--check")

    assert result.returncode == 1
    assert "**1 gate(s) failed:** roc_auc drops at most 0.01 vs baseline" in result.stdout


def test_cli_without_a_baseline_lets_only_absolute_gates_decide(tmp_path):
    repo = gate_repo(tmp_path, GOOD)
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.9})  # the regression that fails against main

    result = gate_cli(repo, "--check", "--baseline", "nonexistent")

    assert result.returncode == 0, result.stdout
    assert "No baseline: 'nonexistent' does not exist here" in result.stdout
    report = gates_json(repo)
    assert (report["baseline"], report["passed"]) == (None, True)
    relative = [g for g in report["gates"] if g["rule"] in ("max_drop", "max_rise")]
    assert [(g["baseline"], g["passed"]) for g in relative] == [(None, None), (None, None)]


def test_cli_without_check_records_a_failure_but_exits_zero(tmp_path):
    repo = gate_repo(tmp_path, GOOD)
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.7})

    result = gate_cli(repo)

    assert result.returncode == 0
    assert "FAIL" in result.stderr  # the table goes to stderr when not checking
    assert result.stdout == ""
    assert gates_json(repo)["passed"] is False
