"""Downstream results: confusion matrices, per-class bars, AVVP timelines, result tables and
grouped bars (notebooks 05-09)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.patches as mpatches
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hdcid.plots._common import _new, _np, bar_groups, heatmap


def confusion_matrix_plot(
    cm, class_names: Sequence[str], normalize: bool = True, title: str = "Confusion matrix"
) -> Figure:
    """Heatmap of a (K, K) confusion matrix, rows = true class (nb 05-08). With `normalize` each
    row is shown as a fraction of its true class."""
    m = _np(cm).astype(float)
    if m.shape != (len(class_names), len(class_names)):
        raise ValueError(f"cm: expected ({len(class_names)}, {len(class_names)}), got {m.shape}")
    if normalize:
        m = m / np.maximum(m.sum(1, keepdims=True), 1)
    k = len(class_names)
    fig, axes = _new(size=(max(4.0, 0.35 * k + 2), max(3.4, 0.32 * k + 1.6)))
    heatmap(axes[0, 0], m, class_names, class_names, vmin=0, vmax=1 if normalize else None, annot=k <= 12)
    axes[0, 0].set_xlabel("predicted")
    axes[0, 0].set_ylabel("true")
    axes[0, 0].set_title(title)
    return fig


def per_class_bars(
    accuracy,
    class_names: Sequence[str],
    chance: float | None = None,
    title: str = "Per-class accuracy",
    xlabel: str = "accuracy (%)",
) -> Figure:
    """Horizontal bars of a per-class score in % (accuracy, or segment F1 with xlabel=...; nb 05-08)."""
    a = _np(accuracy).astype(float)
    fig, axes = _new(size=(5.2, max(2.6, 0.28 * len(a) + 1)))
    ax = axes[0, 0]
    ax.barh(np.arange(len(a)), a, color="C0")
    ax.set_yticks(np.arange(len(a)), class_names, fontsize=8)
    ax.invert_yaxis()
    if chance is not None:
        ax.axvline(chance, ls="--", c="0.5", label="chance")
        ax.legend(fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, 100)
    ax.set_title(title)
    return fig


def avvp_timelines(
    pred,
    true,
    class_names: Sequence[str],
    clip_ids: Sequence[str] | None = None,
    title: str = "AVVP segments: predicted vs true",
) -> Figure:
    """One panel per clip: rows = classes active in truth or prediction, 10 one-second cells;
    true events as wide light bars, predicted as narrow dark bars (nb 06, 07).

    pred, true: (n, T, K) {0, 1} arrays (background column excluded or included as a class).
    """
    P, Y = _np(pred).astype(bool), _np(true).astype(bool)
    if P.shape != Y.shape or P.ndim != 3 or P.shape[2] != len(class_names):
        raise ValueError(f"pred/true: expected equal (n, T, {len(class_names)}) arrays, got {P.shape} and {Y.shape}")
    n, T, _ = P.shape
    fig, axes = _new(n, 1, size=(7.0, 1.6))
    for i, ax in enumerate(axes[:, 0]):
        active = np.flatnonzero(P[i].any(0) | Y[i].any(0))
        for r, k in enumerate(active):
            for t in np.flatnonzero(Y[i, :, k]):
                ax.add_patch(mpatches.Rectangle((t, r - 0.4), 1, 0.8, color="C2", alpha=0.35))
            for t in np.flatnonzero(P[i, :, k]):
                ax.add_patch(mpatches.Rectangle((t + 0.1, r - 0.15), 0.8, 0.3, color="C3"))
        ax.set_xlim(0, T)
        ax.set_ylim(-0.6, max(len(active), 1) - 0.4)
        ax.set_yticks(np.arange(len(active)), [class_names[k] for k in active], fontsize=7)
        ax.set_xticks(np.arange(T + 1))
        ax.set_title(clip_ids[i] if clip_ids is not None else f"clip {i}", fontsize=8, loc="left")
    handles = [mpatches.Patch(color="C2", alpha=0.35, label="true"), mpatches.Patch(color="C3", label="predicted")]
    axes[0, 0].legend(handles=handles, fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("second")
    fig.suptitle(title)
    return fig


def results_table(df: pd.DataFrame, title: str = "", float_fmt: str = "{:.1f}") -> Figure:
    """A DataFrame drawn as a table figure (nb 09)."""
    cells = [
        [
            float_fmt.format(v)
            if isinstance(v, (float, np.floating)) and np.isfinite(v)
            else ("-" if isinstance(v, (float, np.floating)) else str(v))
            for v in row
        ]
        for row in df.to_numpy()
    ]
    fig, axes = _new(size=(min(16.0, 1.3 * len(df.columns) + 1), 0.3 * len(df) + 1))
    ax = axes[0, 0]
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=[str(c) for c in df.columns], loc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    if title:
        ax.set_title(title)
    return fig


def grouped_bars(
    df: pd.DataFrame,
    x: str,
    y: str,
    hue: str,
    err: str | None = None,
    title: str = "",
    ylabel: str | None = None,
    chance: float | None = None,
) -> Figure:
    """Grouped bar chart of a tidy summary DataFrame (one row per x, hue: e.g. mean accuracy per
    direction, one bar per encoder), with error bars from column `err` (e.g. the std over seeds)
    when given (nb 05-09)."""
    xs = list(dict.fromkeys(df[x]))
    hs = list(dict.fromkeys(df[hue]))
    fig, axes = _new(size=(max(5.0, 1.2 * len(xs) * max(1, len(hs)) / 2) + 1.3, 3.6))  # + the legend
    ax = axes[0, 0]
    rows = [df[df[hue] == h].set_index(x).reindex(xs) for h in hs]  # one frame per hue level, x order
    bars = bar_groups(ax, np.stack([r[y].to_numpy(dtype=float) for r in rows]), xs, hs)
    if err is not None:
        for r, bs in zip(rows, bars):
            ax.errorbar(
                [b.get_x() + b.get_width() / 2 for b in bs],
                r[y].to_numpy(dtype=float),
                yerr=r[err].fillna(0).to_numpy(dtype=float),
                fmt="none",
                ecolor="k",
                capsize=3,
                lw=1,
            )
    lines = [ax.axhline(chance, ls="--", c="0.5", label="chance")] if chance is not None else []
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or y)
    # beside the axes, so it never covers a bar; the bars first, in hue order
    ax.legend(handles=[*bars, *lines], fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title(title)
    return fig
