"""Fixtures for the image tier: the serving image, built with podman and run on 127.0.0.1.

`serve_image` (session scope) is the image under test. With SERVE_IMAGE set
(`make image-test` sets it after `make image`), it is that image, built from the
repository with the model at MODEL_PATH and the version MODEL_VERSION. Otherwise it
is built here, from a temp build context: the files the Dockerfile copies (the
real `pipeline.serve` among them), and a model that the project's own
`fit_model` fits on synthetic rows, at models/model.skops. The base is BASE_IMAGE if set (python:3.11-slim where a
registry can be reached), else the local Debian one that containers/base-image.sh
builds with debootstrap and caches. Under pytest-xdist one worker builds, behind a
file lock, and the others reuse its image.

`serving` (module scope) runs the image with `-p 127.0.0.1::8000` (podman picks a
free port), polls /healthz until it answers (bounded, and failing at once with the
container's log if it stops), yields its URL and ID, and stops and removes the
container by its ID.

Podman reads containers/containers.conf (runc, ulimits, slirp4netns) unless
CONTAINERS_CONF is set. Helpers are methods of the fixture objects, so tests never
import this module.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandera.pandas as pa
import pytest

from pipeline.features import features_of
from pipeline.model_store import save_model
from pipeline.params import Params
from pipeline.synthetic import generate
from pipeline.train import fit_model

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the Dockerfile copies from its build context (.dockerignore lets nothing else in).
DOCKERFILE_INPUTS = (
    "Dockerfile",
    ".dockerignore",
    "requirements-bootstrap.txt",
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "params.yaml",
)
BUILD_FLAGS = ("--isolation", "chroot", "--format", "docker")  # as `make image`: docker format keeps HEALTHCHECK
# Tagged per project, so a project made from the template and tested inside this one's run keeps its own.
TEST_TAG = f"localhost/{tomllib.loads((REPO_ROOT / 'pyproject.toml').read_text())['project']['name']}-serve:test"
TEST_MODEL_VERSION = "v0.0.0-test"
LOOPBACK = "127.0.0.1"
# Bounds against a hung command, never assertions: an uncached build takes about 2 minutes here.
BUILD_TIMEOUT = 1800
COMMAND_TIMEOUT = 120
READY_TIMEOUT = 60
STOP_TIMEOUT = 10
LOG_TAIL = 4000


def podman_env() -> dict[str, str]:
    return {
        **os.environ,
        "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(REPO_ROOT / "containers/containers.conf")),
    }


def podman(*args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-LOG_TAIL:]}")
    return result


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class ServeImage:
    ref: str  # an image ID when built here, so a concurrent rebuild of the tag changes nothing
    model_sha256: str
    model_version: str

    def config(self) -> dict:
        return json.loads(podman("image", "inspect", self.ref).stdout)[0]["Config"]


@dataclass(frozen=True)
class Serving:
    image: ServeImage
    container_id: str
    url: str

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def exec(self, *args: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.container_id, *args, check=False)

    def state(self) -> dict:
        return json.loads(podman("container", "inspect", self.container_id).stdout)[0]["State"]

    def stop(self) -> None:
        podman("stop", f"--time={STOP_TIMEOUT}", self.container_id, timeout=STOP_TIMEOUT + COMMAND_TIMEOUT)

    def healthcheck(self) -> subprocess.CompletedProcess[str]:
        """Run the image's own HEALTHCHECK once, as its timer would (no systemd here to run the timer)."""
        return podman("healthcheck", "run", self.container_id, check=False)


def _require_podman() -> None:
    if shutil.which("podman"):
        return
    hint = "podman not found: install Debian's podman, runc, slirp4netns and debootstrap (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(hint)
    pytest.skip(hint)


def _base_image() -> str:
    if os.environ.get("BASE_IMAGE"):
        return os.environ["BASE_IMAGE"]
    result = subprocess.run(
        [str(REPO_ROOT / "containers/base-image.sh")],
        env=podman_env(),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"containers/base-image.sh exited with {result.returncode}:\n{result.stderr[-LOG_TAIL:]}")
    return result.stdout.strip()


