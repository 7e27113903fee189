"""Template migrations that `copier update` runs in the project (copier.yml `_migrations`).

    python .copier/migrate.py before|after TEMPLATE_DIR

Run by copier's own Python, with only the standard library and PyYAML, from
the project's directory, with VERSION_FROM and VERSION_TO in the environment.

- before: keep a copy of every file you changed that the template also ships,
  so that a file the new version no longer generates is not lost: copier
  deletes such files even when edited. After the update, each copy whose file
  is gone is put back, with a message; the others are dropped.
- after: remove the template's own machinery a project no longer gets (the
  extra test tiers unless `extra_test_tiers`): copier leaves files that a new
  exclusion drops, so unchanged ones are deleted here and changed ones kept,
  with a message; then migrate what a version changed in a way a merge cannot
  carry:
  - 0.2.0 made a binary target's positive class explicit (it was the last
    allowed value): `"positive": <that value>` is added to the target's
    metadata in src/pipeline/contract.py, so the model's metrics keep meaning
    the same thing;
  - then params.yaml is checked with the project's own loader when its venv
    exists, so a key the merge could not carry is reported by name now, not
    at the next `make run`.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

STASH = Path(".copier-stash")
# Directories of the template's machinery, and the answer that keeps them in a project.
MACHINERY = {
    "tests/parity": "extra_test_tiers",
    "tests/integration/remotes": "extra_test_tiers",
    "benchmarks": "extra_test_tiers",
    "tests/scale": "extra_test_tiers",
    "tests/integration/production": "extra_test_tiers",
    "tests/template": None,  # never in a project
}


def version(text: str | None) -> tuple[int, ...]:
    digits = (text or "0").lstrip("v").split("+")[0].split(".")
    parts = []
    for digit in digits:
        number = "".join(ch for ch in digit if ch.isdigit())
        parts.append(int(number) if number else 0)
    return tuple(parts)


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def before(template: Path) -> None:
    """Copy aside every project file that differs from the template's own file at the old version."""
    old = os.environ.get("VERSION_FROM", "")
    listed = git("ls-tree", "-r", "--name-only", old, cwd=template)
    if listed.returncode != 0:
        print(f"migrate: template version {old!r} not found; nothing kept aside")
        return
    for name in listed.stdout.splitlines():
        path = Path(name)
        if name.endswith(".jinja") or not path.is_file():
            continue
        pristine = git("show", f"{old}:{name}", cwd=template)
        if pristine.returncode == 0 and pristine.stdout != path.read_text(encoding="utf-8", errors="replace"):
            target = STASH / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def restore_stash() -> None:
    if not STASH.is_dir():
        return
    for kept in sorted(p for p in STASH.rglob("*") if p.is_file()):
        name = kept.relative_to(STASH)
        if not name.exists():
            name.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(kept, name)
            print(f"migrate: kept your edited {name}; the template no longer generates it (delete it if unused)")
    shutil.rmtree(STASH)


def positive_class_made_explicit(contract: Path) -> str | None:
    """Before 0.2.0 a binary target's positive class was its last allowed value; write that value down."""
    source = contract.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "Field"):
            continue
        keywords = {kw.arg: kw.value for kw in node.keywords}
        metadata, allowed = keywords.get("metadata"), keywords.get("isin")
        if not isinstance(metadata, ast.Dict) or not isinstance(allowed, ast.List | ast.Tuple):
            continue
        entries = {
            key.value: value
            for key, value in zip(metadata.keys, metadata.values, strict=True)
            if isinstance(key, ast.Constant)
        }
        role = entries.get("role")
        is_target = (isinstance(role, ast.Constant) and role.value == "target") or (
            isinstance(role, ast.Name) and role.id == "TARGET"
        )
        if not is_target or "positive" in entries or len(allowed.elts) != 2:
            continue
        last = ast.get_source_segment(source, allowed.elts[-1])
        data = source.encode()  # ast offsets count UTF-8 bytes
        line_starts = [0]
        for line in data.splitlines(keepends=True):
            line_starts.append(line_starts[-1] + len(line))
        brace = line_starts[metadata.end_lineno - 1] + metadata.end_col_offset - 1  # the dict's closing brace
        contract.write_bytes(data[:brace] + f', "positive": {last}'.encode() + data[brace:])
        return last
    return None


def drop_machinery(template: Path) -> None:
    """Delete the machinery files this project's answers leave out, when they are the old version's own."""
    import yaml

    answers = yaml.safe_load(Path(".copier-answers.yml").read_text(encoding="utf-8")) or {}
    old = os.environ.get("VERSION_FROM", "")
    for directory, answer in MACHINERY.items():
        if (answer and answers.get(answer)) or not Path(directory).is_dir():
            continue
        for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
            pristine = git("show", f"{old}:{path.as_posix()}", cwd=template)
            if pristine.returncode == 0 and pristine.stdout == path.read_text(encoding="utf-8", errors="replace"):
                path.unlink()
            elif "__pycache__" not in path.parts:
                print(f"migrate: kept your {path}: the template no longer ships {directory}/ to this project")
        for folder in sorted((p for p in Path(directory).rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(Path(directory).iterdir()):
            Path(directory).rmdir()


def after(template: Path) -> None:
    restore_stash()
    drop_machinery(template)
    old = version(os.environ.get("VERSION_FROM"))
    contract = Path("src/pipeline/contract.py")
    if old < (0, 2, 0) and contract.is_file():
        last = positive_class_made_explicit(contract)
        if last:
            print(f"migrate: src/pipeline/contract.py: the binary target's positive class is now explicit ({last})")
    python = Path(".venv/bin/python")
    if python.exists():
        checked = subprocess.run([str(python), "-m", "pipeline.params"], capture_output=True, text=True, check=False)
        if checked.returncode != 0:
            print("migrate: params.yaml needs attention after the update:\n" + checked.stderr, file=sys.stderr)
    else:
        print("migrate: run `make venv` then `.venv/bin/python -m pipeline.params` to check params.yaml")


if __name__ == "__main__":
    stage, template = sys.argv[1], Path(sys.argv[2])
    {"before": before, "after": after}[stage](template)
