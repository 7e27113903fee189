"""The model registry for real: `make register`, `make promote`, `make rollback` with gto, read back by dvc.

One lifecycle in a copy of the reproduced project: register and promote v1,
train a second version, register and promote it, then roll back. After each
step, a fresh `git clone` (tags, no DVC cache) with the remote in
.dvc/config.local, as the deploy workflow gets it, runs `dvc artifacts get .
model --stage prod`: the bytes must be that version's model, so they come
from the DVC remote, through the tag. Every tag must name an artifact that
dvc.yaml declares. Finally the deploy workflow's own shell steps run on the
rollback tag, with its `${{ }}` values filled in as GitHub would: the `fetch`
job's, then the `image` job's up to the build, in another checkout of the tag,
with the model handed over as upload-artifact and download-artifact would.
Building, smoke-testing and pushing the image are the image tier's part
(tests/image); GitHub's actions and GHCR cannot run here.

Make runs as the `make` fixture (conftest.py) runs it: the test's venv, never a new one.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

VENV = Path(sys.executable).parent.parent
EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")


def declared(ws) -> dict:
    return yaml.safe_load((ws.path / "dvc.yaml").read_text(encoding="utf-8"))["artifacts"]


def assert_every_tag_is_declared(ws) -> list[str]:
    tags = ws.git("tag", "--list").stdout.split()
    assert tags
    names = declared(ws)
    for tag in tags:
        assert re.match(r"^(.+?)[@#]", tag)[1] in names, f"{tag} names no artifact dvc.yaml declares"
    shown = ws.run(str(VENV / "bin" / "gto"), "show", "--json").stdout
    assert set(yaml.safe_load(shown)) <= set(names), shown
    return tags


def prod_model_md5(ws, tmp_path: Path, step: str) -> str:
    """`dvc artifacts get . model --stage prod` in a fresh clone: tags from git, bytes from the DVC remote only."""
    clone = ws.clone_to(tmp_path / f"clone-{step}")
    assert not (clone.path / ".dvc" / "cache").exists()
    (clone.path / ".dvc" / "config.local").write_text((ws.path / ".dvc" / "config.local").read_text())
    out = tmp_path / f"prod-{step}.skops"
    clone.dvc("artifacts", "get", ".", "model", "--stage", "prod", "-o", str(out))
    return clone.md5(str(out))


# Steps that stand for something the test does otherwise: the venv is the test's, the image tier
# builds and smoke-tests the image, and apt-get installs nothing here.
SKIPPED_RUNS = ("make venv", "make image-test", "apt-get install")


def run_deploy_job(ws, job_name: str, values: dict[str, str]) -> dict[str, str]:
    """Run a deploy job's shell steps in ws as GitHub runs them (`bash -e`, env, outputs); its `outputs:` resolved.

    `values` fills the `${{ }}` expressions the job reads (github.*, secrets.*, needs.*, runner.*);
    the steps' outputs are added as they are written. Steps with `uses:` do not run.
    """
    if not (ws.path / ".venv").exists():  # git-ignored: stands in for `make venv`, the one step skipped
        (ws.path / ".venv").symlink_to(VENV, target_is_directory=True)
    job = yaml.safe_load((ws.path / ".github/workflows/deploy.yml").read_text())["jobs"][job_name]
    values = dict(values)

    def fill(text: str) -> str:
        return EXPRESSION.sub(lambda m: values[m[1]], text)

    for number, step in enumerate(job["steps"]):
        if "run" not in step or any(skipped in step["run"] for skipped in SKIPPED_RUNS):
            continue
        env = {key: fill(value) for key, value in {**job.get("env", {}), **step.get("env", {})}.items()}
        github_output = ws.path.parent / f"github-output-{job_name}-{number}"
        github_output.touch()
        ws.run("bash", "-e", "-c", step["run"], env={**env, "GITHUB_OUTPUT": str(github_output)})
        step_outputs = dict(line.split("=", 1) for line in github_output.read_text().splitlines())
        values.update({f"steps.{step.get('id')}.outputs.{key}": value for key, value in step_outputs.items()})
    return {key: fill(value) for key, value in job.get("outputs", {}).items()}


def run_deploy_workflow(ws, tag: str, secret: str) -> dict[str, str]:
    """The fetch job on `tag`, in ws: its outputs, the ones the image job reads."""
    return run_deploy_job(ws, "fetch", {"github.ref_name": tag, "secrets.DVC_CONFIG_LOCAL": secret})


def test_register_promote_a_second_version_and_roll_back(workspace, make, tmp_path, features):
    model = workspace.params()["paths"]["model"]
    assert declared(workspace)["model"]["path"] == model
    workspace.set_remote(tmp_path / "remote")
    workspace.dvc("push")
    v1 = workspace.md5(model)
    assert v1 == workspace.locked_out_md5(model)

    registered = make("register", "VERSION=v1.0.0")
    assert "model@v1.0.0" in registered.output
    assert "git push origin model@v1.0.0" in registered.output
    promoted = make("promote", "VERSION=v1.0.0")
    assert "git push origin 'model#prod#1'" in promoted.output
    assert prod_model_md5(workspace, tmp_path, "v1") == v1
    assert_every_tag_is_declared(workspace)

    # A second version: another model family, trained, committed and pushed (the registry needs
    # nothing downstream of train, so only that stage runs).
    params = workspace.path / "params.yaml"
    family = workspace.params()["train"]["model"]
    linear = "logistic_regression" if features.is_classification else "ridge"  # quick to fit at any data size
    other = linear if family != linear else "hist_gradient_boosting"
    text = params.read_text(encoding="utf-8")
    params.write_text(text.replace(f"model: {family}", f"model: {other}", 1), encoding="utf-8")
    assert workspace.params()["train"]["model"] == other
    workspace.single_threaded().dvc("repro", "--single-item", "train")
    workspace.commit("Another model family")
    workspace.dvc("push")
    v2 = workspace.md5(model)
    assert v2 == workspace.locked_out_md5(model) != v1

    registered = make("register")  # no VERSION: GTO bumps the patch
    assert "git push origin model@v1.0.1" in registered.output
    promoted = make("promote", "VERSION=v1.0.1")
    assert "git push origin 'model#prod#2'" in promoted.output
    assert prod_model_md5(workspace, tmp_path, "v2") == v2
    assert_every_tag_is_declared(workspace)

    rolled_back = make("rollback")
    assert "back to v1.0.0" in rolled_back.output
    assert "git push origin 'model#prod#3'" in rolled_back.output
    assert prod_model_md5(workspace, tmp_path, "rollback") == v1
    tags = assert_every_tag_is_declared(workspace)
    assert sorted(tags) == ["model#prod#1", "model#prod#2", "model#prod#3", "model@v1.0.0", "model@v1.0.1"]
    for tag in tags:
        checked = workspace.python("-m", "pipeline.registry", "check", tag)
        assert checked.stdout.startswith("name=model\n"), checked.output

    # Pushing model#prod#3 runs the deploy workflow. Its fetch job, in a checkout of the tag as
    # actions/checkout makes it, fetches v1.0.0's bytes: the rollback's version, not the newest.
    checkout = workspace.clone_to(tmp_path / "checkout")
    checkout.git("checkout", "-q", "model#prod#3")
    release = run_deploy_workflow(checkout, "model#prod#3", (workspace.path / ".dvc" / "config.local").read_text())
    v1_commit = workspace.git("rev-parse", "model@v1.0.0^{commit}").stdout.strip()
    assert release == {
        "name": "model",
        "version": "v1.0.0",
        "path": model,
        "commit": v1_commit,
        "sha256": hashlib.sha256((checkout.path / model).read_bytes()).hexdigest(),
    }
    assert checkout.md5(model) == v1

    # The image job, on another runner: a checkout of the same tag, no model, no DVC, no secret; the
    # model arrives as download-artifact leaves it (the file, by its name, in the directory given).
    runner = workspace.clone_to(tmp_path / "image-runner")
    runner.git("checkout", "-q", "model#prod#3")
    assert not (runner.path / model).exists()
    downloaded = tmp_path / "runner-temp" / "model"
    downloaded.mkdir(parents=True)
    shutil.copy2(checkout.path / model, downloaded / Path(model).name)
    needs = {f"needs.fetch.outputs.{key}": value for key, value in release.items()}
    run_deploy_job(
        runner,
        "image",
        {**needs, "runner.temp": str(downloaded.parent), "github.repository": "Example-Org/Ratchet-Project"},
    )
    assert runner.md5(model) == v1
    assert runner.git("rev-parse", "HEAD").stdout.strip() == v1_commit


def test_a_tag_for_an_artifact_dvc_yaml_does_not_declare_is_refused(workspace, make):
    refused = make("register", "ARTIFACT=churn-model", check=False)
    assert refused.returncode != 0
    assert "declares no artifact 'churn-model'" in refused.stderr
    assert workspace.git("tag", "--list").stdout == "", "make register tagged an undeclared artifact"

    # GTO alone tags any name; the deploy workflow's check stops such a tag.
    workspace.run(str(VENV / "bin" / "gto"), "register", "churn-model", "--version", "v1.0.0")
    workspace.run(str(VENV / "bin" / "gto"), "assign", "churn-model", "--version", "v1.0.0", "--stage", "prod")
    with pytest.raises(AssertionError, match="declares no artifact 'churn-model'"):
        run_deploy_workflow(workspace, "churn-model#prod#1", "")
