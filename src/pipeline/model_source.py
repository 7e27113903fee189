"""Which model to score with, and its version: a file, or a registry stage.

Batch scoring, the HTTP app and the monitor take `--model PATH` or `--stage
STAGE` and report the version they used:

- `--stage prod` asks the registry (GTO tags, read through `dvc.api`) which
  version holds the stage, and reads that version's bytes from the DVC cache
  or remote: the version is the registered one (`v1.2.0`);
- `--model PATH` loads the file; when dvc.lock records it, its bytes must be
  the recorded ones (a damaged or stale file is refused), and the version is
  the registered version of the current commit if there is one, else
  `md5:<hash>` of the file;
- in the serving image there is no git repository: the version is given
  (`--model-version`, the image's MODEL_VERSION).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

ARTIFACT = "model"


@dataclass(frozen=True)
class LoadedModel:
    model: Pipeline
    version: str
    source: str  # the file, or `model#prod` with the commit it came from
    raw: bytes = b""  # the skops file's bytes, for workers that load it themselves (distributed.py)


def from_file(path: str | Path, version: str | None = None, registry: bool = True) -> LoadedModel:
    """A model file; checked against dvc.lock when the lock records it.

    With `registry`, a file that is exactly the model committed at HEAD takes
    HEAD's registered version; the pipeline's own predict stage passes False,
    so its output depends on code, params and data only, never on a later tag.
    """
    from pipeline.model_store import file_md5, load_model, verify_against_lock

    path = Path(path)
    model = load_model(path)
    if version is None:
        md5 = verify_against_lock(path) or file_md5(path)
        registered = _registered_version_of_head(path, md5) if registry else None
        version = registered or f"md5:{md5}"
    return LoadedModel(model, version, str(path), path.read_bytes())


def from_stage(stage: str, artifact: str = ARTIFACT) -> LoadedModel:
    """The model version a registry stage holds, read from the DVC cache or remote.

    Who holds the stage is GTO's reading of the tags (`gto show`): an
    unassignment or a deprecation (`monitor --canary --apply`) ends a hold,
    which DVC's own `artifacts show --stage` does not know.
    """
    import dvc.api
    from dvc.exceptions import DvcException

    from pipeline.model_store import load_model
    from pipeline.registry import version_in_stage

    version = version_in_stage(artifact, stage)
    try:
        found = dvc.api.artifacts_show(artifact, version=version)
    except DvcException as error:
        raise PipelineError(f"{artifact} {version} (stage {stage!r}) cannot be found: {error}") from None
    with tempfile.TemporaryDirectory() as scratch:
        local = Path(scratch) / Path(found["path"]).name
        try:
            with dvc.api.open(found["path"], rev=found["rev"], mode="rb") as source:
                raw = source.read()
            local.write_bytes(raw)
        except DvcException as error:
            raise PipelineError(
                f"{found['path']} of {artifact} {version} is in neither the DVC cache nor the remote: {error}; "
                "`dvc pull` it, or push it from where it was trained"
            ) from None
        model = load_model(local)
    return LoadedModel(model, version, f"{artifact}#{stage} ({found['rev'][:12]})", raw)


def resolve(model_path: str | None, stage: str | None, default_path: str, version: str | None = None) -> LoadedModel:
    """`--stage` if given, else `--model` (default: the pipeline's model)."""
    if stage and model_path:
        raise PipelineError("give --model or --stage, not both")
    if stage:
        return from_stage(stage)
    return from_file(model_path or default_path, version)


def _registered_version_of_head(path: Path, md5: str) -> str | None:
    """HEAD's registered version, when the file is the model HEAD's dvc.lock records (and this is a git repo)."""
    import subprocess

    import yaml

    from pipeline.baseline import read_committed, resolve_revision
    from pipeline.registry import read_tags, registered_versions

    head = resolve_revision("HEAD")
    lock = read_committed(head, "dvc.lock") if head else None
    if lock is None:
        return None
    outs = [out for stage in (yaml.safe_load(lock) or {}).get("stages", {}).values() for out in stage.get("outs", [])]
    if not any(out.get("path") == path.as_posix() and out.get("md5") == md5 for out in outs):
        return None
    try:
        return registered_versions(read_tags(), ARTIFACT).get(head)
    except subprocess.CalledProcessError:
        return None
