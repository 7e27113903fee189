"""Fixtures for the integration tier: the real git and dvc CLIs in temporary copies of the project.

`reproduced` (session scope) copies the project's files into a temp dir, makes
it a fresh git repository, points the DVC remote at a temp dir with
`--local`, runs the real `dvc repro` once and commits the result. The data is
the project's own, however it arrived: the sample's ingest stage, files added
with `dvc add`, or `dvc import-url` (the files a `.dvc` file tracks are copied
from the workspace). A project with no data yet skips this tier and says how
to bring data. Tests that change anything take `workspace`, a function-scoped
copy of that reproduced workspace (.git and .dvc/cache included), so the full
pipeline runs only once.

Every subprocess gets a hermetic environment: the venv's bin dir first on PATH
(dvc.yaml runs `python -m pipeline.<stage>`), PYTHONPATH at the copy's own
`src/` (the venv's editable install points at the original checkout), no
inherited GIT_* or DVC_* variables, and DVC's global and system config and its
site cache inside the temp dir, so nothing is written outside it.

Helpers are methods of the fixture objects, so tests never import this module
(`import conftest` is ambiguous beside tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# A guard against a hung subprocess, never an assertion: the slowest command takes well under a minute.
COMMAND_TIMEOUT = 900
IDENTITY = {"user.name": "Ratchet integration tests", "user.email": "integration-tests@ratchet.invalid"}


def _venv_bin() -> Path:
    """The bin dir of the venv running the tests (it holds dvc), else the project's .venv."""
    for candidate in (Path(sys.executable).parent, REPO_ROOT / ".venv" / "bin"):
        if (candidate / "dvc").exists() and (candidate / "python").exists():
            return candidate
    raise RuntimeError(f"no venv with dvc next to {sys.executable} or in {REPO_ROOT / '.venv'}")


VENV_BIN = _venv_bin()