def _build_context(context: Path, contract: pa.DataFrameSchema, params: Params) -> Path:
    """The Dockerfile's inputs from the repository, the serving app and a freshly fitted model."""
    for name in DOCKERFILE_INPUTS:
        shutil.copy2(REPO_ROOT / name, context / name)
    shutil.copytree(REPO_ROOT / "src", context / "src", ignore=shutil.ignore_patterns("__pycache__"))
    model = context / "models/model.skops"
    save_model(fit_model(generate(300, seed=0, contract=contract), features_of(contract), params.train), model)
    return model


def _build(tmp: Path, contract: pa.DataFrameSchema, params: Params) -> ServeImage:
    context = tmp / "context"
    context.mkdir()
    model = _build_context(context, contract, params)
    iidfile = tmp / "image-id"
    podman(
        "build",
        *BUILD_FLAGS,
        f"--build-arg=BASE_IMAGE={_base_image()}",
        f"--build-arg=MODEL_VERSION={TEST_MODEL_VERSION}",
        f"--iidfile={iidfile}",
        f"--tag={TEST_TAG}",
        str(context),
        timeout=BUILD_TIMEOUT,
    )
    image_id = iidfile.read_text().strip().removeprefix("sha256:")
    return ServeImage(ref=image_id, model_sha256=sha256(model), model_version=TEST_MODEL_VERSION)


@pytest.fixture(scope="session")
def serve_image(tmp_path_factory, contract, params) -> ServeImage:
    _require_podman()
    if os.environ.get("SERVE_IMAGE"):
        model = REPO_ROOT / os.environ.get("MODEL_PATH", "models/model.skops")
        return ServeImage(os.environ["SERVE_IMAGE"], sha256(model), os.environ.get("MODEL_VERSION", "unversioned"))
    # pytest-xdist workers share the parent of their base temp dirs: the first one there builds.
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
    with (shared / "serve-image.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = shared / "serve-image.json"
        if not built.exists():
            image = _build(tmp_path_factory.mktemp("serve-image"), contract, params)
            built.write_text(json.dumps(image.__dict__))
        return ServeImage(**json.loads(built.read_text()))


def _log(container_id: str) -> str:
    result = podman("logs", container_id, check=False)
    return (result.stdout + result.stderr)[-LOG_TAIL:]


def _wait_until_ready(container_id: str, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        state = podman("container", "inspect", "--format", "{{.State.Status}}", container_id).stdout.strip()
        if state != "running":
            pytest.fail(f"container {container_id[:12]} is {state} before answering:\n{_log(container_id)}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    pytest.fail(f"container {container_id[:12]}: no 200 from /healthz after {READY_TIMEOUT}s:\n{_log(container_id)}")


@contextlib.contextmanager
def _running(image: ServeImage, *flags: str) -> Iterator[Serving]:
    """A container of the image; `flags` go to `pipeline.serve` after the image's own."""
    container_id = podman("run", "--detach", f"--publish={LOOPBACK}::8000", image.ref, *flags).stdout.strip()
    try:
        host_port = podman("port", container_id, "8000").stdout.strip()  # 127.0.0.1:PORT
        url = f"http://{host_port}"
        _wait_until_ready(container_id, url)
        yield Serving(image, container_id, url)
    finally:
        podman("stop", f"--time={STOP_TIMEOUT}", container_id, check=False, timeout=STOP_TIMEOUT + COMMAND_TIMEOUT)
        podman("rm", "--force", container_id, check=False)
        assert podman("container", "exists", container_id, check=False).returncode == 1, f"{container_id} left behind"


@pytest.fixture(scope="module")
def serving(serve_image: ServeImage) -> Iterator[Serving]:
    """One container of the image for the module's tests, ready to answer."""
    with _running(serve_image) as container:
        yield container


@pytest.fixture
def start_serving(serve_image: ServeImage):
    """A context manager that runs a fresh container of the image (flags for the server), for tests that stop it."""
    return lambda *flags: _running(serve_image, *flags)
