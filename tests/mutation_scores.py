"""Per-module mutation scores from mutmut's last run (`make mutation` runs this after `mutmut run`).

    python tests/mutation_scores.py [MODULE ...]

Reads the results mutmut keeps in mutants/ and prints, for each core module,
how many mutants were killed, survived or had no test, and the score: killed
(a timeout counts as killed) over the behaviour-changing mutants, that is
every mutant except the equivalent ones. A mutant is equivalent when no input
can tell it from the original; each is listed, with the line it mutates and
the reason, in the "Equivalent mutants" table of docs/testing.md (the
template's own record). An entry whose text is no longer part of the line the
mutant changes is reported as stale: the code changed, so it needs a new look.

Exits 1 when a module scores below FLOOR or an entry is stale; the survivors
that no entry explains are listed either way. A project made from the template
has no docs/testing.md (copier leaves it out): there the scores count every
survivor and no floor applies.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
RECORD = ROOT / "docs" / "testing.md"
FLOOR = 90.0  # percent of the behaviour-changing mutants that the tests must kill
KILLED = {1, 3}  # pytest failed (3: an internal error, which mutmut also counts as a kill)
TIMEOUT = {36, 24, -24, 152, 255}  # the mutant ran past its time limit: an infinite loop is a change caught
NO_TESTS = {33, 5}  # no test reaches the mutated function
# A table row of docs/testing.md: | `pipeline.gate.x_judge__mutmut_12` | `part of the mutated line` | why |
# (a line holding a backtick goes in a ``double`` fence, and its pipes are escaped as \|, as GFM tables need).
ENTRY = re.compile(r"^\|\s*`(pipeline\.[^`]+)`\s*\|\s*(`+) ?(.*?) ?\2\s*\|(.*)\|\s*$")


@dataclass
class Module:
    name: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    survivors: list[str] = field(default_factory=list)
    no_tests: list[str] = field(default_factory=list)
    not_run: int = 0  # an interrupted run: these count as not killed until a run tests them

    @property
    def score(self) -> float:
        changing = self.total - self.equivalent
        return 100.0 * self.killed / changing if changing else 100.0


def equivalents(record: Path) -> dict[str, str]:
    """Mutant name -> the mutated line, from docs/testing.md's table (empty when the file is absent)."""
    if not record.exists():
        return {}
    found = {}
    for line in record.read_text(encoding="utf-8").splitlines():
        match = ENTRY.match(line)
        if match:
            found[match[1]] = match[3].replace("\\|", "|")
    return found


def function_bodies(source: str) -> dict[str, list[str]]:
    """Every function in a mutated module (originals and mutants) by name, as whitespace-normalised lines.

    The signature is kept (a mutant may change a default) without the function's own name.
    """
    lines = source.splitlines()
    bodies = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = [" ".join(line.split()) for line in lines[node.lineno - 1 : node.end_lineno]]
            bodies[node.name] = [body[0].replace(node.name, "", 1), *body[1:]]
    return bodies


def mutated_lines(bodies: dict[str, list[str]], mutant: str) -> list[str]:
    """The lines a mutant function has that the original lacks, or `without LINE` for a line it only drops."""
    function = mutant.rsplit(".", 1)[-1]
    original = bodies.get(re.sub(r"__mutmut_\d+$", "__mutmut_orig", function), [])
    changed = bodies.get(function, [])
    diff = list(difflib.ndiff(original, changed))
    added = [line[2:] for line in diff if line.startswith("+ ")]
    return added or [f"without {line[2:]}" for line in diff if line.startswith("- ")]


def main(argv: list[str]) -> int:
    wanted = set(argv)
    listed = equivalents(RECORD)
    modules: list[Module] = []
    stale: list[str] = []
    for meta in sorted(MUTANTS.glob("src/pipeline/*.py.meta")):
        name = meta.name.removesuffix(".py.meta")
        if wanted and name not in wanted:
            continue
        bodies = function_bodies(meta.with_suffix("").read_text(encoding="utf-8"))
        results = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        module = Module(f"{name}.py")
        for mutant, code in sorted(results.items()):
            module.total += 1
            if code is None:
                module.not_run += 1
                continue
            if code in KILLED or code in TIMEOUT:
                module.killed += 1
                continue
            if mutant in listed:
                lines = mutated_lines(bodies, mutant)
                if any(" ".join(listed[mutant].split()) in line for line in lines):
                    module.equivalent += 1
                    continue
                stale.append(f"{mutant}: docs/testing.md lists `{listed[mutant]}`; the mutant now changes {lines}")
            (module.no_tests if code in NO_TESTS else module.survivors).append(mutant)
        modules.append(module)
    if not modules:
        print("No mutation results in mutants/: run `make mutation` first.", file=sys.stderr)
        return 1

    print(f"{'module':<18}{'mutants':>8}{'killed':>8}{'survived':>9}{'no test':>8}{'equivalent':>11}{'score':>8}")
    for m in modules:
        print(
            f"{m.name:<18}{m.total:>8}{m.killed:>8}{len(m.survivors):>9}{len(m.no_tests):>8}"
            f"{m.equivalent:>11}{m.score:>7.1f}%"
        )
    unexplained = [name for m in modules for name in m.survivors + m.no_tests]
    if unexplained:
        print(f"\n{len(unexplained)} mutant(s) no test kills; `.venv/bin/mutmut show NAME` shows one:")
        for name in unexplained:
            print(f"  {name}")
    not_run = sum(m.not_run for m in modules)
    if not_run:
        print(f"\n{not_run} mutant(s) not run yet (an interrupted run?): `make mutation` runs them.")
    for line in stale:
        print(f"stale: {line}")
    if not RECORD.exists():  # a project made from the template: the template's review stays with it
        print(f"\nNo {RECORD.relative_to(ROOT)} lists the equivalent mutants here, so no survivor is reviewed and no")
        print(f"floor applies; the template's list explains most of them (its score floor is {FLOOR:g}%).")
        return 0
    low = [m.name for m in modules if m.score < FLOOR]
    if low:
        print(f"\nBelow {FLOOR:g}%: {', '.join(low)}. Kill the survivors with a test, or list an equivalent one.")
    return 1 if low or stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
