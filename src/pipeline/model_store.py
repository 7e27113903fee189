"""Saving and loading the model with skops: no pickle, and byte-identical files.

`skops.io.dump` names arrays after Python object ids and stamps zip entries with
the current time, so two dumps of the same model differ. We rewrite the archive
with ids renumbered in order of first appearance, entries sorted and a fixed
timestamp; `skops.io.load` reads the result unchanged.

Loading trusts skops's own safe defaults plus exactly `TRUSTED_TYPES`: the few
further types our model families need. A file that needs anything else is
refused, never executed. A damaged file (truncated, bad CRC, broken
schema.json, something other than a fitted pipeline inside) is one line naming
the file, never a traceback; `verify_against_lock` refuses a file whose bytes
are not the ones dvc.lock records (DVC's checkout does not re-hash its cache).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

TRUSTED_TYPES = (
    "functools.partial",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils.validation.check_array",
)

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_NPY_NAME = re.compile(r"^(\d+)\.npy$")


def save_model(model: Pipeline, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canonical_dump(model))


def load_model(path: str | Path) -> Pipeline:
    """The fitted pipeline in a skops file; any damage or untrusted content is a PipelineError naming the file."""
    sio = _skops_io()
    from sklearn.pipeline import Pipeline

    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: model file not found; run `dvc repro` (or `dvc pull`) first")
    restore = "restore it with `dvc checkout` (or `dvc pull`), or retrain with `dvc repro`"
    try:
        untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    except Exception as error:  # a damaged file fails inside zipfile, json or skops in many ways
        raise PipelineError(f"{path}: not a readable skops model file ({_reason(error)}); {restore}") from None
    if untrusted:
        raise PipelineError(f"{path}: refusing to load a model that needs untrusted types: {', '.join(untrusted)}")
    try:
        model = sio.load(path, trusted=list(TRUSTED_TYPES))
    except Exception as error:
        raise PipelineError(f"{path}: the model file is damaged ({_reason(error)}); {restore}") from None
    if not isinstance(model, Pipeline) or not hasattr(model, "predict"):
        raise PipelineError(f"{path}: holds a {type(model).__name__}, not a fitted scikit-learn pipeline; {restore}")
    return model


# Imported by skops' table of scikit-learn's estimators only because dask is installed (the Dask path):
# scikit-learn's vendored array-api-compat has a dask subpackage that imports dask.array. Nothing here
# hands dask arrays to scikit-learn.
_NOT_AN_ESTIMATOR_PACKAGE = "sklearn.externals.array_api_compat.dask"


def _skops_io():
    """`skops.io`, imported without the dask.array import its estimator table would pull in (0.6 s a process).

    skops builds that table at import by walking every scikit-learn package (`all_estimators`), which
    imports each package it walks and skips those that fail to import. For that walk only, the
    array-api-compat dask package is marked as not importable; afterwards it imports normally again.
    """
    import sys

    if "skops.io" in sys.modules or _NOT_AN_ESTIMATOR_PACKAGE in sys.modules:
        import skops.io

        return skops.io
    sys.modules[_NOT_AN_ESTIMATOR_PACKAGE] = None  # `import` raises ImportError, which the walk skips
    try:
        import skops.io
    finally:
        del sys.modules[_NOT_AN_ESTIMATOR_PACKAGE]
    return skops.io


def _reason(error: Exception) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def file_md5(path: str | Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def locked_md5(path: str | Path, lock_file: str | Path = "dvc.lock") -> str | None:
    """The md5 dvc.lock records for an output path; None when the lock does not record it."""
    import yaml

    lock_file = Path(lock_file)
    try:
        lock = yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return None
    except (OSError, yaml.YAMLError) as error:
        raise PipelineError(f"{lock_file}: cannot be read: {_reason(error)}") from None
    wanted = Path(path).as_posix()
    for stage in (lock.get("stages") or {}).values():
        for out in stage.get("outs") or []:
            if Path(str(out.get("path"))).as_posix() == wanted:
                return out.get("md5")
    return None


def verify_against_lock(path: str | Path, lock_file: str | Path = "dvc.lock") -> str | None:
    """Refuse a model whose bytes differ from what dvc.lock records; returns the md5 (None if not recorded)."""
    expected = locked_md5(path, lock_file)
    if expected is None:
        return None
    actual = file_md5(path)
    if actual != expected:
        raise PipelineError(
            f"{path}: md5 {actual} is not the {expected} that {lock_file} records: the file is damaged or from "
            "another run; `dvc pull --force` fetches the recorded one from the remote, `dvc repro` rebuilds it"
        )
    return actual


def canonical_dump(model: object) -> bytes:
    """skops bytes with object ids renumbered, entries sorted and timestamps fixed."""
    sio = _skops_io()

    source = zipfile.ZipFile(io.BytesIO(sio.dumps(model)))
    renumber: dict[str, str] = {}
    schema = _renumber(json.loads(source.read("schema.json")), renumber)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        entries = {"schema.json": json.dumps(schema, indent=2).encode()}
        for name in source.namelist():
            match = _NPY_NAME.match(name)
            if match:
                entries[f"{renumber.setdefault(match[1], str(len(renumber)))}.npy"] = source.read(name)
            elif name != "schema.json":
                entries[name] = source.read(name)
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            target.writestr(info, entries[name])
    return out.getvalue()


def _renumber(node: object, mapping: dict[str, str]) -> object:
    """Replace object ids by their order of first appearance, in `__id__` and `N.npy` names alike."""
    if isinstance(node, list):
        return [_renumber(item, mapping) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "__id__":
            result[key] = int(mapping.setdefault(str(value), str(len(mapping))))
        elif key == "file" and isinstance(value, str) and _NPY_NAME.match(value):
            result[key] = f"{mapping.setdefault(value[:-4], str(len(mapping)))}.npy"
        else:
            result[key] = _renumber(value, mapping)
    return result