def _clean_environ() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith(("GIT_", "DVC_"))}


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def stages_run(self) -> list[str]:
        """Stage names from dvc's "Running stage 'x':" lines, in order."""
        return re.findall(r"Running stage '([^']+)'", self.output)

    def describe(self, cwd: Path) -> str:
        return (
            f"`{' '.join(self.args)}` in {cwd} exited with {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


@dataclass(frozen=True)
class Workspace:
    """A project directory, plus the sandbox that holds DVC's global state for the session."""

    path: Path
    sandbox: Path
    threads: int | None = None

    def single_threaded(self) -> Workspace:
        """The same directory, with native thread pools limited to one thread in every command.

        On a small, busy machine OpenMP's spinning threads make a histogram gradient
        boosting fit several times slower. Only for tests that never compare model
        bytes with a run at the default thread count: the fitted model records it.
        """
        return replace(self, threads=1)

    # --- running commands -------------------------------------------------

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = _clean_environ()
        env.pop("PYTHONPATH", None)
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONPATH": str(self.path / "src"),
                "DVC_NO_ANALYTICS": "1",
                "DVC_GLOBAL_CONFIG_DIR": str(self.sandbox / "dvc-global-config"),
                "DVC_SYSTEM_CONFIG_DIR": str(self.sandbox / "dvc-system-config"),
                "DVC_SITE_CACHE_DIR": str(self.sandbox / "dvc-site-cache"),
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_TERMINAL_PROMPT": "0",
            }
        )
        if self.threads is not None:
            env["OMP_NUM_THREADS"] = str(self.threads)
        env.update(extra or {})
        return env

    def run(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
        completed = subprocess.run(
            args,
            cwd=self.path,
            env=self.env(env),
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        result = Result(tuple(args), completed.returncode, completed.stdout, completed.stderr)
        if check and result.returncode != 0:
            raise AssertionError(result.describe(self.path))
        return result

    def dvc(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
        return self.run(str(VENV_BIN / "dvc"), *args, check=check, env=env)

    def python(self, *args: str, check: bool = True) -> Result:
        return self.run(str(VENV_BIN / "python"), *args, check=check)

    def git(self, *args: str, check: bool = True) -> Result:
        return self.run("git", *args, check=check)

    # --- git and dvc state ------------------------------------------------

    def porcelain(self) -> str:
        return self.git("status", "--porcelain").stdout

    def commit(self, message: str) -> None:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "--no-verify", "-m", message)

    def tracked(self) -> set[str]:
        return set(self.git("ls-files").stdout.splitlines())

    def set_remote(self, url: Path) -> None:
        """Point the committed remote "local" at `url`, in .dvc/config.local only."""
        self.dvc("remote", "modify", "--local", "local", "url", str(url))

    def params(self) -> dict:
        return yaml.safe_load((self.path / "params.yaml").read_text(encoding="utf-8"))

    def lock(self) -> dict:
        return yaml.safe_load((self.path / "dvc.lock").read_text(encoding="utf-8"))

    def lock_md5s(self) -> dict[tuple[str, str, str], str]:
        """Every (stage, deps|outs, path) -> md5 that dvc.lock records."""
        return {
            (stage, kind, entry["path"]): entry["md5"]
            for stage, body in self.lock()["stages"].items()
            for kind in ("deps", "outs")
            for entry in body.get(kind, [])
        }

    def dvc_file_md5s(self) -> dict[str, str]:
        """Every path a `.dvc` file (`dvc add`, `dvc import-url`) tracks -> the md5 it records."""
        found = {}
        for name in self.tracked():
            if name.endswith(".dvc"):
                entry = yaml.safe_load((self.path / name).read_text(encoding="utf-8")) or {}
                for out in entry.get("outs", []):
                    found[(Path(name).parent / out["path"]).as_posix()] = out["md5"]
        return found

    def locked_out_md5(self, path: str) -> str:
        """The md5 dvc.lock (a stage's out) or a `.dvc` file (added data) records for a path."""
        for (_, kind, entry), md5 in self.lock_md5s().items():
            if kind == "outs" and entry == path:
                return md5
        added = self.dvc_file_md5s()
        if path in added:
            return added[path]
        raise KeyError(f"{path} is not an output in {self.path / 'dvc.lock'} nor tracked by a .dvc file")

    def cached_outputs(self) -> list[str]:
        """Files DVC caches, pushes and pulls: stage outputs not committed to git, and added data."""
        tracked = self.tracked()
        outs = {
            entry
            for (_, kind, entry), md5 in self.lock_md5s().items()
            if kind == "outs" and not md5.endswith(".dir") and entry not in tracked
        }
        added = {path for path, md5 in self.dvc_file_md5s().items() if not md5.endswith(".dir")}
        return sorted(outs | added)

    def md5(self, path: str) -> str:
        return hashlib.md5((self.path / path).read_bytes(), usedforsecurity=False).hexdigest()

    def in_cache(self, md5: str) -> bool:
        return (self.path / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]).is_file()

    # --- the pipeline as dvc.yaml declares it ---------------------------------

    def stages(self) -> dict[str, dict]:
        return yaml.safe_load((self.path / "dvc.yaml").read_text(encoding="utf-8"))["stages"]

    def resolve(self, text: str) -> str:
        params = self.params()

        def lookup(match: re.Match[str]) -> str:
            value: object = params
            for key in match[1].split("."):
                value = value[key]  # type: ignore[index]
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", lookup, text)

    def _paths(self, entries: list) -> set[str]:
        names = (entry if isinstance(entry, str) else next(iter(entry)) for entry in entries)
        return {self.resolve(name).rstrip("/") for name in names}

    def outputs(self) -> dict[str, set[str]]:
        """Each stage's outs, metrics and plots, as resolved paths."""
        return {
            name: self._paths(body.get("outs", []) + body.get("metrics", []) + body.get("plots", []))
            for name, body in self.stages().items()
        }

    @staticmethod
    def overlaps(a: str, b: str) -> bool:
        """Same path, or one inside the other."""
        return a == b or a.startswith(b + "/") or b.startswith(a + "/")

    def downstream(self, stage: str) -> set[str]:
        """Every stage that depends, directly or not, on an output of `stage` (per dvc.yaml)."""
        stages = self.stages()
        outs = self.outputs()
        deps = {name: self._paths(body.get("deps", [])) for name, body in stages.items()}
        found: set[str] = set()
        frontier = [stage]
        while frontier:
            current = frontier.pop()
            for name in stages:
                if name not in found and any(self.overlaps(o, d) for o in outs[current] for d in deps[name]):
                    found.add(name)
                    frontier.append(name)
        return found

    # --- copies -------------------------------------------------------------

    def copy_to(self, dest: Path) -> Workspace:
        """A full copy, .git and .dvc/cache included, so nothing needs recomputing."""
        shutil.copytree(self.path, dest, symlinks=True)
        return replace(self, path=dest)

    def clone_to(self, dest: Path) -> Workspace:
        """`git clone`: committed files only; no DVC cache and no .dvc/config.local come along."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.git("clone", "-q", str(self.path), str(dest))
        clone = replace(self, path=dest)
        clone.set_identity()
        return clone

    def set_identity(self) -> None:
        for key, value in IDENTITY.items():
            self.git("config", key, value)
        self.git("config", "commit.gpgsign", "false")


@dataclass(frozen=True)
class Reproduced:
    """The session's reproduced workspace and what its first `dvc repro` left behind."""

    workspace: Workspace
    repro: Result
    porcelain_after_repro: str
    diff_after_repro: str


def _project_files(root: Path) -> list[str]:
    """What `git add -A` would commit: tracked files plus untracked ones that are not ignored.

    Untracked, unignored files count so that a new module the pipeline already
    imports (but nobody has committed yet) is tested rather than missing.
    """
    completed = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        env=_clean_environ(),
        capture_output=True,
        check=True,
    )
    return sorted({name for name in completed.stdout.decode().split("\0") if name})


