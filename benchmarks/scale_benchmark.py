"""The whole pipeline at scale: `dvc repro` on your own data against the physical floor, side by side.

For each size N, the contract-driven generator (`python -m pipeline.synthetic`)
writes N labelled reference rows (seed 1) and N/5 current rows (seed 2) as CSV,
cached under --data-dir (benchmarks/data/, git-ignored). Then, as the README's
"Bring your own data" says, a fresh copy of the project (its git-tracked files,
as they are in the working tree) becomes a git repository in a temporary
directory, `dvc remove ingest` drops the sample-data stage, the two CSV files
replace data/raw/ and `dvc add` tracks them. In the same run, one after the
other, on the same files:

- repro: `dvc repro`, the whole pipeline, as a user runs it. Each stage's
  command (`python -m pipeline.<stage>`) runs through a `python` shim first on
  PATH that records the stage's own wall time and the kernel's peak resident
  set size (ru_maxrss) of its process; the repro's wall time is the clock
  around `dvc`, so DVC's own work (hashing, the lock file, the cache) counts.
- floor: benchmarks/scale_floor.py, one process doing the same work (read,
  validate, split, train, predict, metrics, importance, drift) without the
  process boundaries, DVC, intermediate files, the saved model or the reports.

Both run with the same native threads (OMP_NUM_THREADS, 1 unless --threads
says otherwise: on a shared machine OpenMP's waits measure the neighbours).
It also reports the size of what git would track under reports/ after the
run: the metrics, plots and drift summaries committed with each change.

    .venv/bin/python benchmarks/scale_benchmark.py --rows 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measured import write_results
from project_copy import copy_project, environment

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python"
# The shim dvc.yaml's `python -m pipeline.<stage>` finds first on PATH: the real interpreter as a
# child, its wall time and peak RSS (KiB) appended as one JSON line to $SCALE_STAGE_LOG.
SHIM = """#!{python} -I
import json, os, sys, time
start = time.perf_counter()
pid = os.posix_spawn({python!r}, [{python!r}, *sys.argv[1:]], os.environ)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(os.environ["SCALE_STAGE_LOG"], "a") as log:
    log.write(json.dumps({{"argv": sys.argv[1:], "seconds": time.perf_counter() - start,
                          "peak_rss_kb": usage.ru_maxrss, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                          "exit": code}}) + "\\n")
