"""The PR report: metric deltas, changed params, gate changes at the top, and markdown a branch cannot forge.

`build_report` is pure (every input is an argument), so each section is
checked here with hand-made inputs. The forging test renders the report with a
CommonMark parser with GFM tables (markdown-it-py, as GitHub renders it) and
checks the HTML: no raw tag from a branch, no javascript link, every table row
with its own number of cells, every dangerous string shown as text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pipeline.gate import Baseline, judge
from pipeline.markdown import code
from pipeline.markdown import text as markdown_text
from pipeline.params import Bound, ClassificationGates, GateParams, Regression, RegressionGates
from pipeline.report import (
    actions_run_url,
    build_report,
    changed_params,
    flatten,
    gate_changes_section,
    metrics_table,
    params_section,
    plots_section,
)

DRIFT = {
    "dataset": {"columns": 2, "drifted_columns": 1, "share": 0.5, "threshold": 0.5, "drifted": True, "note": None},
    "reference_rows": 100,
    "current_rows": 50,
    "columns": [
        {
            "column": "weight",
            "kind": "numeric",
            "method": "ks",
            "value": 0.001,
            "threshold": 0.05,
            "drifted": True,
            "note": None,
        },
        {
            "column": "place",
            "kind": "categorical",
            "method": "chisquare",
            "value": 0.7,
            "threshold": 0.05,
            "drifted": False,
            "note": None,
        },
    ],
    "target": None,
    "prediction": None,
    "performance": None,
}
VALIDATION = {"passed": True, "rows_checked": 150, "files": [{"path": "a.csv", "rows": 150, "failures": []}]}
LOCK = {"stages": {"train": {"outs": [{"path": "models/model.skops", "md5": "0123456789abcdef0123"}]}}}
IDENTITY = {"task": "classification", "target": "y", "classes": ["a", "b"], "positive": "b"}
METRICS = {"roc_auc": 0.95, "balanced_accuracy": 0.9, "log_loss": 0.2, "accuracy": 0.9, "f1": 0.9}
GATES = GateParams(
    baseline="main",
    max_drift_share=0.5,
    require_validation=True,
    classification=ClassificationGates(
        metrics={"roc_auc": Bound(min=0.8)}, regressions={"roc_auc": Regression(max_drop=0.01)}
    ),
    regression=RegressionGates(metrics={}, regressions={}),
)
PARAMS = {"train": {"model": "hist_gradient_boosting"}, "gates": {"baseline": "main", "max_drift_share": 0.5}}


def verdict(metrics=METRICS, base_metrics=None, commit="a" * 40, rev="main") -> dict:
    return judge(
        metrics, IDENTITY, Baseline(rev, commit, base_metrics, IDENTITY), DRIFT["dataset"], True, GATES
    ).to_json()


def report(**overrides) -> str:
    inputs = {
        "verdict": verdict(),
        "metrics": METRICS,
        "baseline_metrics": None,
        "params": PARAMS,
        "baseline_params": PARAMS,
        "drift": DRIFT,
        "validation": VALIDATION,
        "lock": LOCK,
        "tracked": ["models/model.skops"],
        "commit": "b" * 40,
        "plots": "No plots.",
        "run_url": None,
    }
    return build_report(**{**inputs, **overrides})


def test_metric_deltas_have_direction_and_judgement():
    table = metrics_table(
        {"roc_auc": 0.95, "log_loss": 0.30, "rmse": 2.0}, {"roc_auc": 0.90, "log_loss": 0.20, "rmse": 3.0}
    )
    assert "| roc_auc | 0.9000 | 0.9500 | ▲ +0.0500 🟢 |" in table
    assert "| log_loss | 0.2000 | 0.3000 | ▲ +0.1000 🔴 |" in table  # log loss rising is worse
    assert "| rmse | 3.0000 | 2.0000 | ▼ -1.0000 🟢 |" in table  # an error falling is better


def test_metrics_added_and_removed_are_marked():
    table = metrics_table({"roc_auc": 0.9, "brier": 0.1}, {"roc_auc": 0.9, "accuracy": 0.8})
    assert "| brier | n/a | 0.1000 | new |" in table
    assert "| accuracy | 0.8000 | n/a | removed |" in table
    assert "| roc_auc | 0.9000 | 0.9000 | no change |" in table


def test_metrics_without_baseline_or_not_comparable_say_so():
    assert "| roc_auc | n/a | 0.9000 | no baseline |" in metrics_table({"roc_auc": 0.9}, None)
    assert "| roc_auc | 0.5000 | 0.9000 | not comparable |" in metrics_table({"roc_auc": 0.9}, {"roc_auc": 0.5}, False)


def test_changed_params_lists_dotted_keys_old_and_new():
    old = {"train": {"model": "hist_gradient_boosting", "seed": 1}, "split": {"test_size": 0.25}}
    new = {"train": {"model": "random_forest", "seed": 1}, "split": {"test_size": 0.25}, "extra": {"k": 2}}
    assert changed_params(new, old) == [
        ("extra.k", None, 2),
        ("train.model", "hist_gradient_boosting", "random_forest"),
    ]
    assert flatten({"a": {"b": {"c": 1}}}) == {"a.b.c": 1}
    section = params_section(changed_params(new, old), has_baseline=True)
    assert "| `train.model` | `hist_gradient_boosting` | `random_forest` |" in section
    assert "*(absent)*" in section


def test_params_without_baseline_or_changes():
    assert params_section([], has_baseline=False) == "No baseline params to compare with."
    assert params_section([], has_baseline=True) == "No params changed."


def test_run_link_only_inside_actions_and_only_when_url_safe():
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "o/r", "GITHUB_RUN_ID": "42"}
    assert actions_run_url(env) == "https://github.com/o/r/actions/runs/42"
    assert actions_run_url({}) is None
    assert actions_run_url({**env, "GITHUB_REPOSITORY": "o/r)[x](javascript:1"}) is None
    assert actions_run_url({**env, "GITHUB_SERVER_URL": "javascript:alert(1)//"}) is None


def test_plots_are_linked_not_embedded_unless_asked(tmp_path):
    pngs = [tmp_path / "plots" / "roc.png"]
    assert "![" not in plots_section(pngs, tmp_path / "report.md", embed=False, run_url=None)
    assert "![roc](plots/roc.png)" in plots_section(pngs, tmp_path / "report.md", embed=True, run_url=None)


def test_report_with_a_baseline_without_metrics():
    text = report(verdict=verdict(base_metrics=None))
    assert "no baseline: 'main' has no committed metrics yet" in text
    assert "⚪ not judged" in text
    assert "✅ **All quality gates passed.**" in text


def test_report_with_baseline_equal_to_head():
    text = report(verdict=verdict(base_metrics=METRICS, commit="b" * 40), baseline_metrics=METRICS)
    assert "is this commit, so every change is zero" in text
    assert "| roc_auc | 0.9500 | 0.9500 | no change |" in text


def test_report_headline_names_failure_and_has_every_section():
    worse = {**METRICS, "roc_auc": 0.90}
    text = report(verdict=verdict(worse, {"roc_auc": 0.95}), metrics=worse, baseline_metrics={"roc_auc": 0.95})
    assert "❌ **Quality gates failed.**" in text
    assert "roc_auc drops at most 0.01 vs baseline | 0.9000 | 0.9500 | ❌ **FAIL**" in text
    for section in ("## Metrics", "## Params changed", "## Drift", "## Validation", "## Plots", "## Provenance"):
        assert section in text
    assert "`models/model.skops` md5 `0123456789ab`" in text
    assert "weight" in text


def test_a_change_to_the_gates_is_at_the_top_and_marked():
    lowered = {**PARAMS, "gates": {**PARAMS["gates"], "max_drift_share": 1.0}}
    text = report(params=lowered)
    warning = text.index("This branch changes its own quality gates")
    assert warning < text.index("## Quality gates")
    assert "| ⚠️ `gates.max_drift_share` | `0.5` | `1.0` |" in text
    assert gate_changes_section(changed_params(PARAMS, PARAMS), "this branch") is None


def test_the_report_reads_nothing_itself(tmp_path, monkeypatch):
    """Pure: run from an empty directory with no GITHUB_* variables, the inputs alone make the report."""
    monkeypatch.chdir(tmp_path)
    for key in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"):
        monkeypatch.setenv(key, "x")
    text = report(run_url="https://github.com/o/r/actions/runs/7")
    assert "[workflow run](https://github.com/o/r/actions/runs/7)" in text
    assert list(tmp_path.iterdir()) == []


# A branch cannot forge the comment

EVIL = [
    '<img src=x onerror="alert(1)">',
    "<b>bold</b>",
    "[click](javascript:alert(1))",
    "a|b",
    "line\nbreak",
    "tick`s",
    "@org/team",
]


def render(markdown: str) -> tuple[str, list[list[int]]]:
    """HTML as GitHub-like CommonMark with tables renders it (raw HTML allowed), and each table's cells per row."""
    parser = MarkdownIt("commonmark", {"html": True}).enable("table")
    tables: list[list[int]] = []
    for token in parser.parse(markdown):
        if token.type == "table_open":
            tables.append([])
        elif token.type == "tr_open":
            tables[-1].append(0)
        elif token.type in ("th_open", "td_open"):
            tables[-1][-1] += 1
    return parser.render(markdown), tables


