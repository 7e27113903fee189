"""Ratchet as a copier template: twins, answers, the project without sample data, and real projects per task.

The template source is a snapshot of this working tree (tracked and
unignored files) committed to a temporary git repository and tagged, so the
tests see uncommitted edits too and `copier update` has versions to move
between. These tests are excluded from projects made from the template.

The slow ones are the point: for each task a project is made without the
sample data, a dataset shipped inside scikit-learn is brought in exactly as
the generated README says (`dvc add`, the Contract class written for it), and
the project's own `make run` and `make test` must pass in a fresh virtual
environment of its own. Multiclass and regression start from this version;
the binary one starts from the first release (0.1.0), runs there, and is
brought to this version with `copier update` before its `make run` and
`make test`, which is how existing projects get here. Another update, with a
user edit on the same lines as the template's, must stop at the conflict.
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
from shipped_data import load

from pipeline.params import parse_params

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
TWINNED = {
    "README.md",
    "pyproject.toml",
    "uv.lock",
    "LICENSE",
    ".dvc/config",
    ".python-version",
    "dvc.yaml",
    "params.yaml",
    "Makefile",
}
INCLUDED = {
    "pyproject.toml",
    "uv.lock",
    "dvc.yaml",
    "params.yaml",
    "Makefile",
}  # twins that {% include %} the real file
TEMPLATE_ONLY = {
    "copier.yml",
    ".copier/migrate.py",
    "CHANGELOG.md",
    "docs/benchmarks.md",
    "docs/testing.md",
    "dvc.lock",
}
TEMPLATE_ONLY_DIRS = ("tests/template/", "reports/eval/")
RESULTS = {"reports/validation.json", "reports/drift.json", "reports/drift.md"}
ROOT_ANSWERS = {
    "project_name": "Ratchet",
    "project_slug": "ratchet",
    "description": "A DVC + scikit-learn project template whose model quality only moves forward.",
    "author": "The Ratchet authors",
    "dvc_remote_url": "../../ratchet-dvc-remote",
    "keep_sample_data": True,
    "extra_test_tiers": True,
}
EXTRA_TIERS = (
    "tests/parity/",
    "tests/integration/remotes/",
    "tests/integration/production/",
    "benchmarks/",
    "tests/scale/",
)
# The first release (tag v0.1.0): gates not yet per task, the positive class implicit.
FIRST_RELEASE = "7fed8d0ec97b"


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
    run_copy(str(template), destination, data=answers, defaults=True, vcs_ref="v1", quiet=True, unsafe=True)
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


def test_twins_include_their_real_file_which_has_no_jinja_syntax(template):
    """A twin that `{% include %}`s its real file renders it as Jinja too: the real file must stay plain."""
    for name in INCLUDED:
        twin = (template / f"{name}.jinja").read_text()
        assert f"{{% include '{name}' %}}" in twin, name
        assert len(twin) < 2000, f"{name}.jinja should include {name}, not copy it"
        real = (template / name).read_text()
        assert not re.search(r"\{\{|\{%|\{#", real), f"{name} holds Jinja syntax, which its twin would render"


def test_rendering_the_roots_answers_reproduces_the_root(template, tmp_path):
    """Every twin renders back to its real file, and only intended files differ or stay behind."""
    project = render(template, tmp_path / "project", **ROOT_ANSWERS)
    root_files = set(project_files(template)) - {p for p in project_files(template) if p.endswith(".jinja")}
    missing = root_files - rendered_files(project)
    expected_missing = (TEMPLATE_ONLY | RESULTS) & root_files | {
        f for f in root_files if f.startswith(TEMPLATE_ONLY_DIRS)
    }
    assert missing == expected_missing
    assert rendered_files(project) - root_files == {".copier-answers.yml"}
    differing = {
        name for name in root_files - missing if not filecmp.cmp(template / name, project / name, shallow=False)
    }
    assert differing == {"README.md"}  # the project's README, not the template's


def test_default_answers_change_only_the_twinned_files(template, tmp_path):
    project = render(template, tmp_path / "project", keep_sample_data=True, extra_test_tiers=True)
    root = render(template, tmp_path / "root", **ROOT_ANSWERS)
    shared = rendered_files(project) & rendered_files(root)
    differing = {n for n in shared if not filecmp.cmp(project / n, root / n, shallow=False)}
    assert differing <= TWINNED | {".copier-answers.yml"}
    assert {"pyproject.toml", "uv.lock", ".dvc/config", "LICENSE", "README.md"} <= differing


def test_slug_is_validated(template, tmp_path):
    with pytest.raises(ValueError, match="lowercase letters"):
        render(template, tmp_path / "bad", project_slug="Not A Slug")


def test_without_sample_data_nothing_of_the_sample_stays(template, tmp_path):
    project = render(template, tmp_path / "project", keep_sample_data=False)
    assert "ingest" not in yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert not (project / "src/pipeline/ingest.py").exists()
    assert not (project / "tests/sample").exists()
    raw = yaml.safe_load((project / "params.yaml").read_text())
    assert "ingest" not in raw
    params = parse_params(raw)  # loads without an ingest section
    assert params.gates.classification.metrics == {}  # no penguin-tuned floors to fail a first run
    assert "set them from your" in (project / "params.yaml").read_text()
    readme = (project / "README.md").read_text()
    assert ".venv/bin/dvc add data/raw/reference.csv data/raw/current.csv" in readme
    for word in ("penguin", "PAL0910", "sex", "culmen", "ingest"):
        assert word not in readme, word
        assert word not in (project / "params.yaml").read_text(), word


def test_template_machinery_stays_in_the_template(template, tmp_path):
    project = render(template, tmp_path / "project")
    files = rendered_files(project)
    for prefix in (*EXTRA_TIERS, "tests/template/"):
        assert not any(name.startswith(prefix) for name in files), prefix
    makefile = (project / "Makefile").read_text()
    for word in ("evidently", "benchmark", "twins", "[extra test tiers]"):
        assert word not in makefile.lower(), word
    kept = render(template, tmp_path / "kept", extra_test_tiers=True)
    assert {"tests/parity/test_evidently_parity.py", "benchmarks/drift_benchmark.py"} <= rendered_files(kept)
    assert "evidently-env:" in (kept / "Makefile").read_text()


def test_the_template_readme_has_no_placeholder_that_fails_when_pasted():
    readme = ROOT.joinpath("README.md").read_text()
    assert "<owner>" not in readme
    for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.DOTALL):
        for line in block.splitlines():
            command = line.split("#", 1)[0]
            assert not re.search(r"<[a-z-]+>", command), line


def test_the_generated_quick_start_is_in_order(template, tmp_path):
    project = render(template, tmp_path / "project", keep_sample_data=False)
    readme = (project / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    order = [
        "pip install copier",
        "copier copy --trust " + str(template),
        "git init -b main",
        "make venv",
        "git add -A && git commit",
        "dvc add data/raw/reference.csv data/raw/current.csv",
        "make run",
        "make test",
    ]
    positions = [block.index(step) for step in order]
    assert positions == sorted(positions), block


# The real thing: a project per task, data brought in as the README says, its own make run and make test.


def bring_shipped_data(project: Path, kind: str) -> None:
    shipped = load(kind)
    (project / "data/raw").mkdir(parents=True, exist_ok=True)
    shipped.reference.to_csv(project / "data/raw/reference.csv", index=False)
    shipped.current.to_csv(project / "data/raw/current.csv", index=False)
    (project / "src/pipeline/contract.py").write_text(shipped.contract, encoding="utf-8")


def fresh_env() -> dict[str, str]:
    """The environment of a user's shell: no venv of ours on PATH, no PYTHONPATH."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "VIRTUAL_ENV"))}, **GIT_ENV}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != BIN)
    env.pop("PYTHONPATH", None)
    return env


