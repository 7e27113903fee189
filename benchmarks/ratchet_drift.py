"""Run Ratchet's drift core on two parquet files: the counterpart of evidently_drift.py.

Same arguments (SPEC REF CUR OUT) and output, so the parity test and the
benchmark treat both tools alike. It writes the HTML and markdown reports too,
as the drift stage does, so the benchmark times the whole job. Params are the
project's.
"""

import json
import sys
from pathlib import Path

import pandas as pd

from pipeline.drift_columns import feature_report
from pipeline.drift_render import write_outputs
from pipeline.drift_stats import CATEGORICAL, NUMERIC
from pipeline.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def main(spec_path: str, reference_path: str, current_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    kinds = {**dict.fromkeys(spec["numeric"], NUMERIC), **dict.fromkeys(spec["categorical"], CATEGORICAL)}
    reference = pd.read_parquet(reference_path, columns=list(kinds))
    current = pd.read_parquet(current_path, columns=list(kinds))
    report = feature_report(reference, current, kinds, load_params(ROOT / "params.yaml").drift)
    out = Path(out_path)
    write_outputs(
        report,
        {"json": out.with_suffix(".report.json"), "html": out.with_suffix(".html"), "md": out.with_suffix(".md")},
    )
    columns = {c["column"]: {k: c[k] for k in ("method", "value", "drifted")} for c in report["columns"]}
    out.write_text(json.dumps({"share": report["dataset"]["share"], "columns": columns}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main(*sys.argv[1:5])
