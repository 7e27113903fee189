"""Saving and loading the model with skops: no pickle, and byte-identical files.

`skops.io.dump` names arrays after Python object ids and stamps zip entries with
the current time, so two dumps of the same model differ. We rewrite the archive
with ids renumbered in order of first appearance, entries sorted and a fixed
timestamp; `skops.io.load` reads the result unchanged.

Loading trusts skops's own safe defaults plus exactly `TRUSTED_TYPES`: the few
further types our three model families need. A file that needs anything else
is refused, never executed.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import skops.io as sio
from sklearn.pipeline import Pipeline

from pipeline.errors import PipelineError

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
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: model file not found; run `dvc repro` (or `dvc pull`) first")
    untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
    if untrusted:
        raise PipelineError(f"{path}: refusing to load a model that needs untrusted types: {', '.join(untrusted)}")
    return sio.load(path, trusted=list(TRUSTED_TYPES))


def canonical_dump(model: object) -> bytes:
    """skops bytes with object ids renumbered, entries sorted and timestamps fixed."""
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