@pytest.mark.parametrize("evil", EVIL)
def test_nothing_from_a_branch_reaches_the_comment_raw(evil):
    params = {"train": {evil: evil}, "gates": {"baseline": evil, evil: evil}}
    drift = {
        **DRIFT,
        "columns": [{**DRIFT["columns"][0], "column": evil, "note": f"values not seen in reference: {evil}"}],
        "performance": {"test": {evil: 0.5}, "current": {evil: 0.4}},
    }
    failures = [{"column": evil, "check": evil, "count": 1, "examples": [evil]}]
    validation = {"passed": False, "rows_checked": 3, "files": [{"path": evil, "rows": 3, "failures": failures}]}
    lock = {"stages": {"train": {"outs": [{"path": evil, "md5": "abc"}]}}}
    text = report(
        verdict=verdict(base_metrics={"roc_auc": 0.9}, rev="main"),
        params=params,
        baseline_params={"train": {}},
        drift=drift,
        validation=validation,
        lock=lock,
        tracked=[evil],
        metrics={**METRICS, evil: 0.1},
        baseline_metrics={"roc_auc": 0.9},
    )
    # the revision goes through the verdict: a name git could never have is escaped too
    forged_rev = report(verdict=verdict(rev=evil, commit=None))

    for markdown in (text, forged_rev):
        html, tables = render(markdown)
        assert "<img" not in html
        assert "<b>" not in html
        assert 'href="javascript' not in html
        outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
        assert "@org" not in outside_code  # no live mention (GitHub does not link inside code spans)
        for cells in tables:
            assert len(set(cells)) == 1, cells  # every row of a table has the header's number of cells
    html, _ = render(text)
    visible = unescape(re.sub(r"<[^>]+>", "", html))
    assert visible.count(evil.split("\n")[0][:4]) >= 3  # still shown, as text, in several sections