sys.exit(code)
"""


def data_files(rows: int, data_dir: Path) -> tuple[Path, Path]:
    """Cached, seeded CSV files: `rows` reference rows and rows/5 current rows, both labelled."""
    data_dir.mkdir(parents=True, exist_ok=True)
    made = []
    for name, n, seed in (("reference", rows, 1), ("current", max(rows // 5, 1), 2)):
        path = data_dir / f"scale-{name}-{rows}.csv"
        if not path.exists():
            partial = path.with_name(path.name + ".partial.csv")
            command = [str(PYTHON), "-m", "pipeline.synthetic", "--rows", str(n), "--seed", str(seed)]
            subprocess.run([*command, "--out", str(partial)], cwd=ROOT, check=True)
            partial.replace(path)
        made.append(path)
    return made[0], made[1]


class Project:
    """A temporary copy of the project as a git repository, with DVC's global state inside the sandbox."""

    def __init__(self, base: Path, threads: str):
        self.path = base / "project"
        self.sandbox = base / "sandbox"
        self.shim_dir = self.sandbox / "shim"
        self.stage_log = self.sandbox / "stages.jsonl"
        self.threads = threads

    def env(self, shim: bool = False) -> dict[str, str]:
        env = environment(VENV_BIN, self.path, self.sandbox, self.threads)
        env["SCALE_STAGE_LOG"] = str(self.stage_log)
        if shim:
            env["PATH"] = f"{self.shim_dir}{os.pathsep}{env['PATH']}"
        return env

    def run(self, *args: str) -> str:
        done = subprocess.run(args, cwd=self.path, env=self.env(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"`{' '.join(args)}` failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        return done.stdout

    def create(self, reference: Path, current: Path) -> None:
        """The README's bring-your-own-data steps on a copy of the git-tracked files."""
        import yaml

        copy_project(ROOT, self.path, self.env())
        self.shim_dir.mkdir(parents=True)
        shim = self.shim_dir / "python"
        shim.write_text(SHIM.format(python=str(PYTHON)))
        shim.chmod(0o755)
        dvc = str(VENV_BIN / "dvc")
        if "ingest" in yaml.safe_load((self.path / "dvc.yaml").read_text(encoding="utf-8"))["stages"]:
            self.run(dvc, "remove", "ingest")
        params = self.params()["paths"]
        for source, target in ((reference, params["raw_reference"]), (current, params["raw_current"])):
            (self.path / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, self.path / target)
        self.run(dvc, "add", "-q", params["raw_reference"], params["raw_current"])
        self.run("git", "add", "-A")
        self.run("git", "commit", "-q", "--no-verify", "-m", "our own data")

    def params(self) -> dict:
        import yaml

        return yaml.safe_load((self.path / "params.yaml").read_text(encoding="utf-8"))

    def measured(self, command: list[str], shim: bool = False) -> dict:
        """Run to the end: wall seconds, CPU seconds of it and its children, stdout (the shim records peak memory)."""
        import resource

        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen(
            command, cwd=self.path, env=self.env(shim), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        out, err = process.communicate()  # reaps it too; rusage comes from the wait below
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if process.returncode != 0:
            sys.exit(f"`{' '.join(command)}` failed ({process.returncode}):\n{out}{err}")
        used = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
        return {"seconds": seconds, "cpu_seconds": used, "stdout": out}

    def repro(self, force: bool = False) -> dict:
        self.stage_log.unlink(missing_ok=True)
        result = self.measured([str(VENV_BIN / "dvc"), "repro", *(["-f"] if force else [])], shim=True)
        stages = []
        for line in self.stage_log.read_text().splitlines():
            record = json.loads(line)
            module = record["argv"][record["argv"].index("-m") + 1] if "-m" in record["argv"] else record["argv"][0]
            stages.append(
                {
                    "stage": module.removeprefix("pipeline."),
                    "seconds": record["seconds"],
                    "peak_rss_mb": record["peak_rss_kb"] / 1024,
                    "cpu_seconds": record["cpu_seconds"],
                }
            )
        return {"seconds": result["seconds"], "cpu_seconds": result["cpu_seconds"], "stages": stages}

    def floor(self, reference: Path, current: Path) -> dict:
        script = ROOT / "benchmarks" / "scale_floor.py"
        command = [str(self.shim_dir / "python"), str(script), str(reference), str(current)]
        self.stage_log.unlink(missing_ok=True)
        result = self.measured(command)
        [record] = [json.loads(line) for line in self.stage_log.read_text().splitlines()]
        peak = record["peak_rss_kb"] / 1024
        return {
            **json.loads(result["stdout"]),
            "wall_seconds": result["seconds"],
            "cpu_seconds": result["cpu_seconds"],
            "peak_rss_mb": peak,
        }

    def tracked_reports(self) -> dict:
        """Files under reports/ that git would commit after the run, and their total size."""
        listed = self.run("git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "reports")
        sizes = {name: (self.path / name).stat().st_size for name in filter(None, listed.split("\0"))}
        sizes = {name: size for name, size in sizes.items() if (self.path / name).exists()}
        return {"total_bytes": sum(sizes.values()), "files": dict(sorted(sizes.items(), key=lambda kv: -kv[1]))}


def measure(rows: int, data_dir: Path, work: Path, threads: str, repeats: int = 1) -> dict:
    """Repro and floor `repeats` times, taking turns (later repros are `dvc repro -f`); each one's lower median run."""
    reference, current = data_files(rows, data_dir)
    project = Project(work, threads)
    project.create(reference, current)
    paths = project.params()["paths"]
    repros, floors = [], []
    for turn in range(repeats):
        repros.append(project.repro(force=turn > 0))
        floors.append(project.floor(project.path / paths["raw_reference"], project.path / paths["raw_current"]))
    repro = sorted(repros, key=lambda r: r["seconds"])[(repeats - 1) // 2]
    floor = sorted(floors, key=lambda r: r["wall_seconds"])[(repeats - 1) // 2]
    metrics = json.loads((project.path / paths["eval_dir"] / "metrics.json").read_text())
    drift = json.loads((project.path / paths["drift_report"]).read_text())
    headline = "roc_auc" if "roc_auc" in metrics else "rmse"
    return {
        "rows": rows,
        "current_rows": max(rows // 5, 1),
        "csv_mb": (reference.stat().st_size + current.stat().st_size) / 2**20,
        "repro": repro,
        "floor": floor,
        "ratio": repro["seconds"] / floor["wall_seconds"],
        "cpu_ratio": repro["cpu_seconds"] / floor["cpu_seconds"],
        "all_repro_seconds": [r["seconds"] for r in repros],
        "all_floor_seconds": [f["wall_seconds"] for f in floors],
        "all_cpu_ratios": [r["cpu_seconds"] / f["cpu_seconds"] for r, f in zip(repros, floors, strict=True)],
        "stage_seconds_total": sum(s["seconds"] for s in repro["stages"]),
        "max_stage_peak_rss_mb": max(s["peak_rss_mb"] for s in repro["stages"]),
        "agree": {
            headline: [metrics[headline], floor[headline]],
            "drift_share": [drift["dataset"]["share"], floor["drift_share"]],
        },
        "reports": project.tracked_reports(),
    }


def print_tables(results: dict) -> None:
    print("| rows | dvc repro s | floor s | ratio | CPU s repro / floor | CPU ratio | stage RSS MB | floor RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results["sizes"]:
        repro, floor = r["repro"], r["floor"]
        print(
            f"| {r['rows']:,} | {repro['seconds']:.1f} | {floor['wall_seconds']:.1f} | {r['ratio']:.2f}x | "
            f"{repro['cpu_seconds']:.1f} / {floor['cpu_seconds']:.1f} | {r['cpu_ratio']:.2f}x | "
            f"{r['max_stage_peak_rss_mb']:.0f} | {floor['peak_rss_mb']:.0f} |"
        )
    for r in results["sizes"]:
        print(f"\n{r['rows']:,} rows, per stage:\n")
        print("| stage | s | CPU s | peak RSS MB |")
        print("|---|---|---|---|")
        for s in r["repro"]["stages"]:
            print(f"| {s['stage']} | {s['seconds']:.1f} | {s['cpu_seconds']:.1f} | {s['peak_rss_mb']:.0f} |")
        phases = ", ".join(f"{name} {seconds:.1f}" for name, seconds in r["floor"]["phases"].items())
        print(f"\nfloor phases (s): {phases}")
        print(f"same answers (pipeline, floor): {r['agree']}")
        if len(r["all_repro_seconds"]) > 1:
            pairs = zip(r["all_repro_seconds"], r["all_floor_seconds"], strict=True)
            runs = ", ".join(f"{a:.1f} / {b:.1f}" for a, b in pairs)
            print(f"every run, repro / floor (s): {runs}")
            print(f"every run, CPU ratio: {', '.join(f'{x:.2f}x' for x in r['all_cpu_ratios'])}")
        largest = ", ".join(f"{name} {size / 1024:.1f} KB" for name, size in list(r["reports"]["files"].items())[:3])
        print(f"git-tracked reports/: {r['reports']['total_bytes'] / 1024:.1f} KB; largest: {largest}")
    print(f"\nOMP_NUM_THREADS={results['threads']} for both")
    print(f"load average before {results['load_before']}, after {results['load_after']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--data-dir", default=str(ROOT / "benchmarks/data"), help="cached input files")
    parser.add_argument("--work-dir", help="where the project copies go (default: a temporary directory, removed)")
    parser.add_argument(
        "--threads",
        default=os.environ.get("OMP_NUM_THREADS", "1"),
        help="OMP_NUM_THREADS for the pipeline and the floor (default 1)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, taking turns; the lower median counts")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/scale.json"))
    args = parser.parse_args(argv)
    if not PYTHON.exists():
        sys.exit(f"{PYTHON} is missing: run `make venv` first")
    results: dict = {"cpus": os.cpu_count(), "threads": args.threads, "load_before": os.getloadavg(), "sizes": []}
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        for rows in args.rows:
            work = Path(tmp) / str(rows)
            results["sizes"].append(measure(rows, Path(args.data_dir), work, args.threads, args.repeats))
            shutil.rmtree(work)  # the copies and their DVC cache hold several times the data
    results["load_after"] = os.getloadavg()
    print_tables(results)
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
