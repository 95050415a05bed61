"""The data itself: a gallery of demo clips, their source images and features (notebook 00)."""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure

from hdcid.plots._common import _new, _np


def clip_gallery(images, video, audio, titles: Sequence[str], prompts: Sequence[str] | None = None,
                 title: str = "A few demo clips") -> Figure:
    """One column per clip: a source image (h, w), the video feature grid of one second (channel
    mean, G x G), and the audio features over seconds (T x A, a spectrogram-like view) (nb 00).

    images (n, h, w) or None; video (n, T, G, G, C); audio (n, T, A).
    """
    v, a = _np(video), _np(audio)
    n = len(v)
    rows = 3 if images is not None else 2
    fig, axes = _new(rows, n, size=(2.4, 2.0))
    for i in range(n):
        r = 0
        if images is not None:
            axes[0, i].imshow(_np(images)[i], cmap="gray_r")
            axes[0, i].set_title(titles[i], fontsize=9)
            r = 1
        t_mid = v.shape[1] // 2
        axes[r, i].imshow(v[i, t_mid].mean(-1), cmap="magma")
        axes[r, i].set_title(f"video grid, second {t_mid}", fontsize=8)
        axes[r + 1, i].imshow(a[i].T, aspect="auto", origin="lower", cmap="viridis")
        axes[r + 1, i].set_title("audio features", fontsize=8)
        axes[r + 1, i].set_xlabel("second", fontsize=7)
        if prompts is not None:
            axes[r + 1, i].text(0, -0.45, prompts[i], transform=axes[r + 1, i].transAxes, fontsize=7,
                                wrap=True, va="top")
        for ax in axes[:, i]:
            ax.tick_params(labelsize=6)
    fig.suptitle(title)
    return fig
