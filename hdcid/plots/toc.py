"""TOC: the per-dimension criterion, code cosine similarity before / after selection, and probe
accuracy against kept dimensions (notebook 03)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hdcid.plots._common import _new, _np, heatmap


def toc_criterion(
    similarity, variance, score, selected, w_sim: float = 0.7, title: str = "TOC criterion per dimension"
) -> Figure:
    """Left: each dimension's similarity vs variance, kept dims marked. Right: scores sorted
    (descending) with kept dims marked (nb 03). All inputs (D,) except `selected` (k,) indices."""
    sim, var, s = _np(similarity), _np(variance), _np(score)
    sel = np.zeros(len(s), bool)
    sel[_np(selected).astype(int)] = True
    fig, axes = _new(1, 2, size=(4.6, 3.6))
    ax = axes[0, 0]
    ax.scatter(sim[~sel], var[~sel], s=10, c="0.65", label="dropped")
    ax.scatter(sim[sel], var[sel], s=14, c="C3", label="kept")
    ax.set_xlabel("similarity (mean code co-activation)")
    ax.set_ylabel("variance across codes")
    ax.legend(fontsize=8)
    ax.set_title("similarity vs variance")
    ax = axes[0, 1]
    order = np.argsort(-s)
    ax.bar(np.arange(len(s)), s[order], width=1.0, color=np.where(sel[order], "C3", "0.65"))
    ax.set_xlabel("dimension (sorted by score)")
    ax.set_ylabel(f"score = -{w_sim:.2f} sim + {1 - w_sim:.2f} var")
    ax.set_title(f"{sel.sum()} of {len(s)} dims kept")
    fig.suptitle(title)
    return fig


def cosine_heatmaps(
    before,
    after,
    title: str = "Code cosine similarity before / after TOC",
    fast: bool = False,
    size: tuple[float, float] = (5.0, 4.2),
) -> Figure:
    """The original's ave_cosine figure: (M, M) cosine similarity of code vectors on all dims
    (left) and on the TOC-kept dims (right), viridis. `fast` (for live widgets) lays the two panels
    out by hand with one shared colour bar instead of one heatmap with its colour bar per panel (nb 03)."""
    if fast:  # manual layout and one shared colour bar: ~3x faster to render than constrained layout
        fig = Figure(figsize=(2 * size[0], size[1]))
        axes = fig.subplots(1, 2)
        fig.subplots_adjust(left=0.06, right=0.88, bottom=0.1, top=0.82, wspace=0.25)
        for ax, mat, name in zip(axes, (before, after), ("Before TOC select", "After TOC select")):
            im = ax.imshow(_np(mat), cmap="viridis", vmin=-1, vmax=1, interpolation="nearest")
            ax.set_title(name, fontsize=9)
            ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=list(axes), shrink=0.8)
        fig.suptitle(title, fontsize=10)
        return fig
    fig, axes = _new(1, 2, size=size)
    for ax, mat, name in zip(axes[0], (before, after), ("Before TOC select", "After TOC select")):
        m = _np(mat)
        heatmap(ax, m, vmin=-1, vmax=1, tick_step=max(1, len(m) // 4), rasterized=True)
        ax.set_title(name)
    fig.suptitle(title)
    return fig


def sweep_plot(
    df: pd.DataFrame,
    x: str = "kept",
    y: str = "accuracy",
    hue: str = "method",
    chance: float | None = None,
    title: str = "Probe accuracy vs kept dimensions",
) -> Figure:
    """Accuracy against the number of kept dimensions, one line per method (nb 03)."""
    fig, axes = _new(size=(5.6, 3.6))
    ax = axes[0, 0]
    for i, (key, g) in enumerate(df.groupby(hue, sort=False)):
        g = g.sort_values(x)
        ax.plot(g[x].to_numpy(), g[y].to_numpy(), marker="o", label=str(key), color=f"C{i}")
    if chance is not None:
        ax.axhline(chance, ls="--", c="0.5", label="chance")
    ax.set_xlabel("kept dimensions per level")
    ax.set_ylabel(f"{y} (%)")
    ax.legend(fontsize=8)
    ax.set_title(title)
    return fig
