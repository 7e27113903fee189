"""`make monitoring` for real: the server on 127.0.0.1, the current batch replayed to it, the monitor on its logs.

What the README's "In production" section shows, in every project: a copy of
the reproduced project runs the target; the logs must hold one answered
request per replayed row of the validated current batch (its first
`MONITORING_ROWS`), and the monitor's report
(JSON, markdown, HTML) must describe that window: its health and, when the
contract has an id and the batch its labels, its performance (otherwise no
labels file is left behind).
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration
REPLAYED = 40  # rows of the current batch replayed to the server (MONITORING_ROWS)


def test_make_monitoring_serves_replays_and_reports(workspace, make, features):
    ws = workspace.single_threaded()
    paths = ws.params()["paths"]
    import pandas as pd

    current = pd.read_parquet(ws.path / paths["validated_current"]).head(REPLAYED)  # bounded at any data size
    make("monitoring", f"MONITORING_ROWS={REPLAYED}")
    logs = sorted((ws.path / paths["prediction_logs"]).glob("*.jsonl"))
    assert [log.name for log in logs] == ["demo.jsonl"]
    records = [json.loads(line) for line in logs[0].read_text(encoding="utf-8").splitlines()]
    assert [r["kind"] for r in records] == ["prediction"] * len(current)  # every row answered, none refused
    report = json.loads((ws.path / paths["monitoring_report"]).read_text(encoding="utf-8"))
    assert report["health"]["rows"] == len(current)
    assert report["health"]["refused"] == 0
    assert report["health"]["requests"] == len({r["request_id"] for r in records})
    assert report["decision"]["retrain"] in (True, False)
    labels = ws.path / "data/monitoring/labels.csv"
    if features.id and features.target in current.columns and current[features.target].notna().any():
        assert report["performance"]["labelled_rows"] == current[features.target].notna().sum()
    else:
        assert not labels.exists()
    for key in ("monitoring_summary", "monitoring_html"):
        assert (ws.path / paths[key]).stat().st_size > 0
    assert ws.git("status", "--porcelain").stdout == ""  # all of it git-ignored
