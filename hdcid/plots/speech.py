"""Spectrograms of spoken digits side by side (nb 00, human vs synthetic speech)."""

from __future__ import annotations

import numpy as np

from hdcid.plots._common import _new


def spectrogram_panels(
    spectrograms: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    titles: list[str],
    suptitle: str | None = None,
    floor_db: float = -70.0,
):
    """One panel per (freqs (F,), times (Tf,), dB (F, Tf)) spectrogram (e.g. from
    `hdcid.demo.audio.log_spectrogram`); shared colour scale from `floor_db` to 0 dB. Returns the Figure."""
    fig, axes = _new(1, len(spectrograms), size=(4.2, 3.0), sharey=True)
    im = None
    for ax, (f, t, db), title in zip(axes[0], spectrograms, titles):
        im = ax.pcolormesh(t, f / 1000, db, shading="auto", vmin=floor_db, vmax=0, cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
    axes[0, 0].set_ylabel("frequency (kHz)")
    fig.colorbar(im, ax=axes[0].tolist(), label="power (dB re max)", shrink=0.9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return fig
