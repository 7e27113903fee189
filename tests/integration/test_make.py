"""`make help` works on a bare copy: it lists the entry points and needs no virtual environment."""

from __future__ import annotations

import re
import shutil

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def make() -> str:
    found = shutil.which("make")
    if found is None:
        pytest.skip("make is not installed")
    return found


def _targets(listing: str) -> dict[str, str]:
    return dict(re.findall(r"(?m)^\s*make (\S+)\s+(\S.*)$", listing))


def test_make_help_lists_run_and_test(project_copy, make):
    result = project_copy.run(make, "help")
    targets = _targets(result.stdout)
    assert {"run", "test"} <= set(targets), result.stdout
    assert "dvc repro" in targets["run"]
    assert all(description.strip() for description in targets.values())
    assert not (project_copy.path / ".venv").exists(), "make help must not create the venv"


def test_help_is_the_default_goal(project_copy, make):
    default = project_copy.run(make).stdout
    assert _targets(default) == _targets(project_copy.run(make, "help").stdout)
    assert not (project_copy.path / ".venv").exists()
