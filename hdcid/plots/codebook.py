"""The codebook: usage per code, usage over training, code ownership, agreement and level-1 x
level-2 co-occurrence heatmaps, per-level information (notebooks 02 and 04)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure

from hdcid.plots._common import _new, _np, bar_groups, heatmap


def usage_histograms(
    counts, modalities: Sequence[str], perplexities=None, title: str = "Code usage per modality and level"
) -> Figure:
    """Bar chart of how often each code is used: rows = levels, columns = modalities (nb 02).

    counts: (Mo, L, M); perplexities: optional (Mo, L) shown in the panel titles.
    """
    c = _np(counts)
    if c.ndim != 3 or c.shape[0] != len(modalities):
        raise ValueError(f"counts: expected ({len(modalities)}, L, M), got {c.shape}")
    Mo, L, M = c.shape
    fig, axes = _new(L, Mo, size=(4.2, 2.4), sharey="row")
    for i, m in enumerate(modalities):
        for level in range(L):
            ax = axes[level, i]
            ax.bar(np.arange(M), c[i, level], width=1.0, color=f"C{i}")
            sub = f"{m}, level {level + 1}"
            if perplexities is not None:
                sub += f" (perplexity {_np(perplexities)[i, level]:.1f})"
            ax.set_title(sub, fontsize=9)
            ax.set_xlabel("code", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[:, 0][0].set_ylabel("segments")
    fig.suptitle(title)
    return fig


def usage_over_training(
    df: pd.DataFrame,
    x: str = "epoch",
    columns: Sequence[str] = ("dead",),
    hue: str | None = "level",
    title: str = "Codebook usage over training",
) -> Figure:
    """Lines of usage statistics (dead codes, resets, perplexity...) against epochs (nb 02)."""
    missing = [c for c in (x, *columns) if c not in df.columns]
    if missing:
        raise ValueError(f"usage_over_training: columns {missing} missing; have {list(df.columns)}")
    fig, axes = _new(1, len(columns), size=(4.2, 3.0))
    groups = df.groupby(hue) if hue and hue in df.columns else [("", df)]
    for ax, col in zip(axes.flat, columns):
        for key, g in groups:
            ax.plot(g[x].to_numpy(), g[col].to_numpy(), marker="o", label=f"{hue} {key}" if key != "" else None)
        ax.set_xlabel(x)
        ax.set_title(col)
        if hue and hue in df.columns:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def ownership_bars(summary: pd.DataFrame, title: str = "Who uses each code") -> Figure:
    """Stacked bars: number of codes shared by all modalities / owned by one / unused, per run.

    summary: rows = run (e.g. "DCID", "H-DCID level 1"), columns = owner categories (counts).
    """
    fig, axes = _new(size=(6.0, 3.4))
    ax = axes[0, 0]
    bottom = np.zeros(len(summary))
    for j, col in enumerate(summary.columns):
        vals = summary[col].to_numpy(dtype=float)
        ax.barh(summary.index.astype(str), vals, left=bottom, label=col, color=f"C{j}")
        bottom += vals
    ax.set_xlabel("codes")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title)
    return fig


def agreement_heatmap(
    matrix, modalities: Sequence[str], title: str = "Modality x modality agreement", ax=None
) -> Figure:
    """Heatmap of `analysis.agreement_matrix` (values annotated) (nb 02, 04)."""
    fig, axes = (ax.figure, None) if ax is not None else _new(size=(4.0, 3.4))
    ax = ax if ax is not None else axes[0, 0]
    heatmap(ax, _np(matrix), modalities, modalities, vmin=0, vmax=1, annot=True)
    ax.set_title(title)
    return fig


def cooccurrence_heatmap(joint, title: str = "Level-1 x level-2 code co-occurrence") -> Figure:
    """Joint counts of level-1 (rows) and level-2 (columns) codes, used codes only (nb 04)."""
    j = _np(joint)
    rows, cols = np.flatnonzero(j.sum(1)), np.flatnonzero(j.sum(0))
    fig, axes = _new(size=(5.4, 4.4))
    ax = axes[0, 0]
    im = ax.imshow(np.log1p(j[np.ix_(rows, cols)]), cmap="viridis", aspect="auto", interpolation="nearest")
    ax.set_xlabel(f"level-2 code ({len(cols)} used)")
    ax.set_ylabel(f"level-1 code ({len(rows)} used)")
    step_r, step_c = max(1, len(rows) // 10), max(1, len(cols) // 10)
    ax.set_yticks(np.arange(0, len(rows), step_r), rows[::step_r], fontsize=7)
    ax.set_xticks(np.arange(0, len(cols), step_c), cols[::step_c], fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="log(1 + segments)")
    ax.set_title(title)
    return fig


def level_information_bars(
    info: pd.DataFrame, value: str = "nmi", title: str = "What each level's codes tell (share of entropy explained)"
) -> Figure:
    """Grouped bars of `analysis.level_information`: x = target, one bar per level (nb 04)."""
    targets, levels = list(dict.fromkeys(info["target"])), list(dict.fromkeys(info["level"]))
    heights = info.pivot_table(index="level", columns="target", values=value, sort=False).reindex(levels)[targets]
    fig, axes = _new(size=(5.6, 3.4))
    bar_groups(
        axes[0, 0],
        heights.to_numpy(dtype=float),
        targets,
        levels,
        colors=colormaps["viridis"](np.linspace(0, 1, len(levels) + 2)[1:-1]),
    )
    axes[0, 0].set_xlabel("target")
    axes[0, 0].set_ylabel(value)
    axes[0, 0].legend(title="level")
    axes[0, 0].set_title(title)
    return fig
