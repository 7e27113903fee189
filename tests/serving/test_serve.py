"""The HTTP app for real: uvicorn on 127.0.0.1, MLflow's request formats, a 4xx for every bad request.

Every request goes through the real server started by `served`. After the
bad ones, the server must still answer good ones; it never answers 500.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.features import allowed_values

ROOT = Path(__file__).resolve().parents[2]


def records(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def split(frame) -> dict:
    return json.loads(frame.to_json(orient="split", index=False))


@pytest.fixture(scope="module")
def rows(fitted):
    return fitted[1].head(5).reset_index(drop=True)


def test_records_and_split_get_the_same_answer(served, rows, features):
    by_records = served.post("/predict", {"dataframe_records": records(rows)})
    by_split = served.post("/predict", {"dataframe_split": split(rows)})

    assert by_records.status == by_split.status == 200, by_records.body
    assert by_records.body == by_split.body
    body = by_records.body
    assert len(body["predictions"]) == len(rows)
    assert body["model_version"].startswith("md5:")
    if features.is_classification:
        assert set(body["predictions"]) <= set(body["classes"])
        assert body["classes"] == sorted(features.target_classes, key=lambda c: c)  # scikit-learn's order
        for probabilities in body["probabilities"]:
            assert math.isclose(sum(probabilities), 1.0, rel_tol=1e-9)
    else:
        assert "probabilities" not in body
        assert all(isinstance(value, float) for value in body["predictions"])


def test_mlflow_clients_path_works_too(served, rows):
    assert served.post("/invocations", {"dataframe_records": records(rows)}).status == 200


def test_a_request_id_is_echoed(served, rows):
    reply = served.post("/predict", {"dataframe_records": records(rows)}, headers={"x-request-id": "abc-123"})
    assert reply.headers["x-request-id"] == "abc-123"


def test_the_target_may_come_along(served, fitted, contract, features):
    frame = fitted[1].head(2).copy()
    values = features.target_classes[:1] * 2 if features.is_classification else [1.0, 2.0]
    frame[features.target] = values
    low = [
        c.statistics.get("min_value") for c in contract.columns[features.target].checks if "min_value" in c.statistics
    ]
    if not features.is_classification and low:
        frame[features.target] = low[0]
    assert served.post("/predict", {"dataframe_records": records(frame)}).status == 200


# Bad requests: each a 4xx naming what is wrong; the columns come from the contract.


def first(names, reason):
    name = next(iter(names), None)
    if name is None:
        pytest.skip(f"this contract has no {reason}")
    return name


def bad_rows(kind: str, rows, contract, features):
    rows = records(rows)
    if kind == "wrong type":
        name = first(features.numeric, "numeric feature")
        rows[1][name] = "heavy"
        return rows, name, "coerce_dtype", [1]
    if kind == "missing column":
        name = first(features.columns, "feature")
        return [{k: v for k, v in row.items() if k != name} for row in rows], name, "missing column", []
    if kind == "unexpected column":
        return [{**row, "not_in_the_contract": 1} for row in rows], "not_in_the_contract", "unexpected column", []
    if kind == "out of range":
        candidates = [
            (name, check.statistics["min_value"])
            for name in features.numeric
            for check in contract.columns[name].checks
            if check.name in ("greater_than_or_equal_to", "greater_than", "in_range")
        ]
        name, low = first(candidates, "numeric feature with a lower bound")
        rows[2][name] = low - 1
        return rows, name, "greater_than" if "greater" in str(contract.columns[name].checks) else "in_range", [2]
    if kind == "unknown category":
        listed = [n for n in features.categorical if allowed_values(contract.columns[n]) is not None]
        name = first(listed, "listed categories")
        rows[3][name] = "Atlantis"
        return rows, name, "isin", [3]
    if kind == "null":
        name = first((n for n in features.columns if not contract.columns[n].nullable), "non-nullable feature")
        rows[0][name] = None
        return rows, name, "", [0]
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["wrong type", "missing column", "unexpected column", "out of range", "unknown category", "null"]
)
def test_a_row_that_breaks_the_contract_is_a_422_naming_column_check_and_row(served, rows, contract, features, kind):
    bad, column, check, failing_rows = bad_rows(kind, rows, contract, features)

    reply = served.post("/predict", {"dataframe_records": bad})

    assert reply.status == 422, reply.body
    assert reply.body["detail"] == "the request breaks the data contract"
    named = [f for f in reply.body["failures"] if f["column"] == column]
    assert named, reply.body
    assert check in named[0]["check"]
    if failing_rows:
        assert named[0]["rows"] == failing_rows


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b'{"dataframe_records": [{"x": NaN}]}', 400, "NaN is not a JSON number"),
        (b'{"dataframe_records": [{"x": Infinity}]}', 400, "Infinity is not a JSON number"),
        (b'{"dataframe_records": [{"x": -Infinity}]}', 400, "-Infinity is not a JSON number"),
        (b'{"instances": [1, 2]}', 400, "expected"),
        (b"[1, 2, 3]", 400, "expected"),
        (b'{"dataframe_records": [], "dataframe_split": {}}', 400, "expected"),
        (b'{"dataframe_records": {"x": 1}}', 400, "must be a list of objects"),
        (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}', 400, "row 0 has 1 values for 2 columns"),
        (b'{"dataframe_records": [{"x": {"nested": 1}}]}', 400, "an object is not a value"),
        (b'{"dataframe_records": []}', 422, "no rows"),
        (b'{"dataframe_records": [{"x": "\xff"}]}', 400, "not UTF-8"),
    ],
)
def test_malformed_requests_are_4xx(served, raw, status, message):
    reply = served.post("/predict", raw=raw)
    assert reply.status == status, reply.body
    assert message in reply.body["detail"]


def test_a_body_over_the_limit_is_413(served):
    reply = served.post("/predict", raw=b'{"dataframe_records": [' + b"{}, " * 20_000 + b"{}]}")
    assert reply.status == 413
    assert "the limit is 65536" in reply.body["detail"]


def test_too_many_rows_is_413(served):
    reply = served.post("/predict", {"dataframe_records": [{}] * 501})
    assert reply.status == 413
    assert "501 rows; the limit is 500" in reply.body["detail"]


def test_the_server_keeps_serving_after_bad_requests(served, rows):
    for raw in (b"{", b'{"dataframe_records": [{"x": NaN}]}', b"null"):
        assert served.post("/predict", raw=raw).status == 400
    assert served.post("/predict", {"dataframe_records": records(rows)}).status == 200
    assert served.get("/healthz") == (200, b'{"status":"ok"}')


# Health, readiness, metrics, docs and the prediction log


def test_readiness_names_the_model_version(served, features):
    status, body = served.get("/readyz")
    payload = json.loads(body)
    assert status == 200
    assert payload["ready"] is True
    assert payload["model_version"].startswith("md5:")
    assert payload["task"] == features.task


def test_metrics_count_requests_latency_predictions_failures_and_the_process(served, rows, features):
    served.post("/predict", {"dataframe_records": records(rows)})
    served.post("/predict", {"dataframe_records": [{**records(rows)[0], "not_in_the_contract": 1}]})

    status, body = served.get("/metrics")
    text = body.decode()

    assert status == 200
    assert re.search(r'ratchet_requests_total\{endpoint="/predict",status="200"\} [1-9]', text)
    assert re.search(r'ratchet_requests_total\{endpoint="/predict",status="422"\} [1-9]', text)
    assert 'ratchet_request_duration_seconds_bucket{endpoint="/predict",le="0.005"}' in text
    assert re.search(
        r'ratchet_validation_failures_total\{check="unexpected column[^"]*",column="not_in_the_contract"\}', text
    )
    assert re.search(r"ratchet_predicted_rows_total [1-9]", text)
    label = re.escape(str(features.target_classes[0])) if features.is_classification else "value"
    assert re.search(r'ratchet_predictions_total\{class="[^"]*"\} [1-9]', text), label
    assert re.search(r'ratchet_model_info\{source="[^"]+",version="md5:[0-9a-f]{32}"\} 1\.0', text)
    assert "process_resident_memory_bytes" in text
    assert "process_cpu_seconds_total" in text


def test_docs_show_the_contracts_columns(served, contract):
    status, body = served.get("/openapi.json")
    spec = json.loads(body)
    assert status == 200
    schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    records_schema = schema["oneOf"][0]["properties"]["dataframe_records"]["items"]
    assert set(records_schema["properties"]) == set(contract.columns)
    assert served.get("/docs")[0] == 200


def test_each_prediction_and_rejection_is_a_json_line_in_the_log(served, rows, features):
    reply = served.post("/predict", {"dataframe_records": records(rows)}, headers={"x-request-id": "log-check"})
    served.post(
        "/predict",
        {"dataframe_records": [{**records(rows)[0], "not_in_the_contract": 1}]},
        headers={"x-request-id": "log-reject"},
    )
    lines = []
    for _ in range(100):  # the log is written by a thread of its own: wait for it, boundedly
        lines = [json.loads(line) for line in served.log.read_text().splitlines() if line]
        if {"log-check", "log-reject"} <= {line["request_id"] for line in lines}:
            break
        time.sleep(0.1)
    mine = [line for line in lines if line["request_id"] == "log-check"]
    assert [line["row"] for line in mine] == list(range(len(rows)))
    assert [line["prediction"] for line in mine] == reply.body["predictions"]
    assert all(line["kind"] == "prediction" and line["source"] == "serve" for line in mine)
    assert all(line["model_version"] == reply.body["model_version"] for line in mine)
    assert set(mine[0]["inputs"]) == set(rows.columns)
    assert mine[0]["latency_ms"] > 0
    if features.is_classification:
        assert set(mine[0]["probabilities"]) == {str(c) for c in reply.body["classes"]}
    [rejected] = [line for line in lines if line["request_id"] == "log-reject"]
    assert (rejected["kind"], rejected["status"]) == ("rejected", 422)
    assert rejected["failures"][0]["column"] == "not_in_the_contract"


def test_a_damaged_model_stops_the_server_before_it_listens(tmp_path, fitted):
    damaged = tmp_path / "model.skops"
    damaged.write_bytes(fitted[0].read_bytes()[:500])
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.serve", "--port", "1", "--model", str(damaged)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert str(damaged) in done.stderr
    assert "Traceback" not in done.stderr
