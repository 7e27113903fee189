"""The monitor's and the refresh's cores: windows, health, contract failures, decisions, canary verdicts, policies.

Log records are built here as the server writes them (prediction_log.py's
format); the whole path from a real server's logs to a report is in
tests/serving/test_monitoring.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipeline.errors import ConfigError, PipelineError
from pipeline.features import features_of
from pipeline.monitor import (
    EXIT_RETRAIN,
    answered,
    canary_verdict,
    contract_failures,
    decide,
    health,
    in_window,
)
from pipeline.params import CanaryParams, RetrainData
from pipeline.prediction_log import read_logs
from pipeline.refresh import combine

START = datetime(2026, 1, 1, tzinfo=UTC)


def record(i: int, *, kind="prediction", minutes=0, latency=5.0, version="v1", role="prod", status=None, **extra):
    base = {
        "kind": kind,
        "request_id": f"r{i}",
        "time": (START + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "model_version": version,
        "latency_ms": latency,
        "role": role,
    }
    if kind == "prediction":
        base.update(row=0, source="serve", inputs={"x": 1.0}, prediction="a")
    else:
        base.update(status=status or 422, failures=[{"column": "x", "check": "in_range(0, 1)", "count": 1}])
    return {**base, **extra}


def test_the_window_ends_at_the_newest_record_and_is_sorted():
    records = [record(1, minutes=0), record(2, minutes=60 * 24 * 10), record(3, minutes=60 * 24 * 5)]
    chosen, start, end = in_window(records, days=7, until=None)
    assert [r["request_id"] for r in chosen] == ["r3", "r2"]
    assert end == START + timedelta(days=10)
    assert start == end - timedelta(days=7)


def test_health_counts_requests_refusals_latency_per_version():
    records = [record(i, latency=float(i), version="v1") for i in range(1, 101)]
    records += [record(200, kind="rejected", version="v1"), record(300, version="v2", latency=50.0)]
    summary = health(records)
    assert (summary["requests"], summary["refused"]) == (102, 1)
    assert summary["error_rate"] == pytest.approx(1 / 102, abs=1e-6)
    v1 = summary["by_version"]["v1"]
    assert v1["requests"] == 101
    assert v1["latency_ms"]["p50"] == pytest.approx(51.0, abs=1)
    assert summary["by_version"]["v2"]["latency_ms"]["p99"] == 50.0


def test_contract_failures_by_column_and_check():
    records = [
        record(1),
        record(2, kind="rejected"),
        record(3, kind="rejected"),
        record(4, kind="rejected", status=400),
    ]
    failures = contract_failures(records)
    assert (failures["requests"], failures["refused"], failures["share"]) == (4, 2, 0.5)
    assert failures["by_check"] == [{"column": "x", "check": "in_range(0, 1)", "requests": 2}]


def retrain_params(**overrides):
    from pipeline.params import RetrainParams

    values = {
        "max_drift_share": 0.5,
        "max_metric_drop": 0.05,
        "min_labelled_rows": 10,
        "max_model_age_days": 90,
        "event_file": "retrain.request",
        "data": RetrainData(policy="append", rows=1000, days=30),
    }
    return RetrainParams(**{**values, **overrides})


def report_with(share=None, window=None, test=None, rows=0):
    drift = {"dataset": {"share": share}} if share is not None else None
    performance = {"window": {"balanced_accuracy": window}, "test": {"balanced_accuracy": test}, "labelled_rows": rows}
    return {"drift": drift, "performance": performance if window is not None else None}


@pytest.mark.parametrize(
    ("report", "age", "event", "reasons"),
    [
        (report_with(share=0.2), 10, None, []),
        (report_with(share=0.5), 10, None, ["input drift: 0.50 of the columns drifted"]),
        (report_with(window=0.80, test=0.90, rows=50), 10, None, ["performance: balanced_accuracy 0.8000"]),
        (report_with(window=0.86, test=0.90, rows=50), 10, None, []),
        (report_with(share=0.1), 91, None, ["model age: 91 days"]),
        (report_with(share=0.1), 10, "new data from the field", ["event: new data from the field"]),
    ],
)
def test_each_trigger_is_a_reason(report, age, event, reasons):
    decision = decide(report, retrain_params(), "classification", age, event)
    assert decision["retrain"] is bool(reasons)
    assert len(decision["because"]) == len(reasons)
    for reason, said in zip(reasons, decision["because"], strict=True):
        assert said.startswith(reason)
    assert EXIT_RETRAIN == 3


def test_a_regression_project_watches_r2():
    report = {"drift": None, "performance": {"window": {"r2": 0.3}, "test": {"r2": 0.6}, "labelled_rows": 20}}
    assert decide(report, retrain_params(), "regression", 1, None)["because"][0].startswith("performance: r2")


CANARY = CanaryParams(
    share=0.5,
    mode="split",
    min_requests=20,
    max_error_rate_increase=0.02,
    max_latency_p99_ratio=1.5,
    max_metric_drop=0.02,
    promote_after_requests=40,
    auto_promote=False,
)


def traffic(n_prod, n_canary, canary_latency=5.0, canary_refused=0):
    prod = [record(i, version="v1") for i in range(n_prod)]
    canary = [record(1000 + i, version="v2", role="canary", latency=canary_latency) for i in range(n_canary)]
    canary += [record(5000 + i, kind="rejected", version="v2", role="canary") for i in range(canary_refused)]
    return prod + canary


def test_a_canary_with_too_little_traffic_waits(features):
    verdict = canary_verdict(traffic(50, 10), None, features, CANARY)
    assert verdict["action"] == "wait"
    assert "10 canary requests, fewer than 20" in verdict["because"][0]


def test_a_slower_or_failing_canary_is_rolled_back(features):
    slow = canary_verdict(traffic(50, 30, canary_latency=20.0), None, features, CANARY)
    assert slow["action"] == "rollback"
    assert "p99 latency 20.0 ms against prod's 5.0 ms" in slow["because"][0]
    failing = canary_verdict(traffic(50, 30, canary_refused=5), None, features, CANARY)
    assert failing["action"] == "rollback"
    assert failing["because"][0].startswith("error rate")
    assert failing["canary"]["versions"] == ["v2"]


def test_a_good_canary_may_be_promoted_after_enough_requests(features):
    assert canary_verdict(traffic(50, 30), None, features, CANARY)["action"] == "wait"
    promoted = canary_verdict(traffic(50, 45), None, features, CANARY)
    assert promoted["action"] == "promote"


def test_a_log_line_that_is_not_json_names_file_and_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"kind": "prediction"}\nnot json\n', encoding="utf-8")
    with pytest.raises(PipelineError, match=r"log\.jsonl:2: not a JSON line"):
        read_logs([path])


# refresh: how labelled rows join the reference


@pytest.fixture
def frames(toy_contracts):
    from pipeline.synthetic import generate

    contract = toy_contracts["binary"]
    frame = generate(60, seed=3, contract=contract)
    return features_of(contract), frame.iloc[:40].reset_index(drop=True), frame.iloc[40:].reset_index(drop=True)


def test_append_keeps_the_reference_and_adds_labelled_rows_once(frames):
    features, reference, fresh = frames
    policy = RetrainData(policy="append", rows=1000, days=30)
    kept, combined = combine(reference, pd.DataFrame(), fresh, features, policy)
    assert len(combined) == 60
    again_kept, again = combine(combined, kept, fresh, features, policy)  # the same rows again: no duplicates
    assert len(again) == 60
    pd.testing.assert_frame_equal(again.reset_index(drop=True), combined.reset_index(drop=True))
    assert len(again_kept) == 20


def test_a_labelled_row_replaces_the_reference_row_with_its_id(frames):
    features, reference, _ = frames
    changed = reference.head(1).copy()
    changed[features.target] = "yes" if changed[features.target].iloc[0] == "no" else "no"
    _, combined = combine(reference, pd.DataFrame(), changed, features, RetrainData(policy="append", rows=9, days=1))
    assert len(combined) == 40
    assert (
        combined[combined[features.id] == changed[features.id].iloc[0]][features.target].item()
        == changed[features.target].item()
    )


def test_rolling_rows_keeps_the_newest(frames):
    features, reference, fresh = frames
    _, combined = combine(
        reference, pd.DataFrame(), fresh, features, RetrainData(policy="rolling_rows", rows=25, days=1)
    )
    assert len(combined) == 25
    assert combined[features.id].tolist()[-20:] == fresh[features.id].tolist()


def test_rolling_days_needs_a_time_column(frames):
    features, reference, fresh = frames
    with pytest.raises(ConfigError, match='rolling_days needs a column with metadata=\\{"role": "time"\\}'):
        combine(reference, pd.DataFrame(), fresh, features, RetrainData(policy="rolling_days", rows=1, days=30))


def test_a_shadow_canarys_records_count_only_for_the_canary(features):
    prod = [record(i) for i in range(30)]
    shadow = [record(i, role="canary", version="v2", shadow=True) for i in range(30)]
    records = prod + shadow
    assert answered(records) == prod
    assert health(answered(records))["rows"] == 30
    assert contract_failures(answered(records))["requests"] == 30
    params = CanaryParams(
        share=1.0, mode="shadow", min_requests=10, max_error_rate_increase=0.02, max_latency_p99_ratio=1.5,
        max_metric_drop=0.02, promote_after_requests=20, auto_promote=False,
    )  # fmt: skip
    verdict = canary_verdict(records, None, features, params)
    assert verdict["canary"]["requests"] == 30
    assert verdict["action"] == "promote"


def test_the_canary_verdict_reports_each_sides_contract_failures_and_prediction_shift(features, params):
    prod = [record(i, prediction=0) for i in range(60)]
    canary = [record(100 + i, role="canary", version="v2", prediction=i % 2) for i in range(60)]
    refused = [record(200, kind="rejected", role="canary", version="v2", status=422)]
    verdict = canary_verdict(prod + canary + refused, None, features, params.canary, params.drift)
    assert verdict["canary"]["contract"]["refused"] == 1
    assert verdict["prod"]["contract"]["refused"] == 0
    shift = verdict["prediction_drift"]
    assert shift["column"] == "prediction"
    assert shift["reference_rows"] == shift["current_rows"] == 60
    assert shift["drifted"]  # all zeros against half ones
    same = canary_verdict(prod + [dict(r, prediction=0) for r in canary], None, features, params.canary, params.drift)
    assert not same["prediction_drift"]["drifted"]


def test_pandas_own_nulls_in_the_inputs_are_json_nulls_in_the_log(toy_contracts, params):
    """A nullable pandas column (BooleanDtype, Int64) holds pd.NA, which json cannot write by itself."""
    import json

    from pipeline.checks import check_frame
    from pipeline.prediction_log import line, now, prediction_records
    from pipeline.predictions import classes_of, score
    from pipeline.synthetic import generate
    from pipeline.train import fit_model

    schema = toy_contracts["binary"]
    features = features_of(schema)
    _, validated = check_frame(generate(80, seed=3, contract=schema), schema, "rows")
    validated.loc[validated.index[:2], "newsletter"] = pd.NA
    model = fit_model(validated, features, params.train)
    inputs = validated.drop(columns=[features.target])
    records = prediction_records(
        inputs,
        score(model, inputs, features, "v1"),
        classes_of(model),
        request_id="r",
        source="serve",
        version="v1",
        time=now(),
    )

    written = [json.loads(line(record)) for record in records]
    assert [record["inputs"]["newsletter"] for record in written[:2]] == [None, None]
    assert all(isinstance(record["inputs"]["member"], bool) for record in written)


def test_late_labels_are_the_id_and_the_target_or_the_reason_there_are_none(toy_contracts):
    from pipeline.replay import late_labels
    from pipeline.synthetic import generate

    schema = toy_contracts["multiclass"]
    features = features_of(schema)
    frame = generate(20, seed=1, contract=schema)

    assert list(late_labels(frame, features).columns) == [features.id, features.target]
    assert late_labels(frame.drop(columns=[features.target]), features) == "the file has no target column 'label'"
    without_id = features_of(schema.remove_columns([features.id]))
    assert late_labels(frame, without_id) == "the contract has no id column to join labels on"


@pytest.mark.parametrize(("flag", "value"), [("--max-rows", "0"), ("--rows-per-request", "0")])
def test_replay_refuses_a_count_below_one_in_one_line(flag, value, tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "pipeline.replay", str(tmp_path / "rows.csv"), flag, value],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {flag} must be at least 1 (got 0)"
