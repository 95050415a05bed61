"""Pretraining curves: loss terms per step and cross-modal code agreement (notebook 01)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hdcid.plots._common import _new

_INDEX_COLUMNS = ("step", "epoch")  # the x axis of a history; every other column is a loss term


def _histories(h) -> dict[str, pd.DataFrame]:
    if isinstance(h, pd.DataFrame):
        return {"": h}
    return dict(h)


def _xaxis(df: pd.DataFrame) -> tuple[np.ndarray, str]:
    if "step" in df.columns:
        return df["step"].to_numpy(), "step"
    return np.arange(len(df)), "step"


def loss_curves(
    history, terms: Sequence[str] | None = None, ncols: int = 3, title: str = "Pretraining losses per term"
) -> Figure:
    """Small multiples, one panel per loss term (column of `history`), one line per run.

    history: `hdcid.analysis.loss_terms(...)` of a pretraining history (one row per step, one
    column per loss term plus step/epoch), or {run name: such a frame}; the grouping of logged
    columns into terms lives there, not here. `terms` defaults to every numeric column except
    step/epoch that is non-zero in some run (H-DCID logs CMCM as 0 at both levels: a term that no
    run has gets no empty panel). Shown in notebook 01.
    """
    runs = _histories(history)
    if terms is None:
        seen: list[str] = []
        for df in runs.values():
            for c in df.columns:
                if c not in seen and c not in _INDEX_COLUMNS and pd.api.types.is_numeric_dtype(df[c]):
                    seen.append(c)
        terms = [t for t in seen if not all(t not in df.columns or (df[t] == 0).all() for df in runs.values())]
    if not terms:
        raise ValueError("loss_curves: no loss columns found in the history")
    nrows = int(np.ceil(len(terms) / ncols))
    fig, axes = _new(nrows, min(ncols, len(terms)), size=(3.6, 2.6))
    for ax, term in zip(axes.flat, terms):
        for j, (name, df) in enumerate(runs.items()):  # one colour per run in every panel
            if term in df.columns:
                x, xlabel = _xaxis(df)
                ax.plot(x, df[term].to_numpy(), label=name or None, lw=1.2, color=f"C{j}")
        ax.set_title(term, fontsize=10)
        ax.set_xlabel(xlabel if runs else "step", fontsize=8)
        ax.set_ylabel("loss (a.u.)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(terms) :]:
        ax.set_visible(False)
    if len(runs) > 1:
        axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig


def agreement_curve(
    history, column: str = "agreement", title: str = "Cross-modal code agreement during pretraining"
) -> Figure:
    """Fraction of co-located segments whose modalities chose the same code, per step (nb 01)."""
    fig, axes = _new()
    ax = axes[0, 0]
    for name, df in _histories(history).items():
        if column not in df.columns:
            raise ValueError(
                f"agreement_curve: history {name!r} has no column {column!r}; columns are {list(df.columns)}"
            )
        x, xlabel = _xaxis(df)
        ax.plot(x, df[column].to_numpy(), label=name or None)
        ax.set_xlabel(xlabel)
    ax.set_ylabel("agreement")
    ax.set_ylim(0, 1)
    if len(_histories(history)) > 1:
        ax.legend()
    ax.set_title(title)
    return fig


def heldout_agreement_curve(
    per_epoch,
    columns: Sequence[str] = ("agreement", "clip_agreement"),
    title: str = "Audio-video code agreement on held-out clips, per epoch",
) -> Figure:
    """One panel per column of `hdcid.analysis.agreement_over_epochs` (same-second and clip-level
    agreement), one line per model and level. per_epoch: {model name: DataFrame with columns
    epoch (0-based), level, and `columns`}. Epochs are drawn 1-based (nb 01)."""
    fig, axes = _new(1, len(columns), size=(4.6, 3.2))
    for ax, col in zip(axes.flat, columns):
        j = 0
        for name, df in dict(per_epoch).items():
            for level, g in df.groupby("level"):
                label = name if df["level"].nunique() == 1 else f"{name} level {level}"
                ax.plot(g["epoch"].to_numpy() + 1, g[col].to_numpy(), marker="o", label=label, color=f"C{j}")
                j += 1
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(col.replace("_", " "))
        ax.set_ylim(0, 1)
        ax.set_title(
            {"agreement": "same second", "clip_agreement": "same clip (most frequent code)"}.get(col, col), fontsize=10
        )
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    return fig
