"""Run Ratchet's drift core on two parquet files: the counterpart of evidently_drift.py.

Same arguments (SPEC REF CUR OUT) and output, so the parity test and the benchmark treat both
tools alike. It writes the HTML and markdown reports too, as the drift stage
does, so the benchmark times the whole job. Params are the project's.
"""

import json
import sys
from pathlib import Path

import pandas as pd

from pipeline.contract import Features
from pipeline.drift import drift_report, write_outputs
from pipeline.params import load_params

ROOT = Path(__file__).resolve().parents[1]


def main(spec_path: str, reference_path: str, current_path: str, out_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    # No target column in these files, so only feature drift is computed.
    features = Features(tuple(spec["numeric"]), tuple(spec["categorical"]), {}, "(no target)", (), None)
    reference = pd.read_parquet(reference_path, columns=features.columns)
    current = pd.read_parquet(current_path, columns=features.columns)
    params = load_params(ROOT / "params.yaml").drift
    report = drift_report(reference, current, features, params)
    out = Path(out_path)
    paths = {"json": out.with_suffix(".report.json"), "html": out.with_suffix(".html"), "md": out.with_suffix(".md")}
    write_outputs(report, paths)
    columns = {c["column"]: {k: c[k] for k in ("method", "value", "drifted")} for c in report["columns"]}
    out.write_text(json.dumps({"share": report["dataset"]["share"], "columns": columns}, indent=2, sort_keys=True))


if __name__ == "__main__":
    main(*sys.argv[1:5])
