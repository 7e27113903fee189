"""PNG plots for the PR report: this branch beside the baseline, rendered in Python.

Drawn with matplotlib from the DVCLive plot files, so CI needs no Node
toolchain, and written without timestamps so the same inputs give the same
bytes. Curves overlay the two revisions (baseline dashed); the confusion
matrices stand side by side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # no display in CI; must precede pyplot
import matplotlib.pyplot as plt
import pandas as pd

# kind -> (x field, y field, title); DVCLive custom plots, one file each under plots/custom/.
CURVES = {
    "roc": ("fpr", "tpr", "ROC"),
    "precision_recall": ("recall", "precision", "Precision-recall"),
    "calibration": ("prob_pred", "prob_true", "Calibration"),
}
SCATTERS = {
    "predicted_vs_actual": ("actual", "predicted", "Predicted against actual"),
    "residuals": ("predicted", "residual", "Residuals"),
}
PlotFiles = Mapping[str, object]  # path relative to the plots dir -> parsed JSON (a list of points)
PREFIX = "custom/"


def plot_files_here(plots_dir: Path) -> dict[str, object]:
    """This workspace's plot files; one that is not valid JSON is left out (the report still renders)."""
    files = {}
    for path in sorted(plots_dir.rglob("*.json")):
        try:
            files[path.relative_to(plots_dir).as_posix()] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
    return files


def plot_files_at(commit: str | None, plots_dir: str) -> dict[str, object]:
    """The plot files committed at a revision (none when there is no baseline)."""
    from pipeline.baseline import list_committed, read_committed

    if commit is None:
        return {}
    files = {}
    for path in list_committed(commit, plots_dir):
        text = read_committed(commit, path)
        if text is None or not path.endswith(".json"):
            continue
        try:
            files[Path(path).relative_to(plots_dir).as_posix()] = json.loads(text)
        except json.JSONDecodeError:
            continue
    return files


def render_plots(current: PlotFiles, baseline: PlotFiles, out_dir: Path) -> list[Path]:
    """Write one PNG per plot kind found in either revision; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, (x, y, title) in CURVES.items():
        series = {label: _points(files.get(f"{PREFIX}{kind}.json")) for label, files in _sides(current, baseline)}
        if any(series.values()):
            written.append(_curves(series, x, y, title, out_dir / f"{kind}.png"))
    for kind, (x, y, title) in SCATTERS.items():
        sides = {label: files.get(f"{PREFIX}{kind}.json") for label, files in _sides(current, baseline)}
        if any(_points(v) for v in sides.values()):
            written.append(_scatter(sides, x, y, title, out_dir / f"{kind}.png"))
    matrices = {label: files.get(f"{PREFIX}confusion_matrix.json") for label, files in _sides(current, baseline)}
    if any(_points(v) for v in matrices.values()):
        written.append(_confusion(matrices, out_dir / "confusion_matrix.png"))
    importance = {label: files.get(f"{PREFIX}feature_importance.json") for label, files in _sides(current, baseline)}
    if any(_points(v) for v in importance.values()):
        written.append(_importance(importance, out_dir / "feature_importance.png"))
    return written


def _points(data: object) -> list[dict]:
    """A plot file's points, or nothing when the file has another shape (an older layout)."""
    return data if isinstance(data, list) and all(isinstance(p, dict) for p in data) else []


def _sides(current: PlotFiles, baseline: PlotFiles):
    return (("baseline", baseline), ("this branch", current))


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)
    return path


def _curves(series: dict, x: str, y: str, title: str, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(5, 4))
    for label, points in series.items():
        frame = pd.DataFrame(points)
        if x in frame and y in frame:
            axes.plot(frame[x], frame[y], linestyle="--" if label == "baseline" else "-", label=label)
    axes.set(title=title, xlabel=x, ylabel=y)
    axes.legend(fontsize="small")
    return _save(figure, path)


def _scatter(sides: dict, x: str, y: str, title: str, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(5, 4))
    for label, data in sides.items():
        frame = pd.DataFrame(_points(data))
        if x in frame and y in frame:
            axes.scatter(frame[x], frame[y], s=8, alpha=0.6, label=label)
    axes.set(title=title, xlabel=x, ylabel=y)
    axes.legend(fontsize="small")
    return _save(figure, path)


def _confusion(matrices: dict, path: Path) -> Path:
    figure, axes = plt.subplots(1, len(matrices), figsize=(4 * len(matrices), 3.5), squeeze=False)
    for axis, (label, data) in zip(axes[0], matrices.items(), strict=True):
        axis.set_title(label)
        frame = pd.DataFrame(_points(data))
        if frame.empty or not {"actual", "predicted", "count"} <= set(frame):
            axis.text(0.5, 0.5, "no baseline", ha="center")
            axis.axis("off")
            continue
        table = frame.pivot_table(index="actual", columns="predicted", values="count", aggfunc="sum", fill_value=0)
        axis.imshow(table.to_numpy(), cmap="Blues")
        axis.set(xticks=range(len(table.columns)), yticks=range(len(table.index)), xlabel="predicted", ylabel="actual")
        axis.set_xticklabels(table.columns)
        axis.set_yticklabels(table.index)
        darkest = table.to_numpy().max()
        for (i, j), count in pd.DataFrame(table.to_numpy()).stack().items():
            colour = "white" if count > darkest / 2 else "black"
            axis.text(j, i, str(count), ha="center", va="center", color=colour)
    return _save(figure, path)


def _importance(importance: dict, path: Path) -> Path:
    frames = [
        pd.DataFrame(_points(rows)).set_index("feature")["importance"].rename(label)
        for label, rows in importance.items()
        if _points(rows)
    ]
    table = pd.concat(frames, axis=1).fillna(0).sort_values(frames[-1].name)
    figure, axes = plt.subplots(figsize=(5, 0.35 * len(table) + 1))
    table.plot.barh(ax=axes)
    axes.set(title="Permutation importance", xlabel="mean loss in score when the feature is shuffled")
    return _save(figure, path)
