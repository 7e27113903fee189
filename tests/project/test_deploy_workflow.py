"""The registry's wiring: dvc.yaml declares the model, the Makefile tags it, the deploy workflow acts on prod tags.

tests/project/test_workflows.py holds every workflow to the schema, zizmor and
least privilege; this file checks what is particular to deploy.yml: it runs
on prod assignment tags only; `fetch` reads the code and the DVC remote and
hands the model on as an artifact; `image` smoke-tests the image with `make
image-test` before it logs in to GHCR and pushes the version and `prod`, with
provenance and an SBOM, and is the only job that may write packages; and a
rollback deploys the version its tag names. The image job's own shell steps
run here for real (bash, as GitHub runs them); tests/integration/test_registry.py
runs both jobs' shell steps on a real rollback tag.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
import yaml

from pipeline.registry import Release

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github/workflows/deploy.yml"


def load_workflow() -> dict:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def makefile_default(variable: str) -> str:
    return re.search(rf"^{variable} \?= (\S+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)[1]


def recipe(target: str) -> str:
    return re.search(rf"^{target}:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)[1]


def test_dvc_yaml_declares_the_model_the_makefile_registers():
    artifacts = yaml.safe_load((ROOT / "dvc.yaml").read_text())["artifacts"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    model = artifacts[makefile_default("ARTIFACT")]
    assert model["type"] == "model"
    assert model["path"] == params["paths"]["model"]  # written literally: keep them equal
    assert model["desc"]
    assert model["labels"]


def test_make_targets_run_gto_and_the_registry_module():
    assert makefile_default("STAGE") == "prod"
    # Values come from the environment, quoted by the shell (the Makefile exports them).
    assert 'pipeline.registry declared "$$ARTIFACT" --rev "$$REV"' in recipe("register")
    assert '$(BIN)/gto register "$$ARTIFACT" "$$REV"' in recipe("register")
    assert '$(BIN)/gto assign "$$ARTIFACT" --version "$$VERSION" --stage "$$STAGE"' in recipe("promote")
    assert 'pipeline.registry rollback-target "$$ARTIFACT" --stage "$$STAGE"' in recipe("rollback")
    assert 'gto assign "$$ARTIFACT"' in recipe("rollback")
    assert "--force" in recipe("rollback")  # GTO refuses a version that was in the stage before without it


def test_deploy_runs_on_prod_assignment_tags_only():
    workflow = load_workflow()
    assert workflow["on"] == {"push": {"tags": ["*#prod#*"]}}
    [pattern] = workflow["on"]["push"]["tags"]
    for tag in ("model#prod#1", "model#prod#12"):  # what `gto assign --stage prod` (make promote/rollback) makes
        assert fnmatchcase(tag, pattern), tag
    for tag in ("model@v1.0.0", "model#staging#1", "model#prod!#2", "v1.0.0"):
        assert not fnmatchcase(tag, pattern), tag


def jobs() -> dict:
    return load_workflow()["jobs"]


def step_using(job: dict, action: str) -> dict:
    [step] = [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]
    return step


def step_running(job: dict, command: str) -> dict:
    [step] = [step for step in job["steps"] if command in step.get("run", "")]
    return step


def position(job: dict, step: dict) -> int:
    return job["steps"].index(step)


def run_step(step: dict, cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """One `run:` step as GitHub runs it (`bash -e`, its env, a GITHUB_OUTPUT file): the result and its outputs."""
    github_output = cwd.parent / f"{cwd.name}-github-output"
    github_output.write_text("")
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env, "GITHUB_OUTPUT": str(github_output)},
        capture_output=True,
        text=True,
        check=False,
    )
    return done, dict(line.split("=", 1) for line in github_output.read_text().splitlines())


def test_deploy_fetches_then_builds_each_job_with_only_what_it_needs():
    workflow = load_workflow()
    assert workflow["permissions"] == {}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    fetch, image = workflow["jobs"]["fetch"], workflow["jobs"]["image"]
    assert set(workflow["jobs"]) == {"fetch", "image"}
    assert "needs" not in fetch
    assert image["needs"] == "fetch"
    # Only the fetch job sees the remote's credentials; only the image job may write packages. BuildKit's
    # provenance and SBOM are pushed with the image: no OIDC token (id-token) or GitHub attestations.
    assert fetch["permissions"] == {"contents": "read"}
    assert fetch["environment"] == "dvc-remote"
    assert image["permissions"] == {"contents": "read", "packages": "write"}
    assert "environment" not in image
    assert "secrets." not in str(image)
    assert fetch["env"] == {"TAG": "${{ github.ref_name }}"}
    for job in (fetch, image):
        checkout = job["steps"][0]
        assert checkout["uses"].split("@")[0] == "actions/checkout"
        assert checkout["with"]["persist-credentials"] is False
        assert "ref" not in checkout["with"]  # the pushed tag, as GitHub checks it out
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), "expressions go through env:, never inline in run:"
    assert fetch["steps"][0]["with"] == {"fetch-depth": 0, "persist-credentials": False}
    uses = [step["uses"].split("@")[0] for step in fetch["steps"] if "uses" in step]
    assert uses == ["actions/checkout", "actions/setup-python", "actions/upload-artifact"]  # no cache (poisoning)
    uses = [step["uses"].split("@")[0] for step in image["steps"] if "uses" in step]
    assert uses == [
        "actions/checkout",
        "actions/download-artifact",
        "actions/setup-python",
        "docker/setup-buildx-action",
        "docker/login-action",
        "docker/metadata-action",
        "docker/build-push-action",
    ]


def test_every_action_is_pinned_to_a_commit_with_its_release_in_a_comment():
    for line in WORKFLOW.read_text().splitlines():
        if "uses:" in line:
            assert re.search(r"uses: [\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line.strip()


def test_deploy_runs_the_registry_check_then_dvc_artifacts_get():
    job = jobs()["fetch"]
    runs = [step["run"] for step in job["steps"] if "run" in step]
    assert runs[0] == "make venv"
    check = step_running(job, "pipeline.registry check")
    assert '.venv/bin/python -m pipeline.registry check "${TAG}" > release.env' in check["run"]
    assert 'cat release.env >> "${GITHUB_OUTPUT}"' in check["run"]
    fetch = step_running(job, "dvc artifacts get")
    assert position(job, check) < position(job, fetch)
    assert '.venv/bin/dvc artifacts get . "${NAME}" --rev "${VERSION}" -o "${MODEL_PATH}"' in fetch["run"]
    assert "printf '%s\\n' \"${DVC_CONFIG_LOCAL}\" > .dvc/config.local" in fetch["run"]
    assert fetch["env"]["DVC_CONFIG_LOCAL"] == "${{ secrets.DVC_CONFIG_LOCAL }}"
    # Every output the fetch step and the job read is a line `check` prints.
    outputs = set(re.findall(rf"steps\.{check['id']}\.outputs\.(\w+)", str(fetch["env"])))
    assert outputs == {"name", "version", "path"}
    passed_on = set(re.findall(rf"steps\.{check['id']}\.outputs\.(\w+)", str(job["outputs"])))
    assert passed_on == {"name", "version", "path", "commit"}
    assert passed_on <= {field.name for field in dataclasses.fields(Release)}


def test_the_model_goes_from_fetch_to_image_as_an_artifact_checked_by_its_digest():
    fetch, image = jobs()["fetch"], jobs()["image"]
    upload = step_using(fetch, "actions/upload-artifact")
    assert position(fetch, step_running(fetch, "dvc artifacts get")) < position(fetch, upload)
    assert upload["with"]["path"] == "${{ steps.release.outputs.path }}"
    assert upload["with"]["if-no-files-found"] == "error"
    assert upload["with"]["retention-days"] == 1
    digest = step_running(fetch, "sha256sum")
    assert position(fetch, digest) < position(fetch, upload)
    assert fetch["outputs"]["sha256"] == f"${{{{ steps.{digest['id']}.outputs.sha256 }}}}"
    download = step_using(image, "actions/download-artifact")
    assert download["with"]["name"] == upload["with"]["name"]
    place = step_running(image, "sha256sum --check")
    assert position(image, download) < position(image, place) < position(image, step_running(image, "make image-test"))
    assert place["env"]["DOWNLOADED"] == download["with"]["path"]
    assert image["env"]["MODEL_SHA256"] == "${{ needs.fetch.outputs.sha256 }}"


def test_the_image_is_smoke_tested_before_anything_is_pushed():
    job = jobs()["image"]
    smoke = step_running(job, "make image-test")
    assert smoke["run"] == "make image-test"
    for action in ("docker/setup-buildx-action", "docker/login-action", "docker/build-push-action"):
        assert position(job, smoke) < position(job, step_using(job, action)), action
    # The smoke test builds the version the tag names, with its model, on the base the pushed build uses.
    assert job["env"]["VERSION"] == "${{ needs.fetch.outputs.version }}"
    assert job["env"]["MODEL_PATH"] == "${{ needs.fetch.outputs.path }}"
    assert job["env"]["BASE_IMAGE"] == "docker.io/library/python:3.11-slim"


def test_make_reads_the_version_path_and_base_the_image_job_sets():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/"),
        "VERSION": "v9.8.7",
        "MODEL_PATH": "models/other.skops",
        "BASE_IMAGE": "docker.io/library/python:3.11-slim",
    }
    probe = (
        "probe: ; @echo $(IMAGE_VERSION) $(MODEL_PATH) $(BASE_IMAGE); echo $$IMAGE_VERSION $$MODEL_PATH $$BASE_IMAGE"
    )
    done = subprocess.run(
        ["make", "--no-print-directory", "-f", "Makefile", "--eval", probe, "probe"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = "v9.8.7 models/other.skops docker.io/library/python:3.11-slim"
    assert done.stdout.splitlines() == [expected, expected]  # make's values, and the recipes' environment


def test_the_push_is_the_version_and_prod_with_provenance_and_an_sbom():
    job = jobs()["image"]
    login = step_using(job, "docker/login-action")
    assert login["with"] == {
        "registry": "ghcr.io",
        "username": "${{ github.actor }}",
        "password": "${{ github.token }}",
    }
    meta = step_using(job, "docker/metadata-action")
    name = step_running(job, "ghcr.io/")
    assert meta["with"]["images"] == f"${{{{ steps.{name['id']}.outputs.name }}}}"
    assert meta["with"]["flavor"] == "latest=false"
    tags = meta["with"]["tags"].splitlines()
    assert tags == [
        "type=raw,value=${{ needs.fetch.outputs.version }},priority=300",
        "type=raw,value=prod,priority=200",
    ]
    push = step_using(job, "docker/build-push-action")
    assert push["with"]["context"] == "."  # the checkout, with the model in it (the default Git context has none)
    assert push["with"]["push"] is True
    assert push["with"]["provenance"] == "mode=max"
    assert push["with"]["sbom"] is True
    for output in ("tags", "labels", "annotations"):
        assert push["with"][output] == f"${{{{ steps.{meta['id']}.outputs.{output} }}}}"
    build_args = dict(line.split("=", 1) for line in push["with"]["build-args"].splitlines())
    assert build_args == {
        "BASE_IMAGE": "${{ env.BASE_IMAGE }}",
        "MODEL_PATH": "${{ needs.fetch.outputs.path }}",
        "MODEL_VERSION": "${{ needs.fetch.outputs.version }}",
    }
    dockerfile = (ROOT / "Dockerfile").read_text()
    for arg in build_args:
        assert re.search(rf"^ARG {arg}=", dockerfile, flags=re.MULTILINE), arg


def test_a_rollback_deploys_the_version_its_tag_names_never_the_newest():
    """A rollback tag points at an older version's commit: everything follows the tag, nothing looks up the newest."""
    text = WORKFLOW.read_text()
    assert "A rollback" in text[: text.index("\nname:")]  # the header says how rollbacks deploy
    values = []
    for job in jobs().values():
        values += [str(value) for key, value in job.items() if key not in ("steps", "runs-on")]
        for step in job["steps"]:
            values += [str(value) for key, value in step.get("with", {}).items() if key != "flavor"]
            values += [step.get("run", ""), str(step.get("env", {}))]
    for newest in ("latest", "--stage", "gto show", "gto history", "rollback-target", "sort -V", "tail -n"):
        assert not [value for value in values if newest in value], newest
    # What the image job knows of the release is what `check` made of the pushed tag.
    image = jobs()["image"]
    assert set(re.findall(r"needs\.fetch\.outputs\.(\w+)", str(image))) == {"version", "path", "commit", "sha256"}
    assert image["env"]["COMMIT"] == "${{ needs.fetch.outputs.commit }}"
    assert jobs()["fetch"]["outputs"]["version"] == "${{ steps.release.outputs.version }}"


