"""What every figure shares: a fresh Figure with its axes grid, a heatmap and grouped bars drawn with
matplotlib alone, PNG bytes for widgets, and `save_figure`, which writes `<output>/figures/NN-what.png`
named after the notebook.

The heatmap and the grouped bars are the two looks the collection took from seaborn; they are drawn
here because importing seaborn imports `scipy.stats`, about 1.3 s of every notebook that drew one
(issue 12).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

from hdcid.analysis import as_numpy as _np  # noqa: F401  (re-used by every plot module)
from hdcid.utils import atomic_path, output_dir


def _new(nrows: int = 1, ncols: int = 1, size=(5.0, 3.6), **kw):
    """A Figure (not registered with pyplot's state machine, so figures never pile up)."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def heatmap(
    ax,
    m: np.ndarray,
    xticklabels: Sequence[str] | None = None,
    yticklabels: Sequence[str] | None = None,
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "viridis",
    annot: bool = False,
    fmt: str = ".2f",
    tick_step: int = 1,
    rasterized: bool = False,
) -> None:
    """Draw matrix `m` (R, C) on `ax` as coloured cells, row 0 at the top, with a colour bar; with
    `annot` each cell's value is written in it (`fmt`), black on light cells and white on dark ones.
    Tick labels: `xticklabels` / `yticklabels` (default: the indices), every `tick_step`-th one;
    x labels turn upright when they would not fit side by side."""
    m = np.asarray(m, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"heatmap: expected a 2-D matrix, got shape {m.shape}")
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    im.set_rasterized(rasterized)
    ax.figure.colorbar(im, ax=ax, shrink=0.8)
    for axis, n, labels in ((ax.xaxis, m.shape[1], xticklabels), (ax.yaxis, m.shape[0], yticklabels)):
        ticks = np.arange(0, n, tick_step)
        names = [str(t) for t in ticks] if labels is None else [str(labels[t]) for t in ticks]
        axis.set_ticks(ticks, names)
    names = [t.get_text() for t in ax.get_xticklabels()]
    if sum(len(t) for t in names) > 4 * len(names) + 4:  # longer than ~4 characters a tick: upright
        ax.tick_params(axis="x", labelrotation=90)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if annot:
        colours = im.cmap(im.norm(m))
        luminance = colours[..., :3] @ np.array([0.2126, 0.7152, 0.0722])
        for (i, j), v in np.ndenumerate(m):
            ax.text(
                j,
                i,
                format(v, fmt),
                ha="center",
                va="center",
                fontsize=10 if max(m.shape) <= 5 else 8,  # "0.00" fits a cell of a 10 x 10 matrix
                color="k" if luminance[i, j] > 0.408 else "w",
            )


def bar_groups(
    ax, heights: np.ndarray, xlabels: Sequence[str], labels: Sequence[str], colors: Sequence | None = None
) -> list[BarContainer]:
    """Grouped vertical bars on `ax`: `heights` (H, X), one group per x (labelled `xlabels`) holding one
    bar per row of `heights` (named `labels` in the legend, coloured `colors`, default C0, C1, ...),
    the group 0.8 wide. NaN heights draw no bar. Returns one BarContainer per row, bars in x order."""
    h = np.asarray(heights, dtype=float)
    if h.shape != (len(labels), len(xlabels)):
        raise ValueError(
            f"bar_groups: heights must be (len(labels), len(xlabels)) = {(len(labels), len(xlabels))}, got {h.shape}"
        )
    width = 0.8 / max(1, len(labels))
    colors = colors if colors is not None else [f"C{j}" for j in range(len(labels))]
    x = np.arange(len(xlabels))
    bars = [
        ax.bar(x - 0.4 + width * (j + 0.5), row, width=width, label=str(name), color=to_rgba(c))
        for j, (row, name, c) in enumerate(zip(h, labels, colors))
    ]
    ax.set_xticks(x, [str(v) for v in xlabels])
    return bars


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """PNG bytes of a figure (used by widgets to update an `ipywidgets.Image`)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def save_figure(fig: Figure, notebook_name: str, what: str, dpi: int = 110) -> Path:
    """Write `fig` to `<output>/figures/NN-what.png`, NN taken from the notebook name.

    notebook_name: "03_toc" or "03_toc.ipynb" (or "03"); what: short slug ("cosine-heatmaps").
    """
    m = re.match(r"^(\d+)", Path(str(notebook_name)).name)
    if not m:
        raise ValueError(f"notebook_name must start with its number, e.g. '03_toc'; got {notebook_name!r}")
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", what).strip("-")
    if not slug:
        raise ValueError(f"what must contain letters or digits, got {what!r}")
    path = output_dir("figures") / f"{m.group(1)}-{slug}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path
