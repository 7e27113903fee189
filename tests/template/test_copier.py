"""Ratchet as a copier template: copy, drift against the root, update, and one full fresh run.

The template source is a snapshot of this working tree (tracked and
unignored files) committed to a temporary git repository and tagged, so the
tests see uncommitted edits too and `copier update` has versions to move
between. These tests are excluded from projects made from the template.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from copier import run_copy, run_update

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Template tests",
    "GIT_AUTHOR_EMAIL": "template-tests@ratchet.invalid",
    "GIT_COMMITTER_NAME": "Template tests",
    "GIT_COMMITTER_EMAIL": "template-tests@ratchet.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
# Files a project gets from a .jinja twin, and files the template keeps to itself.
TWINNED = {"README.md", "pyproject.toml", "uv.lock", "LICENSE", ".dvc/config", ".python-version", "dvc.yaml"}
TEMPLATE_ONLY = {"copier.yml", "docs/benchmarks.md", "dvc.lock"}
TEMPLATE_ONLY_DIRS = ("tests/template/", "reports/eval/")
RESULTS = {"reports/validation.json", "reports/drift.json", "reports/drift.md"}
ROOT_ANSWERS = {
    "project_name": "Ratchet",
    "project_slug": "ratchet",
    "description": "A DVC + scikit-learn project template whose model quality only moves forward.",
    "author": "The Ratchet authors",
    "dvc_remote_url": "../../ratchet-dvc-remote",
}


def git(cwd: Path, *args: str) -> str:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, **GIT_ENV}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def project_files(root: Path) -> list[str]:
    listing = git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    return sorted(name for name in set(listing.split("\0")) if name and (root / name).is_file())


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """This working tree as a template repository, tagged v1."""
    source = tmp_path_factory.mktemp("template") / "ratchet"
    for name in project_files(ROOT):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "template")
    git(source, "tag", "v1")
    return source


def render(template: Path, destination: Path, **answers) -> Path:
    run_copy(str(template), destination, data=answers, defaults=True, vcs_ref="v1", quiet=True)
    return destination


def rendered_files(project: Path) -> set[str]:
    return {
        p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file() and ".git/" not in p.as_posix()
    }


def test_defaults_leave_no_template_markers(template, tmp_path):
    project = render(template, tmp_path / "project")
    twins = [name.removesuffix(".jinja") for name in project_files(template) if name.endswith(".jinja")]
    assert set(twins) >= TWINNED
    for name in rendered_files(project):
        assert not name.endswith(".jinja"), name
    for name in twins:  # verbatim files never pass through Jinja; rendered twins must leave nothing behind
        text = (project / name.replace("{{_copier_conf.answers_file}}", ".copier-answers.yml")).read_text()
        assert "{%" not in text, name
        assert "{#" not in text, name
        assert not re.search(r"(?<!\$)\{\{", text), name
    assert "${{ github.base_ref }}" in (project / ".github/workflows/pr-report.yml").read_text()
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["project_slug"] == "my-ml-project"
    assert answers["_commit"] == "v1"
    assert 'name = "my-ml-project"' in (project / "pyproject.toml").read_text()
    assert 'name = "my-ml-project"' in (project / "uv.lock").read_text()
    assert "url = ../../my-ml-project-dvc-remote" in (project / ".dvc/config").read_text()
    assert (project / "README.md").read_text().startswith("# My ML project\n")
    assert (project / "src/pipeline/__init__.py").exists()


def test_rendering_the_roots_answers_reproduces_the_root(template, tmp_path):
    """Every twin renders back to its real file, and only intended files differ or stay behind."""
    project = render(template, tmp_path / "project", **ROOT_ANSWERS)
    root_files = set(project_files(template)) - {p for p in project_files(template) if p.endswith(".jinja")}
    missing = root_files - rendered_files(project)
    expected_missing = TEMPLATE_ONLY | RESULTS | {f for f in root_files if f.startswith(TEMPLATE_ONLY_DIRS)}
    assert missing == expected_missing
    assert rendered_files(project) - root_files == {".copier-answers.yml"}
    differing = {
        name for name in root_files - missing if not filecmp.cmp(template / name, project / name, shallow=False)
    }
    assert differing == {"README.md"}  # the project's README, not the template's


def test_default_answers_change_only_the_twinned_files(template, tmp_path):
    project = render(template, tmp_path / "project")
    root = render(template, tmp_path / "root", **ROOT_ANSWERS)
    shared = rendered_files(project) & rendered_files(root)
    differing = {n for n in shared if not filecmp.cmp(project / n, root / n, shallow=False)}
    assert differing <= TWINNED | {".copier-answers.yml"}
    assert {"pyproject.toml", "uv.lock", ".dvc/config", "LICENSE", "README.md"} <= differing


def test_slug_is_validated(template, tmp_path):
    with pytest.raises(ValueError, match="lowercase letters"):
        render(template, tmp_path / "bad", project_slug="Not A Slug")


def test_without_sample_data_the_ingest_stage_and_its_tests_stay_behind(template, tmp_path):
    project = render(template, tmp_path / "project", keep_sample_data=False)
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert "ingest" not in stages
    assert not (project / "src/pipeline/ingest.py").exists()
    assert not (project / "tests/unit/test_ingest.py").exists()
    assert "dvc add data/raw/reference.csv" in (project / "README.md").read_text()


def test_update_brings_template_changes_and_keeps_the_users_edits(template, tmp_path):
    project = render(template, tmp_path / "project")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    params = (project / "params.yaml").read_text().replace("test_size: 0.25", "test_size: 0.3")
    (project / "params.yaml").write_text(params)
    contract_path = project / "src/pipeline/contract.py"
    contract_path.write_text(contract_path.read_text().replace("le=7000", "le=8000"))
    git(project, "commit", "-qam", "our data")

    # A new template version: a new file, a changed Makefile, and params/contract edits it must not impose.
    (template / "NEWS.md").write_text("Template v2\n")
    makefile = template / "Makefile"
    makefile.write_text(makefile.read_text().replace("# Ratchet:", "# Ratchet (v2):"))
    (template / "params.yaml").write_text((template / "params.yaml").read_text().replace("seed: 42", "seed: 7"))
    contract = template / "src/pipeline/contract.py"
    contract.write_text(contract.read_text().replace("le=70,", "le=71,"))
    git(template, "add", "-A")
    git(template, "commit", "-q", "-m", "v2")
    git(template, "tag", "v2")

    run_update(project, data={}, defaults=True, overwrite=True, vcs_ref="v2", quiet=True)

    assert (project / "NEWS.md").read_text() == "Template v2\n"
    assert "# Ratchet (v2):" in (project / "Makefile").read_text()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v2"
    updated_params = (project / "params.yaml").read_text()
    assert "test_size: 0.3" in updated_params
    assert "seed: 7" not in updated_params
    updated_contract = contract_path.read_text()
    assert "le=8000" in updated_contract
    assert "le=71," not in updated_contract


@pytest.mark.integration
def test_a_new_project_runs_and_passes_its_own_tests_in_a_fresh_venv(template, tmp_path):
    """The one full run: the new project's own `make run` and `make test`, with a .venv of its own."""
    project = render(template, tmp_path / "project")
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "start")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "VIRTUAL_ENV"))}, **GIT_ENV}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != BIN)
    env.pop("PYTHONPATH", None)
    for target in ("run", "test"):
        done = subprocess.run(["make", target], cwd=project, env=env, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"make {target}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    assert (project / "dvc.lock").exists()
    assert "passed" in done.stdout