def copy_project(dest: Path) -> None:
    for name in _project_files(REPO_ROOT):
        origin = REPO_ROOT / name
        if not origin.exists() and not origin.is_symlink():
            continue  # tracked, but deleted in the working tree
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target, follow_symlinks=False)


def dvc_tracked_data(root: Path) -> dict[str, list[str]]:
    """Each `.dvc` file of the project (`dvc add`, `dvc import-url`) and the paths it tracks, relative to the root."""
    tracked = {}
    for name in _project_files(root):
        if name.endswith(".dvc") and (root / name).is_file():
            entry = yaml.safe_load((root / name).read_text(encoding="utf-8")) or {}
            tracked[name] = [(Path(name).parent / out["path"]).as_posix() for out in entry.get("outs", [])]
    return tracked


def copy_own_data(dest: Path) -> list[str]:
    """Copy the data the project's `.dvc` files track into `dest`; returns those `.dvc` files."""
    tracked = dvc_tracked_data(REPO_ROOT)
    for paths in tracked.values():
        for name in paths:
            origin = REPO_ROOT / name
            if not origin.exists():
                pytest.fail(f"{name} is tracked by DVC but not in the workspace: run `dvc pull` (or `dvc checkout`)")
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                shutil.copytree(origin, target)
            else:
                shutil.copy2(origin, target)
    return sorted(tracked)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ratchet-integration")
    config_dir = root / "dvc-global-config"
    config_dir.mkdir()
    (config_dir / "config").write_text("[core]\n    check_update = false\n", encoding="utf-8")
    return root


