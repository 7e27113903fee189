"""A canary beside prod in one real server: split traffic by request id, or shadow every request.

Two models fitted on different rows of the contract's synthetic data stand in
for prod and the canary (their versions are their files' md5s). In split mode
a request goes to the canary when the hash of its id falls in the canary's
share, the same way on every run; in shadow mode prod answers everything and
the canary's predictions on the same rows are only logged. The monitor tells
the two apart by each log record's `role`.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.errors import PipelineError
from pipeline.features import features_of
from pipeline.model_store import load_model, save_model
from pipeline.predictions import predict_arrays
from pipeline.serve import routed_to_canary, same_classes
from pipeline.synthetic import generate
from pipeline.train import fit_model

REQUESTS = 24


@pytest.fixture(scope="module")
def canary_model(contract, params, tmp_path_factory):
    """Another model of the same contract: fitted on other rows, so other bytes and another version."""
    features = features_of(contract)
    frame = generate(600, seed=5, contract=contract)
    model = fit_model(frame.iloc[150:550], features, params.train)
    path = tmp_path_factory.mktemp("canary") / "canary.skops"
    save_model(model, path)
    return path


def records(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def read_log(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def settled_log(servers, server, expected: int) -> list[dict]:
    """The log once the server has written it: stopping the server flushes its writer thread."""
    output = servers.stop(server)
    assert "Traceback" not in output, output
    lines = read_log(server.log)
    assert len(lines) >= expected, (len(lines), expected)
    return lines


def test_the_share_is_a_deterministic_hash_of_the_request_id():
    ids = [f"req-{i}" for i in range(20_000)]
    chosen = [routed_to_canary(request_id, 0.1) for request_id in ids]

    assert chosen == [routed_to_canary(request_id, 0.1) for request_id in ids]  # the same on every call
    assert 0.09 < sum(chosen) / len(ids) < 0.11
    assert not any(routed_to_canary(request_id, 0.0) for request_id in ids)
    assert all(routed_to_canary(request_id, 1.0) for request_id in ids)
    # A larger share keeps every request a smaller one chose: raising the share only adds traffic.
    wider = [routed_to_canary(request_id, 0.3) for request_id in ids]
    assert all(w for c, w in zip(chosen, wider, strict=True) if c)


def test_split_mode_answers_each_request_from_the_model_its_id_chooses(
    servers, fitted, canary_model, features, tmp_path
):
    model, rows = fitted
    log = tmp_path / "split.jsonl"
    server = servers.start(model, log, "--canary-model", str(canary_model), "--canary-share", "0.5")
    try:
        ready = server.get("/readyz")[1]
        versions = json.loads(ready)
        prod_version, canary_version = versions["model_version"], versions["canary"]["model_version"]
        assert prod_version != canary_version
        assert versions["canary"] == {"model_version": canary_version, "share": 0.5, "mode": "split"}
        answered = {}
        for i in range(REQUESTS):
            request_id = f"split-{i}"
            reply = server.post(
                "/predict", {"dataframe_records": records(rows.iloc[[i]])}, headers={"x-request-id": request_id}
            )
            assert reply.status == 200, reply.body
            answered[request_id] = reply.body["model_version"]
            assert reply.headers["x-model-role"] == ("canary" if answered[request_id] == canary_version else "prod")
        metrics = server.get("/metrics")[1].decode()
    finally:
        lines = settled_log(servers, server, REQUESTS)

    expected = {rid: canary_version if routed_to_canary(rid, 0.5) else prod_version for rid in answered}
    assert answered == expected
    assert set(answered.values()) == {prod_version, canary_version}, "24 ids should reach both models"
    for line in lines:
        role = "canary" if routed_to_canary(line["request_id"], 0.5) else "prod"
        assert line["role"] == role
        assert line["model_version"] == (canary_version if role == "canary" else prod_version)
    canary_count = sum(v == canary_version for v in answered.values())
    assert f'ratchet_model_rows_total{{role="canary",version="{canary_version}"}} {float(canary_count)}' in metrics
    assert f'ratchet_model_rows_total{{role="prod",version="{prod_version}"}} {float(REQUESTS - canary_count)}' in (
        metrics
    )


def test_a_refused_request_counts_against_the_model_its_id_chooses(servers, fitted, canary_model, contract, tmp_path):
    model, rows = fitted
    log = tmp_path / "refused.jsonl"
    server = servers.start(model, log, "--canary-model", str(canary_model), "--canary-share", "1")
    try:
        bad = records(rows.head(1))
        bad[0]["not_in_the_contract"] = 1
        reply = server.post("/predict", {"dataframe_records": bad}, headers={"x-request-id": "refused-1"})
        assert reply.status == 422, reply.body
    finally:
        [line] = settled_log(servers, server, 1)

    assert line["kind"] == "rejected"
    assert line["role"] == "canary"


def test_shadow_mode_answers_from_prod_and_logs_the_canarys_predictions(
    servers, fitted, canary_model, features, contract, tmp_path
):
    model, rows = fitted
    log = tmp_path / "shadow.jsonl"
    server = servers.start(
        model, log, "--canary-model", str(canary_model), "--canary-share", "1", "--canary-mode", "shadow"
    )
    batch = rows.head(6)
    try:
        reply = server.post("/predict", {"dataframe_records": records(batch)}, headers={"x-request-id": "shadow-1"})
        versions = json.loads(server.get("/readyz")[1])
    finally:
        lines = settled_log(servers, server, 2 * len(batch))

    assert reply.status == 200, reply.body
    assert reply.body["model_version"] == versions["model_version"]
    assert reply.headers["x-model-role"] == "prod"
    by_role = {role: [line for line in lines if line["role"] == role] for role in ("prod", "canary")}
    assert len(by_role["prod"]) == len(by_role["canary"]) == len(batch)
    assert all(line["request_id"] == "shadow-1" for line in lines)
    assert all(line["shadow"] for line in by_role["canary"])
    assert {line["model_version"] for line in by_role["canary"]} == {versions["canary"]["model_version"]}
    # What the log says the canary predicted is what the canary model predicts for the rows as sent (JSON's
    # rounding of floats included: a tree's split can fall exactly on a training value).
    sent = pd.DataFrame(records(batch))
    validated = contract.remove_columns([features.target]).validate(sent)
    predicted, _ = predict_arrays(load_model(canary_model), validated, features)
    assert [line["prediction"] for line in by_role["canary"]] == pd.Series(predicted).tolist()
    assert [line["prediction"] for line in by_role["prod"]] == reply.body["predictions"]


def test_a_canary_that_cannot_load_stops_the_server_before_it_listens(servers, fitted, tmp_path):
    model, _ = fitted
    broken = tmp_path / "not-a-model.skops"
    broken.write_bytes(b"not a skops file")
    with pytest.raises(AssertionError, match="exited with 1") as error:
        servers.start(model, tmp_path / "never.jsonl", "--canary-model", str(broken))
    assert "not-a-model.skops" in str(error.value)
    assert "Traceback" not in str(error.value)


def test_a_canary_that_knows_other_classes_is_refused(servers, fitted, contract, features, params, tmp_path):
    if not features.is_classification or len(features.target_classes) < 3:
        pytest.skip("needs three classes or more, so that a model fitted without one still has two")
    model, _ = fitted
    frame = generate(600, seed=5, contract=contract)
    dropped = frame[features.target].value_counts().index[-1]
    fewer = fit_model(frame[frame[features.target] != dropped], features, params.train)
    path = tmp_path / "fewer-classes.skops"
    save_model(fewer, path)
    with pytest.raises(AssertionError, match="exited with 1") as error:
        servers.start(model, tmp_path / "never.jsonl", "--canary-model", str(path))
    assert "classes" in str(error.value)
    assert "Traceback" not in str(error.value)


def test_the_classes_check_names_both_sides():
    same_classes(["a", "b", "c"], ["a", "b", "c"], "canary.skops")  # the same classes: no complaint
    for other in (["a", "b"], ["a", "c", "b"], []):  # fewer, another order, a regressor
        with pytest.raises(PipelineError, match=r"canary\.skops: the canary's classes .* are not prod's"):
            same_classes(["a", "b", "c"], other, "canary.skops")
