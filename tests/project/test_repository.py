"""The repository's own promises: docs that match the code, and dvc.yaml discipline.

These guard what a newcomer reads first (README, `make help`) and what keeps
`dvc repro` honest: every stage declares the modules it imports, so a code
change re-runs exactly the stages it affects.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Modules whose changes cannot change a stage's outputs: messages and param parsing.
NO_OUTPUT_EFFECT = {"errors", "params"}


def run(*args: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(args, cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout


def test_readme_opens_with_the_two_commands():
    first_block = ROOT.joinpath("README.md").read_text().split("```")[1]
    assert [line.split("#")[0].strip() for line in first_block.splitlines()[1:3]] == ["make run", "make test"]


def test_readme_dag_is_current():
    assert run("dvc", "dag", "--md").strip() in ROOT.joinpath("README.md").read_text()


def test_make_help_lists_every_documented_target():
    listed = run("make", "help")
    targets = re.findall(r"^([a-z-]+):.*## ", ROOT.joinpath("Makefile").read_text(), flags=re.MULTILINE)
    assert {"run", "test"} <= set(targets)
    for target in targets:
        assert f"make {target}" in listed


def test_each_stage_declares_the_modules_it_imports():
    stages = yaml.safe_load(ROOT.joinpath("dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        module = stage["cmd"].removeprefix("python -m pipeline.")
        deps = set(stage["deps"])
        needed = {f"src/pipeline/{m}.py" for m in _pipeline_imports(module) - NO_OUTPUT_EFFECT}
        assert needed <= deps, f"stage {name} is missing deps {sorted(needed - deps)}"


def _pipeline_imports(module: str, seen: set[str] | None = None) -> set[str]:
    """The pipeline modules `module` imports, directly or through other pipeline modules."""
    seen = seen if seen is not None else set()
    if module in seen:
        return seen
    seen.add(module)
    if module in NO_OUTPUT_EFFECT:
        return seen  # what params.py imports to check names (metrics) cannot change an output either
    tree = ast.parse(ROOT.joinpath(f"src/pipeline/{module}.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline."):
            _pipeline_imports(node.module.removeprefix("pipeline."), seen)
    return seen


def test_each_stage_declares_the_params_sections_it_reads():
    stages = yaml.safe_load(ROOT.joinpath("dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        source = ROOT.joinpath(f"src/pipeline/{stage['cmd'].removeprefix('python -m pipeline.')}.py").read_text()
        main = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "main")
        read = set(re.findall(r"\bparams\.(\w+)", ast.unparse(main))) - {"paths"}
        assert read <= set(stage.get("params", [])), f"stage {name} reads params {sorted(read)} but declares fewer"


def test_bootstrap_uv_matches_the_locked_uv():
    lock = tomllib.loads(ROOT.joinpath("uv.lock").read_text())
    locked = next(p["version"] for p in lock["package"] if p["name"] == "uv")
    assert f"uv=={locked} " in ROOT.joinpath("requirements-bootstrap.txt").read_text()


def test_every_locked_package_has_hashes():
    lock = tomllib.loads(ROOT.joinpath("uv.lock").read_text())
    for package in lock["package"]:
        if package.get("source", {}).get("editable") or package.get("source", {}).get("virtual"):
            continue
        files = package.get("wheels", []) + ([package["sdist"]] if "sdist" in package else [])
        assert files, package["name"]
        assert all(f["hash"].startswith("sha256:") for f in files), package["name"]


def test_credentials_file_is_ignored():
    assert "/.dvc/config.local" in ROOT.joinpath(".gitignore").read_text().splitlines()
