"""Gate: every rule's verdict, failing closed, the table CI prints, the git baseline, and the CLI end to end.

`judge` is pure, so each rule is checked on its own with GateParams built
here. A gate that cannot be evaluated fails with its reason: a metric the run
does not produce, a baseline revision that does not exist, a drift share that
could not be computed. Relative gates are left unjudged only when the
baseline exists but has no metrics yet, or measured another target. The
baseline is read from real git repositories made in temporary directories,
and the CLI runs in such a repository with the project's params.yaml, as CI
runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.baseline import read_committed_json, resolve_revision
from pipeline.errors import ConfigError, PipelineError, run_main
from pipeline.gate import Baseline, GateResult, all_passed, judge, main, markdown_table
from pipeline.params import Bound, ClassificationGates, GateParams, Regression, RegressionGates

ROOT = Path(__file__).resolve().parents[2]
METRICS = "reports/eval/metrics.json"
TASK = "reports/eval/task.json"
GOOD = {"accuracy": 0.9, "balanced_accuracy": 0.88, "f1": 0.87, "roc_auc": 0.93, "log_loss": 0.3}
IDENTITY = {"task": "classification", "target": "y", "classes": ["a", "b"], "positive": "b"}
REGRESSION_IDENTITY = {"task": "regression", "target": "price", "classes": [], "positive": None}
NO_DRIFT = {"share": 0.0, "note": None}


def gates(
    metrics: dict[str, Bound] | None = None,
    regressions: dict[str, Regression] | None = None,
    max_drift_share: float = 0.5,
    require_validation: bool = True,
    regression: RegressionGates | None = None,
) -> GateParams:
    return GateParams(
        baseline="main",
        max_drift_share=max_drift_share,
        require_validation=require_validation,
        classification=ClassificationGates(metrics=metrics or {}, regressions=regressions or {}),
        regression=regression or RegressionGates(metrics={}, regressions={}),
    )


def baseline(metrics: dict | None = None, identity: dict | None = IDENTITY, commit: str | None = "c0ffee" * 6):
    return Baseline("main", commit, metrics, identity)


def run(metrics, params, base=None, drift=NO_DRIFT, validated=True, identity=IDENTITY):
    return judge(metrics, identity, base or baseline(), drift, validated, params)


def only(results: list[GateResult], rule: str) -> GateResult:
    [result] = [r for r in results if r.rule == rule]
    return result


# absolute gates


@pytest.mark.parametrize(("value", "passed"), [(0.85, True), (0.8, True), (0.7999, False)])
def test_min_gate(value, passed):
    verdict = run({"roc_auc": value}, gates(metrics={"roc_auc": Bound(min=0.8)}))

    result = only(verdict.gates, "min")
    assert (result.name, result.value, result.threshold, result.passed) == ("roc_auc >= 0.8", value, 0.8, passed)
    assert verdict.passed is passed


@pytest.mark.parametrize(("value", "passed"), [(0.3, True), (0.5, True), (0.5001, False)])
def test_max_gate(value, passed):
    verdict = run({"log_loss": value}, gates(metrics={"log_loss": Bound(max=0.5)}))

    result = only(verdict.gates, "max")
    assert (result.name, result.passed) == ("log_loss <= 0.5", passed)
    assert verdict.passed is passed


def test_min_and_max_on_one_metric_are_two_gates():
    verdict = run({"accuracy": 0.995}, gates(metrics={"accuracy": Bound(min=0.5, max=0.99)}))

    assert [(r.rule, r.passed) for r in verdict.gates if r.rule in ("min", "max")] == [("min", True), ("max", False)]


def test_a_gate_on_a_metric_the_run_does_not_produce_fails_with_the_reason():
    params = gates(metrics={"roc_auc": Bound(min=0.8)}, regressions={"roc_auc": Regression(max_drop=0.01)})

    verdict = run({"accuracy": 0.9}, params, baseline({"roc_auc": 0.9}))

    assert [(r.rule, r.value, r.passed, r.reason) for r in verdict.gates if r.rule in ("min", "max_drop")] == [
        ("min", None, False, "this run has no roc_auc"),
        ("max_drop", None, False, "this run has no roc_auc"),
    ]
    assert not verdict.passed


# relative gates


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

    result = only(run({"roc_auc": value}, params, baseline({"roc_auc": 0.9})).gates, "max_drop")

    assert (result.value, result.baseline, result.threshold, result.passed) == (value, 0.9, 0.01, passed)
    assert result.name == "roc_auc drops at most 0.01 vs baseline"


def test_max_drop_of_zero_allows_no_drop_at_all():
    params = gates(regressions={"roc_auc": Regression(max_drop=0.0)})
    assert only(run({"roc_auc": 0.9}, params, baseline({"roc_auc": 0.9})).gates, "max_drop").passed
    assert not only(run({"roc_auc": 0.8999}, params, baseline({"roc_auc": 0.9})).gates, "max_drop").passed


@pytest.mark.parametrize(
    ("value", "passed"),
    [(0.2, True), (0.3, True), (0.4, True), (0.4001, False)],  # lower is better; 0.4 is exactly the allowed rise
)
def test_max_rise_gate(value, passed):
    params = gates(regressions={"log_loss": Regression(max_rise=0.1)})

    result = only(run({"log_loss": value}, params, baseline({"log_loss": 0.3})).gates, "max_rise")

    assert (result.baseline, result.passed) == (0.3, passed)
    assert result.name == "log_loss rises at most 0.1 vs baseline"


def test_regression_gates_use_the_regression_section_and_its_direction():
    regression = RegressionGates(
        metrics={"r2": Bound(min=0.5)}, regressions={"rmse": Regression(max_rise=1.0), "r2": Regression(max_drop=0.02)}
    )
    params = gates(metrics={"roc_auc": Bound(min=0.99)}, regression=regression)
    base = baseline({"rmse": 10.0, "r2": 0.8}, REGRESSION_IDENTITY)

    verdict = run({"rmse": 10.5, "mae": 8.0, "median_ae": 6.0, "r2": 0.79}, params, base, identity=REGRESSION_IDENTITY)

    assert verdict.task == "regression"
    assert {r.name: r.passed for r in verdict.gates} == {
        "r2 >= 0.5": True,
        "rmse rises at most 1 vs baseline": True,
        "r2 drops at most 0.02 vs baseline": True,
        "drifted columns share <= 0.5": True,
        "input data passed validation": True,
    }
    worse = run({"rmse": 11.5, "r2": 0.79}, params, base, identity=REGRESSION_IDENTITY)
    assert not worse.passed
    assert [r.name for r in worse.gates if r.passed is False] == ["rmse rises at most 1 vs baseline"]


def test_a_baseline_without_metrics_leaves_relative_gates_unjudged():
    params = gates(regressions={"roc_auc": Regression(max_drop=0.01), "log_loss": Regression(max_rise=0.05)})

    verdict = run({"roc_auc": 0.1, "log_loss": 9.0}, params, baseline(None))

    relative = [r for r in verdict.gates if r.rule in ("max_drop", "max_rise")]
    assert [(r.baseline, r.passed) for r in relative] == [(None, None), (None, None)]
    assert verdict.passed
    assert verdict.baseline["status"] == "no metrics"
    assert "has no committed metrics yet" in verdict.baseline["note"]


def test_a_baseline_revision_that_does_not_exist_fails_the_check():
    params = gates(regressions={"roc_auc": Regression(max_drop=0.01)})

    verdict = run({"roc_auc": 0.9}, params, Baseline("nope", None))

    assert not verdict.passed
    failed = [r for r in verdict.gates if r.passed is False]
    assert [r.name for r in failed] == ["baseline revision exists"]
    assert "'nope' does not exist here" in failed[0].reason
    assert verdict.baseline["status"] == "missing"


def test_a_baseline_that_measured_another_target_is_not_comparable():
    params = gates(regressions={"roc_auc": Regression(max_drop=0.01)})
    other = {**IDENTITY, "target": "z", "classes": ["a", "b", "c"], "positive": None}

    verdict = run({"roc_auc": 0.5}, params, baseline({"roc_auc": 0.99}, other))

    assert verdict.passed
    assert verdict.baseline["status"] == "not comparable"
    note = verdict.baseline["note"]
    assert note.startswith("baseline not comparable: target changed from 'z' to 'y'")
    assert "classes changed from ['a', 'b', 'c'] to ['a', 'b']" in note
    assert only(verdict.gates, "max_drop").passed is None


def test_a_baseline_from_before_task_json_is_compared():
    params = gates(regressions={"roc_auc": Regression(max_drop=0.01)})
    verdict = run({"roc_auc": 0.5}, params, baseline({"roc_auc": 0.99}, identity=None))
    assert only(verdict.gates, "max_drop").passed is False


def test_a_metric_missing_at_the_baseline_is_not_judged():
    params = gates(regressions={"roc_auc": Regression(max_drop=0.01)})
    result = only(run({"roc_auc": 0.5}, params, baseline({"accuracy": 0.9})).gates, "max_drop")
    assert (result.passed, result.reason) == (None, "the baseline has no roc_auc")


# drift and validation


@pytest.mark.parametrize(("share", "passed"), [(0.0, True), (0.5, True), (0.51, False), (1.0, False)])
def test_max_drift_share_gate(share, passed):
    result = only(run({}, gates(max_drift_share=0.5), drift={"share": share}).gates, "max_drift_share")

    assert (result.name, result.value, result.passed) == ("drifted columns share <= 0.5", share, passed)


@pytest.mark.parametrize(("limit", "share", "passed"), [(0.0, 0.0, True), (0.0, 0.01, False), (1.0, 1.0, True)])
def test_drift_share_limits_at_the_edges(limit, share, passed):
    assert only(run({}, gates(max_drift_share=limit), drift={"share": share}).gates, "max_drift_share").passed is passed


def test_a_drift_share_that_could_not_be_computed_fails_with_the_reason():
    drift = {"share": None, "note": "no column has enough values for a verdict"}
    result = only(run({}, gates(), drift=drift).gates, "max_drift_share")
    assert (result.passed, result.reason) == (False, "no column has enough values for a verdict")


@pytest.mark.parametrize("validated", [True, False])
def test_validation_gate(validated):
    verdict = run({}, gates(require_validation=True), validated=validated)

    assert only(verdict.gates, "validation").passed is validated
    assert verdict.passed is validated


def test_validation_gate_is_absent_when_not_required():
    verdict = run({}, gates(require_validation=False), validated=False)

    assert [r.rule for r in verdict.gates] == ["max_drift_share"]
    assert verdict.passed


def test_all_passed_is_false_when_any_gate_fails():
    def result(passed):
        return GateResult("g", "min", 1.0, None, 1.0, passed)

    assert all_passed([result(True), result(None)])
    assert not all_passed([result(True), result(None), result(False)])


def test_each_gate_records_its_threshold():
    params = gates(
        metrics={"roc_auc": Bound(min=0.8), "log_loss": Bound(max=0.5)},
        regressions={"roc_auc": Regression(max_drop=0.01), "log_loss": Regression(max_rise=0.05)},
        max_drift_share=0.3,
    )
    verdict = run(GOOD, params, baseline(GOOD))
    assert {r.name: r.threshold for r in verdict.gates} == {
        "roc_auc >= 0.8": 0.8,
        "log_loss <= 0.5": 0.5,
        "roc_auc drops at most 0.01 vs baseline": 0.01,
        "log_loss rises at most 0.05 vs baseline": 0.05,
        "drifted columns share <= 0.3": 0.3,
        "input data passed validation": True,
    }


# markdown_table


def test_table_lists_the_failed_gates_in_its_verdict():
    params = gates(metrics={"roc_auc": Bound(min=0.8), "log_loss": Bound(max=0.5)})
    verdict = run({"roc_auc": 0.7, "log_loss": 0.3}, params, drift={"share": 0.9})

    table = markdown_table(verdict.to_json())

    assert table.splitlines()[0] == "**2 gate(s) failed:** roc_auc >= 0.8; drifted columns share <= 0.5"
    assert "| roc_auc >= 0.8 | 0.7000 | n/a | ❌ **FAIL** |" in table
    assert "| log_loss <= 0.5 | 0.3000 | n/a | ✅ pass |" in table
    assert "| input data passed validation | yes | n/a | ✅ pass |" in table


def test_table_says_all_gates_passed_and_why_a_gate_was_not_judged():
    params = gates(metrics={"roc_auc": Bound(min=0.8)}, regressions={"roc_auc": Regression(max_drop=0.01)})

    table = markdown_table(run({"roc_auc": 0.9}, params, baseline(None)).to_json())

    assert table.startswith("**All gates passed.**\n")
    assert "FAIL" not in table
    assert "| roc_auc drops at most 0.01 vs baseline | 0.9000 | n/a | ⚪ not judged (no baseline: " in table


def test_table_escapes_the_revision_and_reasons():
    evil = "x<img src=y onerror=alert(1)>|[a](javascript:b)"
    verdict = run({}, gates(), Baseline(evil, None)).to_json()

    table = markdown_table(verdict)

    assert "<img" not in table
    assert "](javascript" not in table
    for row in table.splitlines():
        if row.startswith("| baseline"):
            assert row.replace("\\|", "").count("|") == 5


def test_gates_that_cannot_be_judged_record_everything_they_know():
    """Every field of a failing or unjudged gate, not only its verdict: the table and gates.json show them."""
    params = gates(metrics={"roc_auc": Bound(min=0.8, max=0.99)}, regressions={"roc_auc": Regression(max_drop=0.01)})
    other = {**IDENTITY, "target": "z"}

    missing = run({}, params, Baseline("nope", None), drift={"share": None, "note": None}).gates
    not_comparable = run({}, params, baseline({"roc_auc": 0.9}, other)).gates
    unjudged = run({"roc_auc": 0.9}, params, baseline({"roc_auc": 0.9}, other)).gates
    absent = run({"roc_auc": 0.9}, params, baseline({"accuracy": 0.9})).gates

    assert missing[:4] == [
        GateResult("baseline revision exists", "baseline", False, None, True, False, missing[0].reason),
        GateResult("roc_auc >= 0.8", "min", None, None, 0.8, False, "this run has no roc_auc"),
        GateResult("roc_auc <= 0.99", "max", None, None, 0.99, False, "this run has no roc_auc"),
        GateResult(
            "roc_auc drops at most 0.01 vs baseline", "max_drop", None, None, 0.01, False, "this run has no roc_auc"
        ),
    ]
    drift_name = "drifted columns share <= 0.5"
    assert missing[4] == GateResult(
        drift_name, "max_drift_share", None, None, 0.5, False, "the drift share could not be computed"
    )
    assert only(not_comparable, "max_drop").baseline is None  # a baseline that measured another target is not shown
    compared = run({}, params, baseline({"roc_auc": 0.9})).gates
    assert only(compared, "max_drop") == GateResult(
        "roc_auc drops at most 0.01 vs baseline", "max_drop", None, 0.9, 0.01, False, "this run has no roc_auc"
    )
    note = "baseline not comparable: target changed from 'z' to 'y'"
    assert only(unjudged, "max_drop") == GateResult(
        "roc_auc drops at most 0.01 vs baseline", "max_drop", 0.9, None, 0.01, None, note
    )
    assert only(absent, "max_drop") == GateResult(
        "roc_auc drops at most 0.01 vs baseline", "max_drop", 0.9, None, 0.01, None, "the baseline has no roc_auc"
    )


def test_the_regression_tolerance_absorbs_float_noise_up_to_and_including_1e_12():
    params = gates(regressions={"log_loss": Regression(max_rise=0.0)})
    base = baseline({"log_loss": 0.0})

    assert only(run({"log_loss": 1e-12}, params, base).gates, "max_rise").passed is True
    assert only(run({"log_loss": 2e-12}, params, base).gates, "max_rise").passed is False


def test_judge_records_where_the_gates_came_from():
    assert run({}, gates()).gates_from == "this branch"
    assert (
        judge({}, IDENTITY, baseline(), NO_DRIFT, True, gates(), "the baseline main").gates_from == "the baseline main"
    )


def test_baseline_notes_name_the_revision_the_commit_and_every_change():
    commit = "0123456789abcdef" * 2
    other = {"task": "regression", "target": "z", "classes": [], "positive": None}

    compared = run({}, gates(), Baseline("main", commit, {"roc_auc": 0.9}, IDENTITY)).baseline
    changed = run({}, gates(), Baseline("main", commit, {"roc_auc": 0.9}, other)).baseline

    assert compared == {
        "revision": "main",
        "commit": commit,
        "status": "compared",
        "note": "baseline 'main' at 0123456789ab",
    }
    assert changed["note"] == (
        "baseline not comparable: task changed from 'regression' to 'classification'; "
        "target changed from 'z' to 'y'; classes changed from [] to ['a', 'b']; positive changed from None to 'b'"
    )


def test_verdict_json_has_exactly_the_verdicts_fields():
    verdict = run({"roc_auc": 0.9}, gates(metrics={"roc_auc": Bound(min=0.8)}))

    payload = verdict.to_json()

    assert set(payload) == {"passed", "task", "gates", "baseline", "gates_from", "notes"}
    assert payload["gates"][0] == {
        "name": "roc_auc >= 0.8",
        "rule": "min",
        "value": 0.9,
        "baseline": None,
        "threshold": 0.8,
        "passed": True,
        "reason": None,
    }


def test_table_in_full():
    """The whole table, byte for byte: headline, where the gates came from, header, and one row per gate."""
    params = gates(
        metrics={"roc_auc": Bound(min=0.8), "f1": Bound(min=0.5)}, regressions={"roc_auc": Regression(max_drop=0.01)}
    )
    verdict = run({"roc_auc": 0.7}, params, baseline({"roc_auc": 0.9}, commit="ab" * 20), validated=False)

    table = markdown_table(verdict.to_json())

    assert table == (
        "**4 gate(s) failed:** roc_auc >= 0.8; f1 >= 0.5; roc_auc drops at most 0.01 vs baseline; "
        "input data passed validation\n"
        "\n"
        "Gates from this branch; baseline 'main' at abababababab.\n"
        "\n"
        "| gate | value | baseline | status |\n"
        "|---|---|---|---|\n"
        "| roc_auc >= 0.8 | 0.7000 | n/a | ❌ **FAIL** |\n"
        "| f1 >= 0.5 | n/a | n/a | ❌ **FAIL** (this run has no f1) |\n"
        "| roc_auc drops at most 0.01 vs baseline | 0.7000 | 0.9000 | ❌ **FAIL** |\n"
        "| drifted columns share <= 0.5 | 0.0000 | n/a | ✅ pass |\n"
        "| input data passed validation | no | n/a | ❌ **FAIL** |\n"
    )


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


def test_malformed_json_at_the_baseline_is_a_one_line_error(tmp_path):
    repo = init_repo(tmp_path, "main")
    (repo / "reports/eval").mkdir(parents=True)
    (repo / METRICS).write_text("{not json", encoding="utf-8")
    sha = commit(repo, "broken metrics")
    with pytest.raises(PipelineError, match=r"reports/eval/metrics\.json at \w+: not valid JSON") as error:
        read_committed_json(sha, METRICS, repo)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("rev", ["main;touch /tmp/x", "-rf", "a..b", "$(id)", "a b", "main\nx"])
def test_a_revision_a_shell_would_read_specially_is_refused(tmp_path, rev):
    with pytest.raises(ConfigError, match="is not a git revision name"):
        resolve_revision(rev, tmp_path)


def test_outside_a_git_repository_there_is_no_baseline(tmp_path):
    assert resolve_revision("main", tmp_path) is None


# The gate CLI end to end


def gate_repo(path: Path, metrics: dict[str, float], drift_share: float = 0.1) -> Path:
    """A git repository with the project's params.yaml and committed reports on branch main."""
    repo = init_repo(path, "main")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["gates"]["classification"] = {
        "metrics": {"roc_auc": {"min": 0.8}, "log_loss": {"max": 0.5}},
        "regressions": {"roc_auc": {"max_drop": 0.01}},
    }
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    write_json(repo / METRICS, metrics)
    write_json(repo / TASK, IDENTITY)
    write_json(repo / "reports/drift.json", {"dataset": {"share": drift_share, "note": None}})
    write_json(repo / "reports/validation.json", {"passed": True})
    commit(repo, "baseline reports")
    return repo


