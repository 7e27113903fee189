"""Committed results at another git revision: the baseline that gates and reports compare against.

Results live in git (`reports/` is small and committed), so the baseline is
whatever a revision committed, read with `git show`. A branch name also
resolves through `origin/`, as CI checkouts often have only the remote branch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeline.errors import ConfigError


def check_revision(rev: str) -> str:
    """A revision name that is safe to hand to git (and to a shell); anything else is a ConfigError."""
    from pipeline.params import REVISION

    if not REVISION.fullmatch(rev) or ".." in rev or rev.endswith((".", "/", ".lock")):
        raise ConfigError(f"{rev!r} is not a git revision name (letters, digits and ._/-~^@, no '..')")
    return rev


def resolve_revision(rev: str, repo: Path = Path()) -> str | None:
    """The commit a revision names, trying `origin/<rev>` too; None when neither exists."""
    check_revision(rev)
    for candidate in (rev, f"origin/{rev}"):
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def read_committed(commit: str, path: str, repo: Path = Path()) -> str | None:
    """A file's text at a commit (path relative to the repo root); None when it was not committed there."""
    done = subprocess.run(
        ["git", "show", f"{commit}:{Path(path).as_posix()}"], cwd=repo, capture_output=True, text=True, check=False
    )
    return done.stdout if done.returncode == 0 else None


def read_committed_json(commit: str | None, path: str, repo: Path = Path()) -> dict | None:
    """A committed JSON result; None when not committed there, a one-line error when it is not valid JSON."""
    from pipeline.files import parse_json

    if commit is None:
        return None
    text = read_committed(commit, path, repo)
    fix = "fix or re-run it on that revision, or compare with another --baseline"
    return parse_json(text, f"{path} at {commit[:12]}", fix) if text is not None else None


def list_committed(commit: str, directory: str, repo: Path = Path()) -> list[str]:
    """Paths of the files committed under a directory at a commit (empty when there are none)."""
    done = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", commit, "--", Path(directory).as_posix()],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split() if done.returncode == 0 else []
