"""The drift report for people: a markdown summary for PR reports and a self-contained HTML page.

The page shows the reference and current distribution of every column, most
drifted first, as plain HTML with inline SVG bars: no JavaScript, no fonts or
files to fetch, so it opens offline, attaches to a CI run as one file, and is
byte-identical for the same inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from pathlib import Path

import numpy as np

from pipeline.files import write_json, write_text
from pipeline.markdown import text

_WIDTH, _HEIGHT = 360, 120
_COLOURS = {"reference": "#4c78a8", "current": "#f58518"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse}
td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.drift{color:#b30000;font-weight:bold}.ok{color:#2d7d2d}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem}
"""


def svg_bars(labels: list[str], ref: np.ndarray, cur: np.ndarray) -> str:
    if not labels:
        return "<p>no values to plot</p>"
    top = max(ref.max(), cur.max()) or 1.0
    slot = _WIDTH / len(labels)
    bars = []
    for i, label in enumerate(labels):
        for j, (side, value) in enumerate((("reference", ref[i]), ("current", cur[i]))):
            height = _HEIGHT * value / top
            x = i * slot + j * slot / 2
            bars.append(
                f'<rect x="{x:.2f}" y="{_HEIGHT - height:.2f}" width="{slot / 2:.2f}" height="{height:.2f}" '
                f'fill="{_COLOURS[side]}"><title>{escape(label)}: {side} {value:.1%}</title></rect>'
            )
    return f'<svg width="{_WIDTH}" height="{_HEIGHT}" role="img">{"".join(bars)}</svg>'


def render_html(report: dict) -> str:
    d = report["dataset"]
    rows = []
    for c in report["columns"]:
        shares = c["distribution"] or {"labels": [], "reference": [], "current": []}
        ref, cur = np.asarray(shares["reference"]), np.asarray(shares["current"])
        value = "n/a" if c["value"] is None else f"{c['value']:.4g}"
        if not c.get("judged", True):
            status = "n/a"
        else:
            status = '<span class="drift">drift</span>' if c["drifted"] else '<span class="ok">no drift</span>'
        note = f"<br><small>{escape(c['note'])}</small>" if c["note"] else ""
        rows.append(
            f"<tr><td><b>{escape(c['column'])}</b><br>{c['kind']}{note}</td><td>{c['method'] or 'n/a'}</td>"
            f"<td>{value}</td><td>{c['threshold'] if c['threshold'] is not None else 'n/a'}</td><td>{status}</td>"
            f"<td>{svg_bars(shares['labels'], ref, cur)}</td></tr>"
        )
    legend = "".join(f'<span style="background:{colour}"></span>{side}' for side, colour in _COLOURS.items())
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Drift report</title>'
        f"<style>{_STYLE}</style></head><body><h1>Drift report</h1>"
        f"<p>{_html_verdict(d)}. Reference {report['reference_rows']} rows, current {report['current_rows']} rows."
        f'</p><p class="legend">{legend}</p><table><tr><th>column</th><th>method</th><th>value</th>'
        f"<th>threshold</th><th>verdict</th><th>distribution (share of rows)</th></tr>{''.join(rows)}</table>"
        "</body></html>\n"
    )


def _verdict(dataset: dict) -> tuple[str, str]:
    """(headline, the rest): the dataset verdict in words, for the markdown and the HTML alike."""
    if dataset["drifted"] is None:
        return "No drift verdict", dataset["note"] or "no column could be compared"
    headline = "Dataset drift detected" if dataset["drifted"] else "No dataset drift"
    return headline, (
        f"{dataset['drifted_columns']} of {dataset['columns']} columns drifted "
        f"(share {dataset['share']:.2f}, threshold {dataset['threshold']:g})"
    )


def verdict_line(dataset: dict) -> str:
    """The dataset verdict in one markdown sentence (the note, from the data, is escaped)."""
    headline, rest = _verdict(dataset)
    return f"**{headline}**: {text(rest) if dataset['drifted'] is None else rest}"


def _html_verdict(dataset: dict) -> str:
    headline, rest = _verdict(dataset)
    return f"<b>{headline}</b>: {escape(rest)}"


def markdown_summary(report: dict, top: int = 10) -> str:
    """A short summary for the PR report: the verdict, the most drifted columns, target, predictions, performance.

    Column names and notes come from the data, so they are escaped (pipeline.markdown).
    """
    lines = [
        f"{verdict_line(report['dataset'])}; "
        f"{report['reference_rows']} reference rows, {report['current_rows']} current rows.",
        "",
        "| column | kind | method | value | threshold | drifted |",
        "|---|---|---|---|---|---|",
    ]
    extra = [{**r, "role": role} for role in ("target", "prediction") if (r := report[role])]
    for c in report["columns"][:top] + extra:
        value = "n/a" if c["value"] is None else f"{c['value']:.4g}"
        threshold = "n/a" if c["threshold"] is None else f"{c['threshold']:g}"
        mark = "n/a" if not c.get("judged", True) else ("⚠️ yes" if c["drifted"] else "no")
        name = {"target": f"{text(c['column'])} (target)", "prediction": "model predictions"}.get(
            c.get("role"), text(c["column"])
        )
        note = f" ({text(c['note'])})" if c["note"] else ""
        lines.append(f"| {name}{note} | {c['kind']} | {c['method'] or 'n/a'} | {value} | {threshold} | {mark} |")
    performance = report["performance"]
    if performance and performance["current"]:
        lines += ["", "| metric | test split | current batch |", "|---|---|---|"]
        for name, value in performance["current"].items():
            test = performance["test"].get(name)
            lines.append(f"| {text(name)} | {_number(test)} | {_number(value)} |")
    return "\n".join(lines) + "\n"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def write_outputs(report: dict, paths: Mapping[str, str | Path]) -> None:
    write_json(report, paths["json"])
    write_text(markdown_summary(report), paths["md"])
    write_text(render_html(report), paths["html"])