def gate_process(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pipeline.gate ARGS` with the project's interpreter, in `repo`."""
    command = [sys.executable, "-m", "pipeline.gate", *args]
    return subprocess.run(command, cwd=repo, env=git_env(), capture_output=True, text=True, check=False)


@pytest.fixture
def gate_cli(monkeypatch, capsys):
    """`python -m pipeline.gate ARGS` in a repository, run in this process as its `__main__` runs it.

    In this process, mutation testing sees the code the CLI runs; the first test below
    also runs the real `python -m pipeline.gate`, so the two cannot drift apart.
    """

    def run(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(repo)
        for key in [key for key in os.environ if key.startswith("GIT_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
        capsys.readouterr()
        try:
            code = run_main(main, list(args))
        except SystemExit as exit:  # argparse refusing the command line
            code = exit.code
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["python", "-m", "pipeline.gate", *args], code, out.out, out.err)

    return run


def gates_json(repo: Path) -> dict:
    return json.loads((repo / "reports/gates.json").read_text(encoding="utf-8"))


def test_cli_check_passes_a_good_model(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)

    result = gate_cli(repo, "--check")

    assert result.returncode == 0, result.stdout + result.stderr
    assert gate_process(repo, "--check").stdout == result.stdout  # the real process says the same
    assert result.stdout.startswith("**All gates passed.**")
    report = gates_json(repo)
    assert (report["baseline"]["revision"], report["baseline"]["status"], report["passed"]) == (
        "main",
        "compared",
        True,
    )
    assert {g["rule"] for g in report["gates"]} == {"min", "max", "max_drop", "max_drift_share", "validation"}
    assert (repo / "reports/gates.md").read_text(encoding="utf-8") == result.stdout.rstrip("\n") + "\n"


def test_cli_check_fails_a_model_below_the_floor(tmp_path, gate_cli):
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


def test_cli_check_fails_a_regression_against_the_committed_baseline(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.9})  # above the floor, 0.03 below main

    result = gate_cli(repo, "--check")

    assert result.returncode == 1
    assert "**1 gate(s) failed:** roc_auc drops at most 0.01 vs baseline" in result.stdout


def test_cli_check_fails_when_the_baseline_does_not_exist(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)

    result = gate_cli(repo, "--check", "--baseline", "nope")

    assert result.returncode == 1
    assert "baseline revision exists" in result.stdout
    assert "'nope' does not exist here" in result.stdout
    assert gates_json(repo)["baseline"]["status"] == "missing"


def test_cli_with_a_baseline_that_has_no_metrics_lets_absolute_gates_decide(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    git(repo, "checkout", "--quiet", "--orphan", "empty")
    git(repo, "rm", "-rq", "--cached", ".")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "nothing committed")
    git(repo, "checkout", "--quiet", "-f", "main")
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.9})  # the regression that fails against main

    result = gate_cli(repo, "--check", "--baseline", "empty")

    assert result.returncode == 0, result.stdout
    assert "no baseline: 'empty' has no committed metrics yet" in result.stdout
    report = gates_json(repo)
    relative = [g for g in report["gates"] if g["rule"] in ("max_drop", "max_rise")]
    assert [(g["baseline"], g["passed"]) for g in relative] == [(None, None)]


def test_cli_with_the_baselines_gates_ignores_a_branch_that_lowered_its_own_bar(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    params["gates"]["classification"]["metrics"]["roc_auc"]["min"] = 0.1
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.7})

    own = gate_cli(repo, "--check", "--baseline", "main")
    strict = gate_cli(repo, "--check", "--baseline", "main", "--gates-from", "baseline")

    assert "| roc_auc >= 0.1 | 0.7000 |" in own.stdout
    assert strict.returncode == 1
    assert "| roc_auc >= 0.8 | 0.7000 | n/a | ❌ **FAIL** |" in strict.stdout
    assert "Gates from the baseline main" in strict.stdout
    assert gates_json(repo)["gates_from"] == "the baseline main"


def test_cli_without_check_records_a_failure_but_exits_zero(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.7})

    result = gate_cli(repo)

    assert result.returncode == 0
    assert "FAIL" in result.stderr  # the table goes to stderr when not checking
    assert result.stdout == ""
    assert gates_json(repo)["passed"] is False


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        (METRICS, "{broken", "reports/eval/metrics.json: not valid JSON"),
        (METRICS, '{"roc_auc": "high"}', "reports/eval/metrics.json: metric 'roc_auc' is 'high', not a number"),
        ("reports/drift.json", "[]", "reports/drift.json: expected a JSON object"),
        ("reports/drift.json", "{}", "reports/drift.json: has no dataset.share"),
        ("reports/validation.json", '{"passed": "yes"}', "reports/validation.json: has no passed: true/false"),
    ],
)
def test_cli_malformed_results_are_one_line_errors(tmp_path, gate_cli, path, content, message):
    repo = gate_repo(tmp_path, GOOD)
    (repo / path).write_text(content, encoding="utf-8")

    result = gate_cli(repo, "--check")

    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_refuses_a_revision_with_shell_characters(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    result = gate_cli(repo, "--check", "--baseline", "main;touch pwned")
    assert result.returncode == 2
    assert "is not a git revision name" in result.stderr
    assert not (repo / "pwned").exists()


def test_cli_show_prints_the_last_verdict_and_judges_nothing(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    written = gate_cli(repo, "--check").stdout
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.1})  # would fail, but --show only reads reports/gates.json

    shown = gate_cli(repo, "--show")

    assert (shown.returncode, shown.stdout) == (0, "")
    assert shown.stderr == written
    assert gates_json(repo)["passed"] is True


def test_cli_with_a_baseline_that_measured_another_target_leaves_relative_gates_unjudged(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    write_json(repo / TASK, {**IDENTITY, "target": "z"})
    commit(repo, "another target")
    git(repo, "checkout", "--quiet", "-b", "feature", "HEAD~1")
    write_json(repo / METRICS, {**GOOD, "roc_auc": 0.85})  # 0.08 below main's, on another target

    result = gate_cli(repo, "--check")

    assert result.returncode == 0, result.stdout
    assert gates_json(repo)["baseline"]["status"] == "not comparable"
    assert "target changed from 'z' to 'y'" in result.stdout


def test_cli_with_malformed_metrics_at_the_baseline_is_a_one_line_error(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    write_json(repo / METRICS, {"roc_auc": "high"})
    commit(repo, "broken metrics")
    git(repo, "checkout", "--quiet", "-b", "feature", "HEAD~1")

    result = gate_cli(repo, "--check")

    assert result.returncode == 1
    assert result.stderr == (
        "error: reports/eval/metrics.json at main: metric 'roc_auc' is 'high', not a number; run `dvc repro -f`\n"
    )


@pytest.mark.parametrize(
    ("baseline", "committed", "message"),
    [
        ("nope", None, "--gates-from baseline: the baseline revision 'nope' does not exist here"),
        ("main", "drift: {}\n", "--gates-from baseline: params.yaml at 'main' has no gates: section"),
        ("main", "- a list\n", "--gates-from baseline: params.yaml at 'main' has no gates: section"),
        (
            "main",
            "gates: {baseline: main}\n",
            "params.yaml at main (gates:) is invalid:\n  max_drift_share: required key is missing\n"
            "  require_validation: required key is missing\n",
        ),
        ("main", "gates: [\n", "params.yaml at main is not valid YAML"),
    ],
    ids=["no-revision", "no-gates-section", "not-a-mapping", "invalid-gates", "not-yaml"],
)
def test_cli_gates_from_a_baseline_without_usable_gates_is_a_config_error(
    tmp_path, gate_cli, baseline, committed, message
):
    repo = gate_repo(tmp_path, GOOD)
    if committed is not None:
        own = (repo / "params.yaml").read_text(encoding="utf-8")
        (repo / "params.yaml").write_text(committed, encoding="utf-8")
        commit(repo, "the baseline's params.yaml")
        git(repo, "checkout", "--quiet", "-b", "feature", "HEAD~1")
        assert (repo / "params.yaml").read_text(encoding="utf-8") == own

    result = gate_cli(repo, "--check", "--baseline", baseline, "--gates-from", "baseline")

    assert result.returncode == 2
    assert message in result.stderr
    assert not (repo / "reports/gates.json").exists()


def test_cli_gates_from_a_baseline_without_params_yaml_is_a_config_error(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)
    git(repo, "rm", "--quiet", "params.yaml")
    commit(repo, "no params")
    git(repo, "checkout", "--quiet", "-b", "feature", "HEAD~1")

    result = gate_cli(repo, "--check", "--gates-from", "baseline")

    assert result.returncode == 2
    assert "params.yaml at 'main' has no gates: section" in result.stderr


def test_cli_gates_from_takes_branch_or_baseline_only(tmp_path, gate_cli):
    repo = gate_repo(tmp_path, GOOD)

    branch = gate_cli(repo, "--check", "--gates-from", "branch")  # what `make check` passes by default
    other = gate_cli(repo, "--check", "--gates-from", "elsewhere")

    assert branch.returncode == 0, branch.stderr
    assert "Gates from this branch" in branch.stdout
    assert other.returncode == 2
    assert "argument --gates-from: invalid choice: 'elsewhere'" in other.stderr