def sh(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=project, env=fresh_env(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    return done


def assert_stages_ran_preloaded(run: subprocess.CompletedProcess) -> None:
    """`make run` ran every stage it ran in the preload server (pipeline.preload), none on its own."""
    output = run.stdout + run.stderr
    served = re.search(r"preload: (\d+) stage run\(s\) forked from the preloaded server(.*)", output)
    assert served, output[-3000:]
    assert int(served[1]) == len(re.findall(r"Running stage '", output)) > 0, output[-3000:]
    assert "in their own process" not in served[0]


@pytest.mark.projects
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_a_new_project_on_real_data_runs_and_passes_its_own_tests(template, tmp_path, kind):
    """The generated README's quick start, step by step, on scikit-learn's shipped datasets."""
    project = render(template, tmp_path / f"project-{kind}", keep_sample_data=False)
    sh(project, "git", "init", "-q", "-b", "main")
    sh(project, "make", "venv")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Start from the Ratchet template")
    bring_shipped_data(project, kind)
    sh(project, ".venv/bin/dvc", "add", "-q", "data/raw/reference.csv", "data/raw/current.csv")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Our data and its contract")
    run = sh(project, "make", "run")
    assert "All gates passed" in run.stderr + run.stdout
    assert_stages_ran_preloaded(run)
    task = yaml.safe_load((project / "reports/eval/task.json").read_text())
    assert task["task"] == ("regression" if kind == "regression" else "classification")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "First results")
    tested = sh(project, "make", "test")
    assert re.search(r"\d+ passed", tested.stdout), tested.stdout[-2000:]
    assert " failed" not in tested.stdout
    assert sh(project, "git", "status", "--porcelain").stdout == ""


# copier update: from the first release to this version


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A template repository with the first release (tag v0.1.0) and this working tree on top (tag v0.2.0)."""
    source = tmp_path_factory.mktemp("history") / "ratchet"
    source.mkdir()
    archive = subprocess.run(["git", "archive", FIRST_RELEASE], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "0.1.0")
    git(source, "tag", "v0.1.0")
    for path in source.iterdir():
        if path.name != ".git":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for name in project_files(ROOT):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    git(source, "add", "-A")
    git(source, "commit", "-q", "-m", "0.2.0")
    git(source, "tag", "v0.2.0")
    return source


def first_release_contract(project: Path, kind: str) -> str:
    """The 0.1.0 contract.py with its Contract class replaced by one for the shipped data, in 0.1.0's style:
    a binary target names no positive class (0.1.0 took the last allowed value)."""
    old = (project / "src/pipeline/contract.py").read_text()
    new = load(kind).contract
    own_class = new[new.index("class Contract") :].replace(', "positive": "malignant"', "")
    return old[: old.index("class Contract")] + own_class + "\n\n" + old[old.index("@dataclass") :]


def update(project: Path) -> None:
    run_update(project, data={}, defaults=True, overwrite=True, unsafe=True, quiet=True, conflict="inline")


@pytest.mark.projects
def test_a_project_of_the_first_release_updates_and_passes(history, tmp_path):
    """Binary data, brought in and run under 0.1.0; `copier update` to 0.2.0; then make run and make test."""
    project = tmp_path / "project-binary"
    run_copy(str(history), project, data={"keep_sample_data": False}, defaults=True, vcs_ref="v0.1.0", quiet=True)
    sh(project, "git", "init", "-q", "-b", "main")
    sh(project, "make", "venv")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Start from the Ratchet template 0.1.0")
    contract = first_release_contract(project, "binary")
    bring_shipped_data(project, "binary")
    (project / "src/pipeline/contract.py").write_text(contract, encoding="utf-8")
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace("test_size: 0.25", "test_size: 0.3"), encoding="utf-8")
    sh(project, ".venv/bin/dvc", "add", "-q", "data/raw/reference.csv", "data/raw/current.csv")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Our data, its contract and our params")
    sh(project, "make", "run")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Results under 0.1.0")

    update(project)

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v0.2.0"
    updated = (project / "params.yaml").read_text()
    assert "test_size: 0.3" in updated  # the user's value stays
    assert "serve:" in updated  # new keys arrive
    assert "max_request_bytes: 1048576" in updated
    assert "  classification:\n" in updated  # the renamed gates
    assert "<<<<<<<" not in updated
    parse_params(yaml.safe_load(updated))
    contract = (project / "src/pipeline/contract.py").read_text()
    assert "mean_radius" in contract  # the user's class is untouched ...
    assert '"positive": "malignant"' in contract  # ... but for the positive class, made explicit
    assert (project / "src/pipeline/predict.py").exists()  # new stages and files arrive
    assert "predict" in yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert not (project / "tests/parity").exists()  # what the template no longer ships to projects goes

    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Update from the template to 0.2.0")
    run = sh(project, "make", "run")
    assert "All gates passed" in run.stderr + run.stdout
    assert_stages_ran_preloaded(run)
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Results under 0.2.0")
    tested = sh(project, "make", "test")
    assert re.search(r"\d+ passed", tested.stdout), tested.stdout[-2000:]
    assert " failed" not in tested.stdout
    assert sh(project, "git", "status", "--porcelain").stdout == ""


def test_an_update_that_conflicts_with_a_user_edit_stops_make_with_the_file_named(history, tmp_path):
    project = tmp_path / "project"
    run_copy(str(history), project, defaults=True, vcs_ref="v0.1.0", quiet=True)  # with the sample data
    sh(project, "git", "init", "-q", "-b", "main")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Start from the Ratchet template 0.1.0")
    params = (project / "params.yaml").read_text()
    (project / "params.yaml").write_text(params.replace("roc_auc: {min: 0.80}", "roc_auc: {min: 0.70}"))
    benchmark = project / "benchmarks/drift_benchmark.py"  # a file 0.2.0 no longer ships to projects
    benchmark.write_text(benchmark.read_text() + "\n# our own tweak\n")
    sh(project, "git", "add", "-A")
    sh(project, "git", "commit", "-q", "-m", "Our floor, our benchmark tweak")

    update(project)

    assert "<<<<<<< before updating" in (project / "params.yaml").read_text()
    assert "# our own tweak" in benchmark.read_text()  # edited: kept, though the template dropped it
    assert not (project / "tests/parity/test_evidently_parity.py").exists()  # untouched and dropped: removed
    for target in ("conflicts", "test", "run"):
        done = subprocess.run(["make", target], cwd=project, env=fresh_env(), capture_output=True, text=True)
        assert done.returncode != 0, target
        assert "copier update left conflicts to resolve" in done.stderr, target
        assert "  params.yaml" in done.stderr, target
        assert "Traceback" not in done.stderr
    assert not (project / ".venv").exists()  # stopped before doing anything else
