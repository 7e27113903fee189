"""`dvc plots show` and `dvc metrics show` render what dvc.yaml and the evaluate stage declare."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from pipeline.evaluate import PLOTS
from pipeline.metrics import METRICS

pytestmark = pytest.mark.integration

EXPECTED_PLOTS = (*PLOTS["classification"], *PLOTS["regression"], "feature_importance")
TOP_LEVEL_PREFIX = "dvc.yaml::"


def _declared_plots(ws) -> dict[str, dict]:
    """dvc.yaml's top-level plots: resolved path -> template, x, y and title."""
    entries = yaml.safe_load((ws.path / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    return {ws.resolve(path).rstrip("/"): props for entry in entries for path, props in entry.items()}


def _rendered(ws) -> dict[str, list[dict]]:
    shown = json.loads(ws.dvc("plots", "show", "--json").stdout)
    assert not shown.get("errors"), shown.get("errors")
    return shown["data"]


def _title(content: dict) -> str | None:
    title = content.get("title")
    return title.get("text") if isinstance(title, dict) else title


def _file_of(plot_id: str) -> str:
    return plot_id.removeprefix(TOP_LEVEL_PREFIX)


def test_every_declared_plot_renders_with_its_template_fields(reproduced, features):
    ws = reproduced.workspace
    own = {*PLOTS[features.task], "feature_importance"}
    declared = _declared_plots(ws)
    for name in EXPECTED_PLOTS:
        assert any(path.endswith(f"/{name}") or path.endswith(f"/{name}.json") for path in declared), name
    rendered = _rendered(ws)
    for path, props in declared.items():
        if path.rsplit("/", 1)[-1].removesuffix(".json") not in own:
            entries = rendered.get(path, [])  # the other task's plot: declared, and empty
            assert all(not entry["content"].get("data", {}).get("values") for entry in entries), path
            continue
        matching = [
            entry
            for plot_id, entries in rendered.items()
            if _file_of(plot_id) == path or _file_of(plot_id).startswith(path + "/")
            for entry in entries
            if _title(entry["content"]) == props["title"]
        ]
        assert matching, f"{path} ({props['title']!r}) was not rendered; got {sorted(rendered)}"
        for entry in matching:
            assert entry["type"] == "vega"
            values = entry["content"]["data"]["values"]
            assert values, path
            assert all(props["x"] in row and props["y"] in row for row in values), (path, values[:2])


def test_each_plot_file_renders_once(reproduced):
    ws = reproduced.workspace
    per_file = Counter(_file_of(plot_id) for plot_id in _rendered(ws))
    duplicated = {path: count for path, count in per_file.items() if count > 1}
    assert not duplicated, f"plot files rendered more than once: {duplicated}"


def test_plots_render_to_html(reproduced, tmp_path, features):
    out = tmp_path / "plots"
    shown = reproduced.workspace.dvc("plots", "show", "-o", str(out))
    assert "failed to load" not in shown.output
    html = (out / "index.html").read_text(encoding="utf-8")
    own = {*PLOTS[features.task], "feature_importance"}
    for path, props in _declared_plots(reproduced.workspace).items():
        if path.rsplit("/", 1)[-1].removesuffix(".json") in own:
            assert props["title"] in html


def test_metrics_show_lists_the_evaluation_metrics(reproduced, features):
    ws = reproduced.workspace
    metrics_path = f"{ws.params()['paths']['eval_dir']}/metrics.json"
    shown = json.loads(ws.dvc("metrics", "show", "--json").stdout)
    workspace_metrics = shown[""]["data"]
    assert metrics_path in workspace_metrics, shown
    listed = workspace_metrics[metrics_path]["data"]
    on_disk = json.loads((ws.path / metrics_path).read_text(encoding="utf-8"))
    for name in METRICS[features.task]:
        assert listed[name] == pytest.approx(on_disk[name])
