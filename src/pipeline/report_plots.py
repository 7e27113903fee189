"""PNG plots for the PR report: this branch beside the baseline, rendered in Python.

Drawn with matplotlib from the DVCLive plot files, so CI needs no Node
toolchain, and written without timestamps so the same inputs give the same
bytes. Curves overlay the two revisions (baseline dashed); the confusion
matrices stand side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # no display in CI; must precede pyplot
import matplotlib.pyplot as plt
import pandas as pd

# kind -> (x field, y field, title); files are DVCLive's, one per class.
CURVES = {
    "roc": ("fpr", "tpr", "ROC"),
    "precision_recall": ("recall", "precision", "Precision-recall"),
    "calibration": ("prob_pred", "prob_true", "Calibration"),
}
PlotFiles = Mapping[str, object]  # relative path -> parsed JSON


def render_plots(current: PlotFiles, baseline: PlotFiles, out_dir: Path) -> list[Path]:
    """Write one PNG per plot kind found in either revision; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for kind, (x, y, title) in CURVES.items():
        series = {
            (name, label): data[kind]
            for label, files in (("this branch", current), ("baseline", baseline))
            for name, data in _kind_files(files, f"sklearn/{kind}/")
        }
        if series:
            written.append(_curves(series, x, y, title, out_dir / f"{kind}.png"))
    matrices = {label: files.get("sklearn/confusion_matrix.json") for label, files in _sides(current, baseline)}
    if any(matrices.values()):
        written.append(_confusion(matrices, out_dir / "confusion_matrix.png"))
    importance = {label: files.get("custom/feature_importance.json") for label, files in _sides(current, baseline)}
    if any(importance.values()):
        written.append(_importance(importance, out_dir / "feature_importance.png"))
    return written


def _sides(current: PlotFiles, baseline: PlotFiles):
    return (("baseline", baseline), ("this branch", current))


def _kind_files(files: PlotFiles, prefix: str):
    return sorted(
        (path.removeprefix(prefix).removesuffix(".json"), data)
        for path, data in files.items()
        if path.startswith(prefix)
    )


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)
    return path


def _curves(series: dict, x: str, y: str, title: str, path: Path) -> Path:
    figure, axes = plt.subplots(figsize=(5, 4))
    for (name, label), points in sorted(series.items()):
        frame = pd.DataFrame(points)
        axes.plot(frame[x], frame[y], linestyle="--" if label == "baseline" else "-", label=f"{name} ({label})")
    axes.set(title=title, xlabel=x, ylabel=y)
    axes.legend(fontsize="small")
    return _save(figure, path)


def _confusion(matrices: dict, path: Path) -> Path:
    figure, axes = plt.subplots(1, len(matrices), figsize=(4 * len(matrices), 3.5), squeeze=False)
    for axis, (label, rows) in zip(axes[0], matrices.items(), strict=True):
        axis.set_title(label)
        if not rows:
            axis.text(0.5, 0.5, "no baseline", ha="center")
            axis.axis("off")
            continue
        table = pd.crosstab(pd.DataFrame(rows)["actual"], pd.DataFrame(rows)["predicted"])
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
        pd.DataFrame(rows).set_index("feature")["importance"].rename(label)
        for label, rows in importance.items()
        if rows
    ]
    table = pd.concat(frames, axis=1).fillna(0).sort_values(frames[-1].name)
    figure, axes = plt.subplots(figsize=(5, 0.35 * len(table) + 1))
    table.plot.barh(ax=axes)
    axes.set(title="Permutation importance", xlabel="mean drop in log loss")
    return _save(figure, path)
