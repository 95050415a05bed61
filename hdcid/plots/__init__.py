"""Figures: each function draws data it is given and returns a matplotlib Figure.

No function here computes statistics (see `hdcid.analysis`) or calls `plt.show()`; the notebook
displays the figure. `save_figure` writes `<output>/figures/NN-what.png` named after the notebook.

One concept per module, every public name re-exported here (`from hdcid import plots`):

- `training`    pretraining loss curves and code agreement per step (nb 01)
- `method`      2-D toys of the method: codes under MM-EMA, a dead code revived (nb 01)
- `codebook`    code usage, ownership, agreement / co-occurrence heatmaps, level information (nb 02, 04)
- `toc`         TOC criterion, cosine heatmaps before / after selection, probe sweep (nb 03)
- `projection`  segments at their code's 2-D position (nb 04)
- `downstream`  confusion matrices, per-class bars, AVVP timelines, tables, grouped bars (nb 05-09)
- `clips`       a gallery of demo clips (nb 00)
- `speech`      spectrograms of spoken digits side by side (nb 00)
- `_common`     a fresh Figure, `figure_png` for widgets, `save_figure`
"""

from __future__ import annotations

from hdcid.plots._common import figure_png, save_figure
from hdcid.plots.clips import clip_gallery
from hdcid.plots.codebook import (
    agreement_heatmap,
    cooccurrence_heatmap,
    level_information_bars,
    ownership_bars,
    usage_histograms,
    usage_over_training,
)
from hdcid.plots.downstream import avvp_timelines, confusion_matrix_plot, grouped_bars, per_class_bars, results_table
from hdcid.plots.method import ema_trajectories, reset_revival
from hdcid.plots.projection import projection_scatter
from hdcid.plots.speech import spectrogram_panels
from hdcid.plots.toc import cosine_heatmaps, sweep_plot, toc_criterion
from hdcid.plots.training import agreement_curve, heldout_agreement_curve, loss_curves

__all__ = [
    # pretraining
    "loss_curves",
    "agreement_curve",
    "heldout_agreement_curve",
    # the method on 2-D toys
    "ema_trajectories",
    "reset_revival",
    # codebook
    "usage_histograms",
    "usage_over_training",
    "ownership_bars",
    "agreement_heatmap",
    "cooccurrence_heatmap",
    "level_information_bars",
    # TOC
    "toc_criterion",
    "cosine_heatmaps",
    "sweep_plot",
    # projections
    "projection_scatter",
    # downstream
    "confusion_matrix_plot",
    "per_class_bars",
    "avvp_timelines",
    "results_table",
    "grouped_bars",
    # data
    "clip_gallery",
    "spectrogram_panels",
    # output
    "figure_png",
    "save_figure",
]


def __dir__() -> list[str]:
    return sorted(__all__)
