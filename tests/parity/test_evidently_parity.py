"""Same verdicts as Evidently: our drift tests against DataDriftPreset itself, column by column.

Evidently runs in its own environment (`make evidently-env`; it needs pandas < 3),
once for all batches. Batches cover what drift looks like in practice: shifted
and rescaled numeric columns, re-mixed categories, binary and low-cardinality
columns, and unchanged data, with reference sizes on both sides of 1000 rows,
where the choice of test changes.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.drift_columns import dataset_drift
from pipeline.drift_stats import CATEGORICAL, NUMERIC
from pipeline.params import load_params

ROOT = Path(__file__).resolve().parents[2]
EVIDENTLY_PYTHON = ROOT / ".venv-evidently/bin/python"
SPEC = {
    "numeric": ["wide", "skewed", "rescaled", "binary_num", "low_card"],
    "categorical": ["colour", "flag", "size"],
}
KINDS = {**dict.fromkeys(SPEC["numeric"], NUMERIC), **dict.fromkeys(SPEC["categorical"], CATEGORICAL)}
SCENARIOS = ("unchanged", "shifted", "rescaled", "remixed", "binary", "low_cardinality")


def batch(rows: int, seed: int, scenario: str = "unchanged") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shifted = scenario == "shifted"
    colours = [0.6, 0.25, 0.15] if scenario != "remixed" else [0.4, 0.3, 0.3]
    sizes = [0.25, 0.25, 0.25, 0.25] if scenario != "remixed" else [0.4, 0.2, 0.2, 0.2]
    flag_yes = 0.3 if scenario != "binary" else 0.42
    low_card = [0.4, 0.3, 0.2, 0.1] if scenario != "low_cardinality" else [0.25, 0.25, 0.25, 0.25]
    frame = pd.DataFrame(
        {
            "wide": rng.normal(0.25 if shifted else 0.0, 1.0, rows),
            "skewed": rng.lognormal(0.2 if shifted else 0.0, 0.5, rows),
            "rescaled": rng.normal(10.0, 2.0 if scenario != "rescaled" else 3.2, rows),
            "binary_num": (rng.random(rows) < (0.5 if scenario != "binary" else 0.62)).astype(float),
            "low_card": rng.choice([1.0, 2.0, 3.0, 4.0], rows, p=low_card),
            "colour": rng.choice(np.array(["red", "green", "blue"], dtype=object), rows, p=colours),
            "flag": rng.choice(np.array(["no", "yes"], dtype=object), rows, p=[1 - flag_yes, flag_yes]),
            "size": rng.choice(np.array(["S", "M", "L", "XL"], dtype=object), rows, p=sizes),
        }
    )
    frame.loc[rng.random(rows) < 0.03, "wide"] = np.nan  # nulls are dropped by both tools
    return frame


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> list[tuple[str, pd.DataFrame, pd.DataFrame, Path]]:
    work = tmp_path_factory.mktemp("parity")
    cases = []
    for reference_rows in (600, 2500):
        reference = batch(reference_rows, seed=reference_rows)
        for offset, scenario in enumerate(SCENARIOS):
            current = batch(reference_rows // 2 + 37, seed=reference_rows + offset + 1, scenario=scenario)
            name = f"{scenario}-{reference_rows}"
            reference.to_parquet(work / f"{name}-ref.parquet")
            current.to_parquet(work / f"{name}-cur.parquet")
            cases.append((name, reference, current, work / f"{name}-evidently.json"))
    return cases


@pytest.fixture(scope="module")
def evidently(pairs) -> dict[str, dict]:
    if not EVIDENTLY_PYTHON.exists():
        pytest.fail(f"{EVIDENTLY_PYTHON} is missing: run `make evidently-env` (make test does it)")
    spec = pairs[0][3].parent / "spec.json"
    spec.write_text(json.dumps(SPEC))
    args = [str(spec)]
    for _, _, _, out in pairs:
        stem = str(out).removesuffix("-evidently.json")
        args += [f"{stem}-ref.parquet", f"{stem}-cur.parquet", str(out)]
    subprocess.run([str(EVIDENTLY_PYTHON), str(ROOT / "benchmarks/evidently_drift.py"), *args], check=True)
    return {name: json.loads(out.read_text()) for name, _, _, out in pairs}


def test_every_column_gets_evidentlys_method_value_and_verdict(pairs, evidently):
    params = load_params(ROOT / "params.yaml").drift
    drifted_somewhere, methods_seen = set(), set()
    for name, reference, current, _ in pairs:
        columns, verdict = dataset_drift(reference, current, KINDS, params)
        theirs = evidently[name]
        assert verdict["share"] == pytest.approx(theirs["share"]), name
        for ours in columns:
            expected = theirs["columns"][ours.column]
            where = f"{name}/{ours.column}"
            assert ours.method == expected["method"], where
            assert ours.drifted == expected["drifted"], where
            assert ours.value == pytest.approx(expected["value"], rel=1e-9, abs=1e-12), where
            methods_seen.add(ours.method)
            if ours.drifted:
                drifted_somewhere.add(ours.column)
    # The batches must exercise every test and make every column drift at least once.
    assert methods_seen == {"ks", "chisquare", "z", "wasserstein", "jensenshannon"}
    assert drifted_somewhere == set(KINDS)


def test_unchanged_batches_do_not_drift(pairs, evidently):
    params = load_params(ROOT / "params.yaml").drift
    for name, reference, current, _ in pairs:
        if name.startswith("unchanged"):
            _, verdict = dataset_drift(reference, current, KINDS, params)
            assert not verdict["drifted"]
            assert evidently[name]["share"] < 0.5
