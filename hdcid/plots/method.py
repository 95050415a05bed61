"""Small figures of the method on 2-D toys (nb 01): codes moving under MM-EMA, a dead code revived.

Both take code positions recorded after every training call of a 2-D `UnifiedCodebook` and draw
them; neither trains or computes anything beyond axis limits.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from hdcid.plots._common import _new, _np

_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _limits(features: np.ndarray, pad: float = 0.6) -> tuple[tuple[float, float], tuple[float, float]]:
    lo, hi = features.min(0) - pad, features.max(0) + pad
    return (float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))


def _trajectories(ax, path: np.ndarray, features: np.ndarray, highlight: int | None = None) -> None:
    """Grey features, one coloured line per code (circle = start, square = end), clipped to the data."""
    ax.scatter(features[:, 0], features[:, 1], s=6, c="0.75", label="features (audio)", zorder=1)
    xlim, ylim = _limits(features)
    for k in range(path.shape[1]):
        col = _COLOURS[k % len(_COLOURS)]
        p = path[:, k]
        inside = (p[:, 0] >= xlim[0]) & (p[:, 0] <= xlim[1]) & (p[:, 1] >= ylim[0]) & (p[:, 1] <= ylim[1])
        lw = 2.5 if k == highlight else 1.5
        label = f"code {k}" + ("" if inside.all() else " (leaves the view)")
        ax.plot(p[:, 0], p[:, 1], "-", color=col, lw=lw, label=label, zorder=2)
        ax.plot(p[0, 0], p[0, 1], "o", color=col, ms=6, zorder=3)
        ax.plot(p[-1, 0], p[-1, 1], "s", color=col, ms=7, mec="k", zorder=3)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_xlabel("feature dimension 1 (a.u.)")
    ax.set_ylabel("feature dimension 2 (a.u.)")


def ema_trajectories(path, features, title: str = "codes under MM-EMA") -> Figure:
    """path (S+1, K, 2): code positions before and after each of S calls; features (N, 2)."""
    path, features = _np(path), _np(features)
    fig, axes = _new(1, 1, size=(5.6, 4.4))
    ax = axes[0, 0]
    _trajectories(ax, path, features)
    ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title="circle: start\nsquare: end",
        title_fontsize=7,
    )
    ax.set_title(title, fontsize=10)
    return fig


def reset_revival(path, wins, dead: int, features, title: str | None = None) -> Figure:
    """Left: code positions over calls (the dead code bold); right: features won per call and code.

    path (S+1, K, 2); wins (S, K) how many features chose each code in each call; dead: the code
    that starts dead; features (N, 2).
    """
    path, wins, features = _np(path), _np(wins), _np(features)
    fig, axes = _new(1, 2, size=(4.6, 3.8))
    ax = axes[0, 0]
    _trajectories(ax, path, features, highlight=dead)
    ax.set_title(f"code {dead} starts off-screen, is reset next to a donor", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, frameon=False)
    ax = axes[0, 1]
    calls = np.arange(1, wins.shape[0] + 1)
    for k in range(wins.shape[1]):
        ax.plot(
            calls,
            wins[:, k],
            "-o",
            ms=3,
            color=_COLOURS[k % len(_COLOURS)],
            lw=2.5 if k == dead else 1.2,
            label=f"code {k}",
        )
    ax.set_xlabel("training call")
    ax.set_ylabel("features assigned (count, all modalities)")
    ax.set_title("features won per call", fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
