"""Drift on a million rows: Ratchet's drift core against Evidently's DataDriftPreset, side by side.

Both run as whole processes on the same parquet files in the same run (so the
ratio, not the absolute time, is the result), each from its own environment:
Ratchet from .venv, Evidently from .venv-evidently (`make evidently-env`).
Wall time comes from the clock around each process, peak RSS from the
kernel's rusage for that process. Verdicts must be identical column by column.

    make benchmark            # = .venv/bin/python benchmarks/drift_benchmark.py --rows 1000000

Data: 20 columns (16 numeric, 4 categorical); in the current batch 4 numeric
columns are shifted by 0.3 standard deviations and 1 categorical column is
re-mixed, so 5 columns drift.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from measured import run_measured

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = {
    "ratchet": (ROOT / ".venv/bin/python", ROOT / "benchmarks/ratchet_drift.py"),
    "evidently": (ROOT / ".venv-evidently/bin/python", ROOT / "benchmarks/evidently_drift.py"),
}
NUMERIC = [f"num_{i:02d}" for i in range(16)]
CATEGORICAL = [f"cat_{i}" for i in range(4)]


def make_frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {}
    for i, name in enumerate(NUMERIC):
        columns[name] = rng.normal(0.3 if shifted and i < 4 else 0.0, 1.0 + 0.1 * i, rows)
    for i, name in enumerate(CATEGORICAL):
        shares = [0.3, 0.3, 0.2, 0.2] if shifted and i == 0 else [0.5, 0.2, 0.2, 0.1]
        columns[name] = rng.choice(np.array(["north", "south", "east", "west"], dtype=object), rows, p=shares)
    return pd.DataFrame(columns)


def run_tool(tool: str, files: list[Path]) -> dict:
    python, script = RUNNERS[tool]
    if not python.exists():
        sys.exit(f"{python} is missing: run `make venv evidently-env` first")
    measured = run_measured([str(python), str(script), *map(str, files)], what=tool)
    return {"seconds": measured["seconds"], "peak_rss_mb": measured["peak_rss_mb"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        make_frame(args.rows, seed=1, shifted=False).to_parquet(work / "reference.parquet")
        make_frame(args.rows, seed=2, shifted=True).to_parquet(work / "current.parquet")
        (work / "spec.json").write_text(json.dumps({"numeric": NUMERIC, "categorical": CATEGORICAL}))
        results, verdicts = {}, {}
        for tool in RUNNERS:
            out = work / f"{tool}.json"
            results[tool] = run_tool(
                tool, [work / "spec.json", work / "reference.parquet", work / "current.parquet", out]
            )
            verdicts[tool] = json.loads(out.read_text())
    ours, theirs = verdicts["ratchet"]["columns"], verdicts["evidently"]["columns"]
    mismatches = [
        c for c in theirs if (ours[c]["method"], ours[c]["drifted"]) != (theirs[c]["method"], theirs[c]["drifted"])
    ]
    drifted = sorted(c for c in ours if ours[c]["drifted"])
    r, e = results["ratchet"], results["evidently"]
    print("| rows | tool | wall s | peak RSS MB |\n|---|---|---|---|")
    for tool, result in results.items():
        print(f"| {args.rows:,} | {tool} | {result['seconds']:.1f} | {result['peak_rss_mb']:.0f} |")
    speed, memory = e["seconds"] / r["seconds"], r["peak_rss_mb"] / e["peak_rss_mb"]
    print(f"\nspeed-up: {speed:.1f}x; memory: {memory:.2f} of Evidently's")
    shares = f"share {verdicts['ratchet']['share']:.2f} vs {verdicts['evidently']['share']:.2f}"
    print(f"drifted columns ({len(drifted)}): {', '.join(drifted)}; {shares}")
    print("verdicts identical" if not mismatches else f"VERDICTS DIFFER on {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
