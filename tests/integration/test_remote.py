"""Push and pull through a DVC remote: a clone gets byte-identical data and models back."""

from __future__ import annotations

import configparser
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def _assert_same_outputs(source, clone) -> None:
    outputs = source.cached_outputs()
    model = source.params()["paths"]["model"]
    assert model in outputs
    assert source.params()["paths"]["raw_reference"] in outputs
    for path in outputs:
        assert (clone.path / path).is_file(), f"{path} was not pulled"
        assert clone.md5(path) == source.md5(path) == source.locked_out_md5(path), path


def _assert_clean(clone) -> None:
    status = clone.dvc("status")
    assert "Data and pipelines are up to date." in status.stdout, status.output
    assert clone.porcelain() == ""


def test_push_then_pull_into_a_fresh_clone(workspace, tmp_path):
    remote = tmp_path / "remote"
    workspace.set_remote(remote)
    workspace.dvc("push")
    model_md5 = workspace.locked_out_md5(workspace.params()["paths"]["model"])
    assert (remote / "files" / "md5" / model_md5[:2] / model_md5[2:]).is_file()

    clone = workspace.clone_to(tmp_path / "clone")
    outputs = workspace.cached_outputs()
    assert not any((clone.path / path).exists() for path in outputs), "a git clone should carry no DVC data"
    clone.set_remote(remote)
    clone.dvc("pull")
    _assert_same_outputs(workspace, clone)
    _assert_clean(clone)


def _committed_remote_url(ws) -> str:
    config = configparser.ConfigParser()
    config.read(ws.path / ".dvc" / "config", encoding="utf-8")
    assert config["core"]["remote"] == "local"
    return config["'remote \"local\"'"]["url"]


def test_committed_remote_is_a_sibling_of_the_repo(reproduced, tmp_path):
    clone = reproduced.workspace.clone_to(tmp_path / "projects" / "ratchet")
    raw = _committed_remote_url(clone)
    assert "://" not in raw
    assert not Path(raw).is_absolute(), raw
    # DVC resolves a relative url against the directory of the config file, .dvc/.
    resolved = Path(clone.dvc("config", "--project", "remote.local.url").stdout.strip())
    assert resolved == (clone.path / ".dvc" / raw).resolve()
    assert resolved.parent == clone.path.parent, f"{resolved} is not beside {clone.path}"
    assert clone.dvc("remote", "default").stdout.strip() == "local"


def test_two_clones_side_by_side_share_the_default_remote(reproduced, tmp_path):
    """No remote override: push from one clone, pull in its sibling, through the committed relative url."""
    shared = tmp_path / "a"
    one = reproduced.workspace.clone_to(shared / "one")
    assert not (one.path / ".dvc" / "config.local").exists()
    # Seed one's cache from the session instead of re-running the whole pipeline; after a
    # checkout from that warm cache, the repro has nothing left to do.
    shutil.copytree(
        reproduced.workspace.path / ".dvc" / "cache", one.path / ".dvc" / "cache", symlinks=True, dirs_exist_ok=True
    )
    one.dvc("checkout")
    repro = one.dvc("repro")
    assert repro.stages_run == [], repro.output
    assert all((one.path / path).is_file() for path in one.cached_outputs())
    one.dvc("push")

    remote = (one.path / ".dvc" / _committed_remote_url(one)).resolve()
    assert remote.parent == shared
    model_md5 = one.locked_out_md5(one.params()["paths"]["model"])
    assert (remote / "files" / "md5" / model_md5[:2] / model_md5[2:]).is_file(), "push did not reach the sibling dir"

    two = reproduced.workspace.clone_to(shared / "two")
    two.dvc("pull")
    _assert_same_outputs(one, two)
    _assert_clean(two)
