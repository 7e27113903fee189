"""A project's git-tracked files copied into a fresh git repository, and a hermetic environment to run it in.

Shared by the benchmarks that run `dvc repro` (scale_benchmark.py,
sample_repro_benchmark.py): the copy runs its own src/ with a given venv, and
DVC's global, system and site state stays in a sandbox beside it, so nothing
is written outside the temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def environment(venv_bin: Path, copy: Path, sandbox: Path, threads: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "DVC_", "PYTHONPATH"))}
    env.update(
        {
            "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(copy / "src"),
            "OMP_NUM_THREADS": threads,
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(sandbox / "dvc-global-config"),
            "DVC_SYSTEM_CONFIG_DIR": str(sandbox / "dvc-system-config"),
            "DVC_SITE_CACHE_DIR": str(sandbox / "dvc-site-cache"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "benchmark",
            "GIT_AUTHOR_EMAIL": "benchmark@ratchet.invalid",
            "GIT_COMMITTER_NAME": "benchmark",
            "GIT_COMMITTER_EMAIL": "benchmark@ratchet.invalid",
        }
    )
    return env


def copy_project(source: Path, target: Path, env: dict[str, str]) -> None:
    """The files git tracks in `source`, as they are in its working tree, committed in a new repository."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=source, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if (source / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)
    for command in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "copy"]):
        subprocess.run(command, cwd=target, env=env, check=True, capture_output=True)
