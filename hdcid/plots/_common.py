"""What every figure shares: a fresh Figure with its axes grid, PNG bytes for widgets, and
`save_figure`, which writes `<output>/figures/NN-what.png` named after the notebook."""

from __future__ import annotations

import re
from pathlib import Path

from matplotlib.figure import Figure

from hdcid.analysis import as_numpy as _np  # noqa: F401  (re-used by every plot module)
from hdcid.utils import atomic_path, output_dir


def _new(nrows: int = 1, ncols: int = 1, size=(5.0, 3.6), **kw):
    """A Figure (not registered with pyplot's state machine, so figures never pile up)."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


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