def _reproduce(workspace: Workspace) -> Reproduced:
    """The project copied into `workspace.path`, a fresh git repo (branch main), reproduced with `dvc repro`."""
    workspace.path.mkdir(parents=True)
    copy_project(workspace.path)
    workspace.git("init", "-q", "-b", "main")
    workspace.set_identity()
    workspace.commit("The project under test")
    workspace.set_remote(workspace.path.parent / "remote")
    own_data = copy_own_data(workspace.path)
    if own_data:  # into the copy's own DVC cache, as `dvc add` put it into the project's
        workspace.dvc("commit", "--force", *own_data)
    elif "ingest" not in workspace.stages():
        pytest.skip(
            "the project has no data yet: bring your data as the README says (`dvc add` the raw files), "
            "then `make run` and `make test`"
        )
    repro = workspace.dvc("repro")
    porcelain = workspace.porcelain()
    diff = workspace.git("diff", "HEAD").stdout
    # Copies start clean and committed: dvc exp run and git clone need that.
    workspace.commit("dvc repro")
    return Reproduced(workspace, repro, porcelain, diff)


@pytest.fixture(scope="session")
def reproduced(sandbox: Path, tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Reproduced:
    """The project in a fresh git repo (branch main), reproduced once with the real `dvc repro`.

    Once per test run, not once per pytest-xdist worker: the first worker to get
    here reproduces (under a file lock) and records what the run printed; every
    worker then works on its own full copy (.git and the DVC cache included), so
    no two workers run dvc in one repository.
    """
    if worker_id == "master":  # no xdist
        return _reproduce(Workspace(sandbox / "session" / "repo", sandbox))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "reproduced"
    record = shared / "record.json"
    with FileLock(f"{shared}.lock"):
        if not record.is_file():
            shared.mkdir(exist_ok=True)
            try:
                made = _reproduce(Workspace(shared / "session" / "repo", sandbox))
            except pytest.skip.Exception as skipped:
                record.write_text(json.dumps({"skip": skipped.msg}), encoding="utf-8")
                raise
            result = made.repro
            record.write_text(
                json.dumps(
                    {
                        "repro": [list(result.args), result.returncode, result.stdout, result.stderr],
                        "porcelain": made.porcelain_after_repro,
                        "diff": made.diff_after_repro,
                    }
                ),
                encoding="utf-8",
            )
    recorded = json.loads(record.read_text(encoding="utf-8"))
    if "skip" in recorded:
        pytest.skip(recorded["skip"])
    (sandbox / "session").mkdir(exist_ok=True)
    copy = Workspace(shared / "session" / "repo", sandbox).copy_to(sandbox / "session" / "repo")
    args, code, stdout, stderr = recorded["repro"]
    return Reproduced(copy, Result(tuple(args), code, stdout, stderr), recorded["porcelain"], recorded["diff"])


@pytest.fixture
def workspace(reproduced: Reproduced, tmp_path: Path) -> Workspace:
    """A private copy of the reproduced, committed workspace that a test may change freely."""
    return reproduced.workspace.copy_to(tmp_path / "repo")


@pytest.fixture
def project_copy(sandbox: Path, tmp_path: Path) -> Workspace:
    """The project's files alone: no git repository, no venv, nothing reproduced."""
    copy = Workspace(tmp_path / "project", sandbox)
    copy.path.mkdir()
    copy_project(copy.path)
    return copy


@pytest.fixture
def make(workspace: Workspace, tmp_path: Path):
    """`make TARGET ...` in the workspace, with the test's venv (`BIN=`) and a fresh stamp (`STAMP=`).

    So make never builds or syncs a virtual environment, and runs without the
    flags of a `make test` that may be running this test.
    """
    found = shutil.which("make")
    if found is None:
        pytest.skip("make is not installed")
    stamp = tmp_path / "venv-is-synced"
    stamp.touch()

    def run(*args: str, check: bool = True) -> Result:
        overrides = [f"BIN={VENV_BIN}", f"STAMP={stamp}"]
        return workspace.run(found, *overrides, *args, check=check, env={"MAKEFLAGS": "", "MAKELEVEL": ""})

    return run
