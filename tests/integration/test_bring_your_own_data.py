"""Bring your own data: replace the data with `dvc add`ed files; bad data stops the pipeline at validate.

The replacement data is synthetic (made from the project's contract); nothing
here compares results with the committed ones.
"""

from __future__ import annotations

import csv
import re

import pytest
import yaml

pytestmark = pytest.mark.integration


def spoilable(features) -> tuple[str | None, str | None]:
    """A categorical column with listed categories and a numeric column of the contract (None when it has none)."""
    listed = next((name for name in features.categorical if features.categories[name] is not None), None)
    numeric = next(iter(features.numeric), None)
    return listed, numeric


def _spoil(path, category_column, number_column) -> None:
    """One row gets a category outside the contract, another a number that is not a number."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if category_column:
        rows[3][category_column] = "Atlantis"
    if number_column:
        rows[7][number_column] = "heavy"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_dvc_remove_ingest(workspace):
    if "ingest" not in workspace.stages():
        pytest.skip("this project was made without the sample-data stage")
    result = workspace.dvc("remove", "ingest", check=False)
    assert result.returncode == 0, result.output
    assert "ingest" not in workspace.stages()


def test_own_data_then_a_batch_that_breaks_the_contract(workspace, features):
    workspace = workspace.single_threaded()
    paths = workspace.params()["paths"]
    reference, current = paths["raw_reference"], paths["raw_current"]
    if "ingest" in workspace.stages():
        workspace.dvc("remove", "ingest")  # the README's first step; keeps the CSVs, drops the stage
        assert "ingest" not in workspace.stages()
        for path, seed in ((reference, "1"), (current, "2")):
            workspace.python("-m", "pipeline.synthetic", "--rows", "500", "--seed", seed, "--out", path)
        workspace.dvc("add", reference, current)
        good = workspace.dvc("repro")
        assert set(good.stages_run) == set(workspace.stages()), good.output
        assert "ingest" not in good.stages_run
    else:
        # The project's own data is in already (`dvc add`), and the fixture's `dvc repro` ran every stage on it.
        assert "up to date" in workspace.dvc("status").output
    model = paths["model"]
    model_md5 = workspace.locked_out_md5(model)
    validated = [paths["validated_reference"], paths["validated_current"]]
    validated_md5 = {path: workspace.locked_out_md5(path) for path in validated}
    for path in (reference, current):
        tracked = yaml.safe_load((workspace.path / f"{path}.dvc").read_text(encoding="utf-8"))
        assert tracked["outs"][0]["md5"] == workspace.md5(path), path

    category, number = spoilable(features)
    _spoil(workspace.path / current, category, number)
    workspace.dvc("add", current)
    bad = workspace.dvc("repro", check=False)
    assert bad.returncode != 0, bad.output
    assert bad.stages_run == ["validate"], bad.output
    # The file is named by validate itself, not only in dvc's "'<file>.dvc' didn't change" line.
    assert re.search(rf"{re.escape(current)}(?!\.dvc)", bad.output), bad.output
    if category:
        assert f"'{category}'" in bad.output
        assert "Atlantis" in bad.output
    if number:
        assert f"'{number}'" in bad.output
        assert "heavy" in bad.output
    assert "Traceback" not in bad.output

    # The last good model is still recorded and still in the cache, so it can be restored.
    assert workspace.locked_out_md5(model) == model_md5
    assert workspace.in_cache(model_md5)
    workspace.dvc("checkout")
    for path, md5 in validated_md5.items():
        assert workspace.md5(path) == md5, path
    assert workspace.md5(model) == model_md5
