"""Start-up: `dvc repro -f` on the sample data and each stage's `--help`, this version against an older one.

    git clone --branch v0.1.0 . /tmp/v010 && make -C /tmp/v010 venv
    .venv/bin/python benchmarks/sample_repro_benchmark.py --old /tmp/v010

Both projects are copied (their git-tracked files) into temporary git
repositories, each runs with its own .venv and its own src/ (PYTHONPATH), and
they take turns, `--rounds` times: old, new, old, new... so the machine's
load falls on both alike. On the sample data (a few hundred rows) the work is
nothing; what is measured is interpreter start, imports, model loading and
DVC. Reported: the median wall time of the whole `dvc repro -f` per version
and their ratio, and the median of each stage's `python -m pipeline.<stage>
--help` in this version (the goal: under 0.5 s; 0.1.0's stages mostly took no
arguments, so `--help` would have run them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measured import write_results
from project_copy import copy_project, environment

ROOT = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"`{' '.join(command)}` in {cwd} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds


def stages(copy: Path) -> list[str]:
    import yaml

    return list(yaml.safe_load((copy / "dvc.yaml").read_text(encoding="utf-8"))["stages"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old", required=True, help="a checkout of the older version, with its own .venv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", default=os.environ.get("OMP_NUM_THREADS", "1"), help="OMP_NUM_THREADS (both)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/sample_repro.json"))
    args = parser.parse_args(argv)
    roots = {"old": Path(args.old).resolve(), "new": ROOT}
    for root in roots.values():
        if not (root / ".venv" / "bin" / "dvc").exists():
            sys.exit(f"{root}/.venv has no dvc: run `make venv` there first")
    results: dict = {"threads": args.threads, "load_before": os.getloadavg(), "rounds": args.rounds}
    with tempfile.TemporaryDirectory() as tmp:
        envs, copies = {}, {}
        for name, root in roots.items():
            copies[name] = Path(tmp) / name / "project"
            envs[name] = environment(root / ".venv" / "bin", copies[name], Path(tmp) / name / "sandbox", args.threads)
            copy_project(root, copies[name], envs[name])
            timed(["dvc", "repro"], copies[name], envs[name])  # a first run: the DVC cache and the page cache warm
        repro: dict[str, list[float]] = {name: [] for name in roots}
        helps: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name in roots:
                repro[name].append(timed(["dvc", "repro", "-f"], copies[name], envs[name]))
            for stage in stages(copies["new"]):  # 0.1.0's ingest, split, train and evaluate took no arguments
                seconds = timed(["python", "-m", f"pipeline.{stage}", "--help"], copies["new"], envs["new"])
                helps.setdefault(stage, []).append(seconds)
    results["repro_seconds"] = {name: statistics.median(times) for name, times in repro.items()}
    results["repro_all"] = repro
    results["help_seconds"] = {stage: statistics.median(times) for stage, times in helps.items()}
    results["speedup"] = results["repro_seconds"]["old"] / results["repro_seconds"]["new"]
    results["load_after"] = os.getloadavg()
    print("| version | dvc repro -f s (median) | runs |")
    print("|---|---|---|")
    for name in roots:
        runs = ", ".join(f"{t:.1f}" for t in repro[name])
        print(f"| {name} ({roots[name]}) | {results['repro_seconds'][name]:.1f} | {runs} |")
    print(f"\nspeed-up: {results['speedup']:.2f}x")
    print("\n| stage | `python -m pipeline.<stage> --help` s (new, median) |")
    print("|---|---|")
    for stage, seconds in results["help_seconds"].items():
        print(f"| {stage} | {seconds:.2f} |")
    print(f"\nOMP_NUM_THREADS={args.threads}")
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