def test_the_image_job_refuses_a_checkout_that_is_not_the_versions_commit(tmp_path):
    guard = step_running(jobs()["image"], "git rev-parse HEAD")
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "v1"], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
    done, _ = run_step(guard, repo, {"COMMIT": head.stdout.strip(), "VERSION": "v1.0.0"})
    assert done.returncode == 0, done.stdout + done.stderr
    done, _ = run_step(guard, repo, {"COMMIT": "0" * 40, "VERSION": "v1.0.0"})
    assert done.returncode != 0
    assert f"::error::Checked out {head.stdout.strip()}, but v1.0.0 is commit {'0' * 40}." in done.stdout


def test_the_image_job_bakes_in_only_the_bytes_the_fetch_job_fetched(tmp_path):
    place = step_running(jobs()["image"], "sha256sum --check")
    model = b"the model's bytes"
    expected = hashlib.sha256(model).hexdigest()
    for name, content, ok in (("good", model, True), ("tampered", model + b"!", False)):
        checkout, downloaded = tmp_path / name / "checkout", tmp_path / name / "temp" / "model"
        checkout.mkdir(parents=True)
        downloaded.mkdir(parents=True)
        (downloaded / "model.skops").write_bytes(content)
        env = {"DOWNLOADED": str(downloaded), "MODEL_PATH": "models/model.skops", "MODEL_SHA256": expected}
        done, _ = run_step(place, checkout, env)
        assert (done.returncode == 0) is ok, done.stdout + done.stderr
        assert (checkout / "models/model.skops").read_bytes() == content  # in place, and checked there
    done, _ = run_step(place, tmp_path / "good" / "checkout", env | {"MODEL_PATH": "models/missing.skops"})
    assert done.returncode != 0


def test_the_image_name_is_the_repository_lower_cased(tmp_path):
    name = step_running(jobs()["image"], "ghcr.io/")
    done, outputs = run_step(name, tmp_path, {"REPOSITORY": "Example-Org/Ratchet-Project"})
    assert done.returncode == 0, done.stderr
    assert outputs == {"name": "ghcr.io/example-org/ratchet-project-serve"}


def test_the_registry_commands_the_workflow_and_makefile_run_exist():
    for command in ("check", "declared", "rollback-target"):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.registry", command, "--help"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
