"""Batch scoring of a partitioned dataset: `pipeline.predict --scheduler` on a local Dask cluster against one process.

    .venv/bin/python benchmarks/dask_benchmark.py --rows 10000000 --partitions 20

The input is the scale benchmark's seeded reference CSV (made by
`python -m pipeline.synthetic` if missing, cached under --data-dir), without
the target, as a directory of `--partitions` parquet files. The model is
fitted once on 20,000 other synthetic rows and saved with skops. In the same
run, one after the other:

- one process: `python -m pipeline.predict DIR -o OUT --model M`, which checks
  and scores the partitions one after another in its own process;
- cluster: the same command with `--scheduler` pointing at a
  `distributed.LocalCluster(n_workers=2, threads_per_worker=1,
  host="127.0.0.1", dashboard_address=None)` started by this script (its start
  is timed apart): the client sends each partition's path, the workers read,
  check and score their partitions and write their predictions.

Both use the same native threads (OMP_NUM_THREADS, 1 by default; the workers
inherit it). Their outputs must be byte-identical, partition by partition.
Wall time is the clock around the command; peak memory is the command's own
process (for the cluster, the workers' memory is sampled by the scheduler and
reported apart).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from measured import run_measured, write_results

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"


def partitioned(rows: int, parts: int, data_dir: Path) -> Path:
    """The first `rows` reference rows of the scale benchmark's CSV, without the target, in `parts` parquet files."""
    import pyarrow as pa
    import pyarrow.csv as pv
    import pyarrow.parquet as pq

    from pipeline.checks import text_columns
    from pipeline.features import contract_schema, features_of
    from scale_benchmark import data_files

    directory = data_dir / f"dask-{rows}-{parts}"
    if directory.is_dir():
        return directory
    reference, _ = data_files(rows, data_dir)
    contract = contract_schema()
    options = pv.ConvertOptions(column_types=dict.fromkeys(text_columns(contract), pa.string()))
    table = pv.read_csv(reference, convert_options=options).drop_columns([features_of(contract).target])
    partial = directory.with_name(directory.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    size = -(-len(table) // parts)
    for number in range(parts):
        pq.write_table(table.slice(number * size, size), partial / f"part-{number:05d}.parquet")
    partial.rename(directory)
    return directory


def model_file(data_dir: Path) -> Path:
    from pipeline.features import contract_schema, features_of
    from pipeline.model_store import save_model
    from pipeline.params import load_params
    from pipeline.synthetic import generate
    from pipeline.train import fit_model

    path = data_dir / "dask-model.skops"
    if not path.exists():
        contract = contract_schema()
        rows = generate(20_000, seed=5, contract=contract)
        save_model(fit_model(rows, features_of(contract), load_params().train), path)
    return path


def digests(directory: Path) -> dict[str, str]:
    return {
        str(path.relative_to(directory)): hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        for path in sorted(directory.rglob("*.parquet"))
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-dir", default=str(ROOT / "benchmarks/data"))
    parser.add_argument("--threads", default=os.environ.get("OMP_NUM_THREADS", "1"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/dask.json"))
    args = parser.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = args.threads  # before the cluster starts: its workers inherit it
    from distributed import LocalCluster

    data_dir = Path(args.data_dir)
    parts = partitioned(args.rows, args.partitions, data_dir)
    model = model_file(data_dir)
    command = [str(PYTHON), "-m", "pipeline.predict", str(parts), "--model", str(model), "-o"]
    results: dict = {"rows": args.rows, "partitions": args.partitions, "workers": args.workers}
    results["load_before"] = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        single_out, cluster_out = Path(tmp) / "single", Path(tmp) / "cluster"
        results["single"] = run_measured([*command, str(single_out)], args.threads)
        started = time.perf_counter()
        with LocalCluster(
            n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
        ) as cluster:
            results["cluster_start_seconds"] = time.perf_counter() - started
            address = cluster.scheduler_address
            results["cluster"] = run_measured([*command, str(cluster_out), "--scheduler", address], args.threads)
            with cluster.get_client() as client:
                memory = client.run(lambda: __import__("psutil").Process().memory_info().rss)
            results["cluster"]["worker_rss_mb_at_end"] = sorted(v / 2**20 for v in memory.values())
        results["identical"] = digests(single_out) == digests(cluster_out)
    results["load_after"] = os.getloadavg()
    results["cluster_over_single"] = results["cluster"]["seconds"] / results["single"]["seconds"]
    print("| path | wall s | rows/s | peak RSS MB (the command) |")
    print("|---|---|---|---|")
    for name in ("single", "cluster"):
        r = results[name]
        print(f"| {name} | {r['seconds']:.1f} | {args.rows / r['seconds']:,.0f} | {r['peak_rss_mb']:.0f} |")
    print(f"\ncluster / single: {results['cluster_over_single']:.2f} (workers: {args.workers}, 1 thread each)")
    print(f"cluster start: {results['cluster_start_seconds']:.1f} s (not in the cluster's wall time)")
    print(f"worker RSS at the end (MB): {results['cluster']['worker_rss_mb_at_end']}")
    print(f"predictions identical: {results['identical']}")
    print(f"OMP_NUM_THREADS={args.threads}")
    print(f"load average before {results['load_before']}, after {results['load_after']}")
    write_results(results, args.out)
    return 0 if results["identical"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
