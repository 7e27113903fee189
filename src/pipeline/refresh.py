"""Refresh: production rows whose labels arrived join the reference, by the policy in params.yaml.

    python -m pipeline.refresh [LOGS...] --labels FILE

Joins every logged prediction (`pipeline.serve`, `pipeline.predict`) with its
late label on the contract's id, keeps them in `paths.labelled_rows` (one row
per id, the newest), and rewrites the reference the pipeline learns from
(`paths.raw_reference`) by `retrain.data.policy`:

- `append`: the reference, then every labelled row (a labelled row replaces a
  reference row with the same id);
- `rolling_rows`: the same, then only the newest `retrain.data.rows` rows;
- `rolling_days`: only rows observed in the last `retrain.data.days` days, by
  the contract's column with `metadata={"role": "time"}`.

The result is checked against the contract before it is written, and the same
logs, labels and reference always give the same file: `dvc add` it (or let
the retrain workflow do it) and `dvc repro` retrains through the same gates.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError, PipelineError, run_main

if TYPE_CHECKING:
    import pandas as pd

    from pipeline.features import Features
    from pipeline.params import RetrainData


def labelled_rows(records: Sequence[dict], labels: pd.DataFrame, features: Features) -> pd.DataFrame:
    """One row per id: the newest logged inputs with the label; the time column filled from the log if absent."""
    import pandas as pd

    rows = [r for r in records if r["kind"] == "prediction" and r["inputs"].get(features.id) is not None]
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame([r["inputs"] for r in rows])
    frame["_logged_at"] = [r["time"] for r in rows]
    frame[features.id] = frame[features.id].astype(str)
    frame = frame.drop(columns=[features.target], errors="ignore")
    truth = labels.assign(**{features.id: labels[features.id].astype(str)})
    joined = frame.merge(truth, on=features.id, how="inner")
    if features.time and features.time not in joined.columns:
        joined[features.time] = joined["_logged_at"]
    joined = joined.sort_values(["_logged_at", features.id], kind="stable").drop_duplicates(features.id, keep="last")
    return joined.drop(columns=["_logged_at"]).reset_index(drop=True)


def combine(
    reference: pd.DataFrame, kept: pd.DataFrame, fresh: pd.DataFrame, features: Features, policy: RetrainData
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the labelled rows to keep, the new reference) under the policy; deterministic for the same inputs."""
    import pandas as pd

    key = features.id
    labelled = pd.concat([kept, fresh], ignore_index=True) if len(kept) else fresh
    if len(labelled):
        labelled = labelled.drop_duplicates(key, keep="last").reset_index(drop=True)
    columns = list(reference.columns)
    base = reference[~reference[key].astype(str).isin(set(labelled[key].astype(str)))] if len(labelled) else reference
    combined = pd.concat([base, labelled.reindex(columns=columns)], ignore_index=True)
    if policy.policy == "rolling_rows":
        combined = combined.tail(policy.rows).reset_index(drop=True)
    elif policy.policy == "rolling_days":
        if not features.time:
            raise ConfigError(
                'retrain.data.policy rolling_days needs a column with metadata={"role": "time"} in the contract'
            )
        times = pd.to_datetime(combined[features.time], utc=True)
        newest = times.max()
        combined = combined[times >= newest - pd.Timedelta(days=policy.days)].reset_index(drop=True)
    return labelled, combined


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.refresh", description=__doc__.split("\n")[0])
    parser.add_argument("logs", nargs="*", help="prediction logs (default: paths.prediction_logs)")
    parser.add_argument("--labels", help="late ground truth: the id and the target (default: monitor.labels)")
    args = parser.parse_args(argv)
    from pathlib import Path

    import pandas as pd

    from pipeline.checks import check_frame, describe_failures
    from pipeline.features import contract_schema, features_of
    from pipeline.files import read_table, write_csv, write_parquet
    from pipeline.params import load_params
    from pipeline.prediction_log import log_files, read_labels, read_logs

    params = load_params()
    contract = contract_schema()
    features = features_of(contract)
    if not features.id:
        raise ConfigError("labels join the logs on the contract's id column, and the contract has none")
    label_path = args.labels or params.monitor.labels
    if not label_path:
        raise ConfigError("no labels: give --labels FILE (or monitor.labels in params.yaml)")
    records = read_logs(log_files(args.logs or [params.paths.prediction_logs]))
    fresh = labelled_rows(records, read_labels(label_path, features), features)
    reference = read_table(params.paths.raw_reference, string_columns=(features.id,))
    kept_path = Path(params.paths.labelled_rows)
    kept = pd.read_parquet(kept_path) if kept_path.is_file() else pd.DataFrame(columns=reference.columns)
    labelled, combined = combine(reference, kept, fresh, features, params.retrain.data)
    report, validated = check_frame(combined, contract, params.paths.raw_reference)
    if validated is None:
        raise PipelineError(describe_failures([report]))
    write_parquet(labelled, kept_path)
    writer = write_csv if params.paths.raw_reference.endswith(".csv") else write_parquet
    writer(combined, params.paths.raw_reference)
    print(
        f"{len(fresh)} labelled production rows ({len(labelled)} kept in all); {params.paths.raw_reference} now has "
        f"{len(combined)} rows ({params.retrain.data.policy})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(run_main(main))
