"""Start-up: `dvc repro -f` on the sample data and each stage's `--help`, this version against an older one.

    git clone --branch v0.1.0 . /tmp/v010 && make -C /tmp/v010 venv
    .venv/bin/python benchmarks/sample_repro_benchmark.py --old /tmp/v010

Both projects are copied (their git-tracked files) into temporary git
repositories, each runs with its own .venv and its own src/ (PYTHONPATH), and
they take turns, `--rounds` times: old, new, old, new... so the machine's
load falls on both alike. On the sample data (a few hundred rows) the work is
nothing; what is measured is interpreter start, imports, model loading and
DVC. Reported: the median wall time of the whole `dvc repro -f` per version
and their ratio, with this version's `dvc repro -f` run both as it is and as
`make run` runs it, under `python -m pipeline.preload` (the stages forked from a
server that has their imports done), and the median of each stage's `python -m pipeline.<stage>
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


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and the peak resident memory (MB) of the largest process the command ran."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = process.stdout.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"`{' '.join(command)}` in {cwd} failed ({status}):\n{output}")
    return seconds, usage.ru_maxrss / 1024


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
        runs = {
            "old": ("old", ["dvc", "repro", "-f"]),
            "new": ("new", ["dvc", "repro", "-f"]),
            "new, preloaded": ("new", ["python", "-m", "pipeline.preload", "--", "dvc", "repro", "-f"]),
        }
        repro: dict[str, list[float]] = {name: [] for name in runs}
        peak: dict[str, list[float]] = {name: [] for name in runs}
        helps: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for name, (version, command) in runs.items():
                seconds, megabytes = timed(command, copies[version], envs[version])
                repro[name].append(seconds)
                peak[name].append(megabytes)
            for stage in stages(copies["new"]):  # 0.1.0's ingest, split, train and evaluate took no arguments
                seconds, _ = timed(["python", "-m", f"pipeline.{stage}", "--help"], copies["new"], envs["new"])
                helps.setdefault(stage, []).append(seconds)
    results["commands"] = {name: " ".join(command) for name, (_version, command) in runs.items()}
    results["repro_seconds"] = {name: statistics.median(times) for name, times in repro.items()}
    results["repro_all"] = repro
    results["peak_mb"] = {name: max(values) for name, values in peak.items()}
    results["help_seconds"] = {stage: statistics.median(times) for stage, times in helps.items()}
    results["speedup"] = {
        name: results["repro_seconds"]["old"] / results["repro_seconds"][name] for name in runs if name != "old"
    }
    results["load_after"] = os.getloadavg()
    print("| version | command | s (median) | runs | peak MB (largest process) |")
    print("|---|---|---|---|---|")
    for name, (version, _command) in runs.items():
        times = ", ".join(f"{t:.1f}" for t in repro[name])
        print(
            f"| {name} ({roots[version]}) | `{results['commands'][name]}` | {results['repro_seconds'][name]:.1f} "
            f"| {times} | {results['peak_mb'][name]:.0f} |"
        )
    for name, ratio in results["speedup"].items():
        print(f"\nspeed-up, {name} against old: {ratio:.2f}x")
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
