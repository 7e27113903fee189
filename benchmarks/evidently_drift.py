"""Run Evidently's DataDriftPreset on two parquet files and print per-column verdicts as JSON.

Runs in its own environment (`make evidently-env`: Evidently 0.7.23 needs
pandas < 3), so it imports nothing from this project. Used by the parity test
and the benchmark: `python evidently_drift.py SPEC REF CUR OUT [REF CUR OUT ...]`,
where SPEC is JSON {"numeric": [...], "categorical": [...]}; several triples
share one interpreter start.
"""

import json
import sys
from pathlib import Path

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

METHOD_NAMES = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
}


def main(spec_path: str, *triples: str) -> None:
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    for i in range(0, len(triples), 3):
        compare(spec, *triples[i : i + 3])


def compare(spec: dict, reference_path: str, current_path: str, out_path: str) -> None:
    columns = spec["numeric"] + spec["categorical"]
    definition = DataDefinition(numerical_columns=spec["numeric"], categorical_columns=spec["categorical"])
    reference = Dataset.from_pandas(pd.read_parquet(reference_path, columns=columns), data_definition=definition)
    current = Dataset.from_pandas(pd.read_parquet(current_path, columns=columns), data_definition=definition)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(current, reference).dict()
    values = {m["config"]["column"]: m["value"] for m in snapshot["metrics"] if "column" in m["config"]}
    share = next(m["value"]["share"] for m in snapshot["metrics"] if "share" in (m["value"] or {}))
    result = {"share": share, "columns": {}}
    for test in snapshot["tests"]:
        params = test["metric_config"]["params"]
        if "column" in params:
            result["columns"][params["column"]] = {
                "method": METHOD_NAMES[params["method"]],
                "value": values[params["column"]],
                "drifted": test["status"] == "FAIL",
            }
    Path(out_path).write_text(json.dumps(result, indent=2, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:])
