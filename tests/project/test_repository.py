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


def readme_drawing(text: str) -> set[tuple[str, str]]:
    """The edges of the README's pipeline drawing (the mermaid block after "## The pipeline")."""
    section = text.split("## The pipeline", 1)[1]
    block = section.split("```mermaid", 1)[1].split("```", 1)[0]
    return set(re.findall(r"^\s*(\w+)(?:\[[^\]]*\])?\s*-->\s*(\w+)\s*$", block, flags=re.MULTILINE))


def pipeline_edges() -> set[tuple[str, str]]:
    """Stage-to-stage edges of `dvc dag`, with every source of raw data drawn as one node, `data`.

    Files added with `dvc add` or `dvc import-url` and a stage that only writes the raw
    files (the sample's ingest) are all "data", so bringing data never makes the drawing stale.
    """
    stages = yaml.safe_load(ROOT.joinpath("dvc.yaml").read_text())["stages"]
    raw = {
        p
        for key, p in yaml.safe_load(ROOT.joinpath("params.yaml").read_text())["paths"].items()
        if key.startswith("raw_")
    }
    sources = {name for name, stage in stages.items() if stage.get("outs") and {str(o) for o in stage["outs"]} <= raw}
    edges = set()
    for a, b in re.findall(r'^"([^"]+)" -> "([^"]+)";$', run("dvc", "dag", "--dot"), flags=re.MULTILINE):
        if b not in stages or b in sources:
            continue
        edges.add(("data" if a not in stages or a in sources else a, b))
    return edges


def test_readme_pipeline_drawing_is_current():
    expected = pipeline_edges()
    drawn = readme_drawing(ROOT.joinpath("README.md").read_text())
    mermaid = "\n".join(f"  {a} --> {b}" for a, b in sorted(expected))
    assert drawn == expected, f"README.md's pipeline drawing is out of date; draw these edges:\n{mermaid}"


def test_the_drawing_does_not_count_data_files_as_stages():
    """`dvc add` puts .dvc files in `dvc dag`; they are drawn as `data`, like the ingest stage."""
    assert {a for a, _ in pipeline_edges()} - set(yaml.safe_load(ROOT.joinpath("dvc.yaml").read_text())["stages"]) <= {
        "data"
    }


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
        read = set(re.findall(r"\bparams\.(\w+)", ast.unparse(main))) - {"paths", "yaml"}  # "params.yaml" in help
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


def test_no_file_holds_a_merge_conflict_or_a_rejected_patch():
    """What `copier update` leaves where the project and the template changed the same lines."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        text=True,
    ).stdout.split("\0")
    rejected = sorted(name for name in listed if name.endswith(".rej"))
    conflicted = []
    for name in listed:
        path = ROOT / name
        if not name or not path.is_file() or path.suffix in {".png", ".skops", ".parquet"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        if re.search(r"^(<{7} |>{7} )", text, flags=re.MULTILINE):
            conflicted.append(name)
    assert (conflicted, rejected) == ([], []), (
        "a template update left conflicts to resolve (edit each file, keep what you want, delete the markers, "
        f"`git add` it; delete .rej files once applied): markers in {conflicted or 'none'}, rejected patches "
        f"{rejected or 'none'}"
    )


def test_make_passes_user_values_through_the_environment_not_the_shell(tmp_path):
    marker = tmp_path / "pwned"
    done = subprocess.run(
        ["make", "--no-print-directory", "check", f"BASELINE=main;touch {marker}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
    )
    assert not marker.exists()
    assert done.returncode != 0
    assert "is not a git revision name" in done.stderr


def test_credentials_file_is_ignored():
    assert "/.dvc/config.local" in ROOT.joinpath(".gitignore").read_text().splitlines()


HEAVY = (
    "numpy",
    "pandas",
    "pyarrow",
    "pandera",
    "sklearn",
    "scipy",
    "skops",
    "dvc",
    "dvclive",
    "gto",
    "fastapi",
    "dask",
)


def test_help_imports_nothing_heavy():
    """`python -m pipeline.<module> --help` answers before any heavy library loads (the timing is in benchmarks)."""
    modules = sorted(
        path.stem
        for path in ROOT.joinpath("src/pipeline").glob("*.py")
        if "def main(" in path.read_text() and path.stem not in ("__init__", "__main__")
    )
    script = (
        "import importlib, sys\n"
        "loaded = {}\n"
        "for name in sys.argv[1:]:\n"
        "    before = set(sys.modules)\n"
        "    module = importlib.import_module('pipeline.' + name)\n"
        "    try:\n"
        "        module.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"    heavy = {HEAVY!r}\n"
        "    loaded[name] = sorted({m.split('.')[0] for m in set(sys.modules) - before} & set(heavy))\n"
        "print(loaded)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, *modules], capture_output=True, text=True, check=True)
    loaded = eval(done.stdout.strip().splitlines()[-1])
    assert {name: heavy for name, heavy in loaded.items() if heavy} == {}
