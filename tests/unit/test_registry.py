"""Registry: GTO tags read with GTO's own pattern, checked against dvc.yaml, and the version a rollback puts back.

The cores are pure, so each rule is checked on hand-made `TagRef`s (name,
tagger time, commit). The CLI runs at the end in a small real git repository
whose GTO-format tags are made with plain `git tag -a`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.registry import (
    GtoTag,
    RegistryError,
    Release,
    TagRef,
    check_tag,
    parse_tag,
    rollback_target,
    version_in_stage,
)

DECLARED = {"model": {"path": "models/model.skops", "type": "model"}}
C1, C2, C3 = "1" * 40, "2" * 40, "3" * 40


def ref(name: str, time: int, commit: str) -> TagRef:
    return TagRef(name, time, commit)


REGISTERED = [ref("model@v1.0.0", 100, C1), ref("model@v1.1.0", 200, C2), ref("model@v2.0.0", 300, C3)]


# parse_tag


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("model@v1.2.3", GtoTag("model", "register", version="v1.2.3")),
        ("model@v1.2.3!", GtoTag("model", "deregister", version="v1.2.3")),
        ("model#prod#12", GtoTag("model", "assign", stage="prod", counter=12)),
        ("model#prod!#13", GtoTag("model", "unassign", stage="prod", counter=13)),
        ("model@deprecated", GtoTag("model", "deprecate")),
        ("penguin-sex-classifier#staging#1", GtoTag("penguin-sex-classifier", "assign", stage="staging", counter=1)),
        ("v1.2.0", None),
        ("model@1.2.3", None),
        ("release-2024", None),
    ],
)
def test_parse_tag(tag, parsed):
    assert parse_tag(tag) == parsed


# check_tag


def test_a_registration_names_its_version_and_the_declared_path():
    release = check_tag("model@v1.1.0", REGISTERED, DECLARED)
    assert release == Release("model", "v1.1.0", "", "models/model.skops", C2)
    assert release.lines() == f"name=model\nversion=v1.1.0\nstage=\npath=models/model.skops\ncommit={C2}\n"


def test_an_assignment_names_the_version_registered_at_its_commit():
    refs = [*REGISTERED, ref("model#prod#1", 400, C2)]
    assert check_tag("model#prod#1", refs, DECLARED) == Release("model", "v1.1.0", "prod", "models/model.skops", C2)


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../outside.skops",
        "models/../../x",
        "models/a\nname=evil",
        ".git/hooks/post-checkout",
        "",
        "a\\b",
    ],
)
def test_an_artifact_path_outside_the_repository_or_over_lines_is_refused(path):
    with pytest.raises(RegistryError, match="must be a relative path inside the repository, on one line"):
        check_tag("model@v1.1.0", REGISTERED, {"model": {"path": path}})


def test_printed_lines_never_span_lines():
    with pytest.raises(RegistryError, match="spans lines"):
        Release("model", "v1\nstage=prod", "", "models/model.skops", C1).lines()


def test_an_artifact_dvc_yaml_does_not_declare_is_refused():
    refs = [ref("churn@v1.0.0", 100, C1), ref("churn#prod#1", 200, C1)]
    for tag in ("churn@v1.0.0", "churn#prod#1"):
        with pytest.raises(RegistryError, match=r"declares no artifact 'churn'.*\(declared: model\)"):
            check_tag(tag, refs, DECLARED)
    with pytest.raises(RegistryError, match=r"declared: none"):
        check_tag("churn@v1.0.0", refs, {})


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("v1.2.0", "not a GTO tag"),
        ("model#prod!#2", "is a GTO unassign tag"),
        ("model@v1.0.0!", "is a GTO deregister tag"),
        ("model#prod#9", "no annotated tag 'model#prod#9'"),
        ("model#prod#1", "no version of 'model' is registered"),
    ],
)
def test_tags_that_name_no_release_are_refused(tag, message):
    refs = [ref("v1.2.0", 50, C1), ref("model#prod#1", 60, C1), ref("model#prod!#2", 70, C1)]
    with pytest.raises(RegistryError, match=message):
        check_tag(tag, refs, DECLARED)


def test_an_assignment_of_a_deregistered_version_is_refused():
    refs = [ref("model@v1.0.0", 100, C1), ref("model#prod#1", 200, C1), ref("model@v1.0.0!", 300, C1)]
    with pytest.raises(RegistryError, match="no version of 'model' is registered"):
        check_tag("model#prod#1", refs, DECLARED)


# rollback_target


def prod(*commits_and_times: tuple[str, int]) -> list[TagRef]:
    return [ref(f"model#prod#{n}", time, commit) for n, (commit, time) in enumerate(commits_and_times, start=1)]


def test_rollback_goes_to_the_version_in_prod_before_the_current_one():
    assert rollback_target([*REGISTERED, *prod((C1, 110), (C2, 210))], "model", "prod") == "v1.0.0"
    assert rollback_target([*REGISTERED, *prod((C1, 110), (C2, 210), (C3, 310))], "model", "prod") == "v1.1.0"


def test_a_second_rollback_undoes_the_first():
    refs = [*REGISTERED, *prod((C1, 110), (C2, 210), (C1, 220))]
    assert rollback_target(refs, "model", "prod") == "v1.1.0"


def test_assignments_are_ordered_by_time_then_counter():
    # Tag names sort #10 before #9; tags made in the same second fall back on GTO's counter.
    refs = [*REGISTERED, ref("model#prod#9", 500, C1), ref("model#prod#10", 500, C2), ref("model#prod#11", 400, C3)]
    assert rollback_target(refs, "model", "prod") == "v1.0.0"


def test_other_stages_artifacts_and_deregistered_versions_do_not_count():
    refs = [
        *REGISTERED,
        *prod((C1, 110), (C2, 210), (C3, 310)),
        ref("model#staging#4", 400, C1),
        ref("other@v9.0.0", 50, C2),
        ref("other#prod#1", 600, C2),
        ref("model@v1.1.0!", 700, C2),
    ]
    assert rollback_target(refs, "model", "prod") == "v1.0.0"


def test_nothing_to_roll_back_to():
    with pytest.raises(RegistryError, match="no registered version of 'model' has been in stage 'prod'"):
        rollback_target(REGISTERED, "model", "prod")
    with pytest.raises(RegistryError, match=r"v1\.0\.0 is the only version"):
        rollback_target([*REGISTERED, *prod((C1, 110), (C1, 120))], "model", "prod")


# the CLI, in a real git repository


def git(repo: Path, *args: str) -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env |= {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "tag.gpgSign=false"]
    done = subprocess.run(["git", *identity, *args], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def registry(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.registry", *args], cwd=repo, capture_output=True, text=True, check=False
    )


@pytest.mark.integration
def test_cli_reads_the_tags_and_the_tagged_dvc_yaml(tmp_path):
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "dvc.yaml").write_text("stages: {}\nartifacts:\n  model:\n    path: models/model.skops\n")
    git(tmp_path, "add", "dvc.yaml")
    git(tmp_path, "commit", "-q", "--no-gpg-sign", "-m", "one")
    one = git(tmp_path, "rev-parse", "HEAD")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")  # the artifact is gone from this commit on
    git(tmp_path, "commit", "-q", "--no-gpg-sign", "-am", "two")
    for tag, rev in (("model@v1.0.0", one), ("model#prod#1", one), ("model@v1.1.0", "HEAD"), ("v0.1", "HEAD")):
        git(tmp_path, "tag", "-a", tag, rev, "-m", tag)
    git(tmp_path, "tag", "lightweight")

    checked = registry(tmp_path, "check", "model#prod#1")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout == f"name=model\nversion=v1.0.0\nstage=prod\npath=models/model.skops\ncommit={one}\n"
    refused = registry(tmp_path, "check", "model@v1.1.0")  # dvc.yaml at its commit no longer declares it
    assert refused.returncode == 1
    assert "declares no artifact 'model'" in refused.stderr
    assert registry(tmp_path, "check", "v0.1").returncode == 1

    assert registry(tmp_path, "declared", "model", "--rev", one).stdout == "models/model.skops\n"
    assert registry(tmp_path, "declared", "model").returncode == 1
    assert "no git revision 'nope'" in registry(tmp_path, "declared", "model", "--rev", "nope").stderr

    refused = registry(tmp_path, "rollback-target", "model")
    assert refused.returncode == 1
    assert "nothing to roll back to" in refused.stderr


@pytest.mark.integration
def test_a_stage_holds_the_version_gto_says_until_it_is_withdrawn(tmp_path):
    repo, plain = tmp_path / "repo", tmp_path / "plain"
    repo.mkdir()
    plain.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "dvc.yaml").write_text("stages: {}\nartifacts:\n  model:\n    path: models/model.skops\n")
    git(repo, "add", "dvc.yaml")
    git(repo, "commit", "-q", "--no-gpg-sign", "-m", "one")
    for tag in ("model@v1.0.0", "model#canary#1"):
        git(repo, "tag", "-a", tag, "HEAD", "-m", tag)
    assert version_in_stage("model", "canary", repo) == "v1.0.0"
    # `gto deprecate model v1.0.0 canary`, as `monitor --canary --apply` withdraws a canary: DVC would still see it
    git(repo, "tag", "-a", "model#canary!#2", "HEAD", "-m", "withdrawn")
    with pytest.raises(RegistryError, match=r"no 'model' in stage 'canary'"):
        version_in_stage("model", "canary", repo)
    with pytest.raises(RegistryError, match=r"cannot read the registry for stage 'prod'"):
        version_in_stage("model", "prod", plain)