def test_params_changes_keep_code_spans_closed():
    section = params_section([("a`b", "x``y", "`z")], has_baseline=True)
    html, _ = render(section)
    assert html.count("<code>") == 3
    assert "a`b" in html
    assert "x``y" in html
    assert "`z" in html


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("*x* _y_ snake_case", "\\*x\\* \\_y\\_ snake_case"),
        ("a|b", "a\\|b"),
        ('<i>&"', "&lt;i&gt;&amp;&quot;"),
        ("[l](u) ~s~ !#+{}", "\\[l\\]\\(u\\) \\~s\\~ \\!\\#\\+\\{\\}"),
        ("@user #12", "@\u200duser \\#\u200d12"),
        ("line\r\nbreak\x00s\u2028", "line breaks "),
    ],
)
def test_text_escapes_exactly_what_markdown_would_act_on(value, escaped):
    assert markdown_text(value) == escaped


@pytest.mark.parametrize(
    ("value", "span"),
    [
        ("a|b", "`a\\|b`"),
        ("`x", "`` `x ``"),
        ("x`", "`` x` ``"),
        ("a``b", "```a``b```"),
        ("  ", "`    `"),
        ("x\ny", "`x y`"),
    ],
)
def test_code_spans_close_where_they_should(value, span):
    assert code(value) == span


# The CLI: malformed results are one-line errors, never a traceback

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("path", "content", "message"),
    [
        ("reports/gates.json", "{not json", "reports/gates.json: not valid JSON"),
        ("reports/gates.json", '{"passed": true}', "reports/gates.json: has no valid 'gates'"),
        ("reports/drift.json", '{"dataset": {}}', "reports/drift.json: has no valid 'columns'"),
        ("reports/validation.json", "[]", "reports/validation.json: expected a JSON object"),
    ],
)
def test_cli_malformed_results_are_one_line_errors(tmp_path, path, content, message):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    files = {
        "reports/gates.json": json.dumps(verdict(commit=None)),
        "reports/drift.json": json.dumps(DRIFT),
        "reports/validation.json": json.dumps(VALIDATION),
        "reports/eval/metrics.json": json.dumps(METRICS),
        "dvc.lock": "stages: {}\n",
        path: content,
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")

    done = subprocess.run(
        [sys.executable, "-m", "pipeline.report", "-o", "out.md"], cwd=tmp_path, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.md").exists()
