"""Segments at their code's 2-D position (UMAP / PCA from `hdcid.analysis.project_codes`) (nb 04)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from hdcid.plots._common import _new, _np


def projection_scatter(
    xy,
    points: pd.DataFrame,
    colour_by: str = "class",
    jitter: float = 0.02,
    title: str = "Code vectors of every segment",
    seed: int = 0,
    ax=None,
) -> Figure:
    """Scatter of segments at their code's 2-D position, coloured by a column of `points`
    (class / modality / level) (nb 04). Segments sharing a code are spread by a small seeded
    jitter (a fraction of the plot range) so overlapping points stay visible."""
    if colour_by not in points.columns:
        raise ValueError(f"colour_by={colour_by!r} is not a column of points {list(points.columns)}")
    xy = _np(xy)
    p = xy[points["point"].to_numpy()]  # (P, 2)
    span = np.ptp(xy, axis=0) if len(xy) else np.ones(2)
    span = np.where(span > 0, span, 1.0)
    p = p + np.random.default_rng(seed).normal(size=p.shape) * jitter * span
    fig, axes = (ax.figure, None) if ax is not None else _new(size=(5.6, 4.4))
    ax = ax if ax is not None else axes[0, 0]
    values = points[colour_by].astype(str)
    if colour_by == "class" and "label" in points.columns:  # legend in label order, not alphabetical
        order = list(dict.fromkeys(values.iloc[np.argsort(points["label"].to_numpy(), kind="stable")]))
    else:
        order = sorted(set(values))
    cats = pd.Categorical(values, categories=order)
    cmap = plt.get_cmap("tab10" if len(cats.categories) <= 10 else "tab20")
    for i, cat in enumerate(cats.categories):
        mask = np.asarray(cats == cat)
        ax.scatter(p[mask, 0], p[mask, 1], s=6, alpha=0.6, color=cmap(i % cmap.N), label=cat)
    ax.legend(fontsize=7, markerscale=2, title=colour_by, loc="best", ncol=1 + len(cats.categories) // 12)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return fig
