"""Batch scoring: `python -m pipeline.predict` against bare `predict_proba` on the same rows, at growing sizes.

For each size, the contract-driven generator (`python -m pipeline.synthetic`)
writes a seeded parquet file once, without the target, as production batches
come; it is cached under --data-dir (benchmarks/data/, git-ignored), since
10M rows take a while to generate. Two processes then run on it, side by side
in the same run:

- predict: `python -m pipeline.predict FILE -o OUT.parquet`, the whole job
  (interpreter start, imports, model load, reading, the contract check, scoring
  and writing, one batch of `predict.batch_rows` at a time);
- bare: benchmarks/bare_predict.py reads the whole file into one frame first,
  then times `model.predict_proba` on it: no checks, no writing, no batches.

Wall time is the clock around the predict process and, for bare, the call
alone (what a user who already holds the frame pays); both are reported, with
predict's fixed cost (the same command on a 1,000-row file) so the steady
ratio is visible too. Peak memory is the kernel's maximum resident set size
of each process: predict must stay flat as the file grows. Both processes run
with the same native threads, OMP_NUM_THREADS=1 unless --threads says
otherwise: on a shared machine, OpenMP's waits at each of the model's 200
parallel loops per call would measure the neighbours, not the scoring.

    make benchmark-batch   # = .venv/bin/python benchmarks/batch_benchmark.py --rows 1000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from measured import run_measured, write_results

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv/bin/python"
FIXED_ROWS = 1_000


def batch_file(rows: int, data_dir: Path) -> Path:
    """A cached, seeded parquet file of `rows` rows that pass the contract, without the target column."""
    import pyarrow.parquet as pq

    from pipeline.features import contract_schema, features_of

    path = data_dir / f"batch-{rows}.parquet"
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    full = data_dir / f"synthetic-{rows}.parquet"
    command = [str(PYTHON), "-m", "pipeline.synthetic", "--rows", str(rows), "--seed", "0", "--out", str(full)]
    subprocess.run(command, cwd=ROOT, check=True)
    target = features_of(contract_schema()).target
    source = pq.ParquetFile(full)
    columns = [name for name in source.schema_arrow.names if name != target]
    partial = path.with_suffix(".partial")
    with pq.ParquetWriter(partial, source.schema_arrow.remove(source.schema_arrow.get_field_index(target))) as out:
        for batch in source.iter_batches(batch_size=500_000, columns=columns):
            out.write_batch(batch)
    partial.replace(path)
    full.unlink()
    return path


def predict(path: Path, out: Path, model: str, batch_rows: int | None, threads: str) -> dict:
    command = [str(PYTHON), "-m", "pipeline.predict", str(path), "-o", str(out), "--model", model]
    command += ["--batch-rows", str(batch_rows)] if batch_rows else []
    result = run_measured(command, threads)
    out.unlink()
    return result


def bare(path: Path, model: str, threads: str) -> dict:
    result = run_measured([str(PYTHON), str(ROOT / "benchmarks/bare_predict.py"), str(path), model], threads)
    return {**result, **json.loads(result.pop("stdout"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--model", default=str(ROOT / "models/model.skops"))
    parser.add_argument("--batch-rows", type=int, help="default: predict.batch_rows in params.yaml")
    parser.add_argument("--data-dir", default=str(ROOT / "benchmarks/data"), help="cached input files")
    parser.add_argument(
        "--threads",
        default=os.environ.get("OMP_NUM_THREADS", "1"),
        help="OMP_NUM_THREADS for both processes (default 1: on a shared machine OpenMP's waits swamp the ratio)",
    )
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/batch.json"))
    args = parser.parse_args(argv)
    if not PYTHON.exists():
        sys.exit(f"{PYTHON} is missing: run `make venv` first")
    if not Path(args.model).is_file():
        sys.exit(f"{args.model}: model file not found; run `make run` (or pass --model PATH)")
    data_dir = Path(args.data_dir)
    files = {rows: batch_file(rows, data_dir) for rows in sorted({FIXED_ROWS, *args.rows})}
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "threads": args.threads,
        "sizes": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        scored = Path(tmp) / "scored.parquet"
        fixed = predict(files[FIXED_ROWS], scored, args.model, args.batch_rows, args.threads)["seconds"]
        for rows in args.rows:
            ours = predict(files[rows], scored, args.model, args.batch_rows, args.threads)
            floor = bare(files[rows], args.model, args.threads)
            results["sizes"].append(
                {
                    "rows": rows,
                    "predict_seconds": ours["seconds"],
                    "predict_peak_rss_mb": ours["peak_rss_mb"],
                    "predict_fixed_seconds": fixed,
                    "bare_predict_proba_seconds": floor["predict_proba_seconds"],
                    "bare_read_seconds": floor["read_seconds"],
                    "bare_process_seconds": floor["seconds"],
                    "bare_peak_rss_mb": floor["peak_rss_mb"],
                    "ratio": ours["seconds"] / floor["predict_proba_seconds"],
                    "ratio_steady": (ours["seconds"] - fixed) / floor["predict_proba_seconds"],
                    "predict_rows_per_s": rows / ours["seconds"],
                    "bare_rows_per_s": rows / floor["predict_proba_seconds"],
                }
            )
    results["load_after"] = os.getloadavg()
    print("| rows | predict s | bare predict_proba s | ratio | ratio less fixed cost | predict RSS MB | bare RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in results["sizes"]:
        print(
            f"| {r['rows']:,} | {r['predict_seconds']:.1f} | {r['bare_predict_proba_seconds']:.1f} | "
            f"{r['ratio']:.2f}x | {r['ratio_steady']:.2f}x | "
            f"{r['predict_peak_rss_mb']:.0f} | {r['bare_peak_rss_mb']:.0f} |"
        )
    print(f"\nOMP_NUM_THREADS={args.threads} for both")
    print(f"predict's fixed cost (start, imports, model, {FIXED_ROWS:,} rows): {fixed:.1f} s")
    print(f"load average before {results['machine']['load_before']}, after {results['load_after']}")
    write_results(results, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
