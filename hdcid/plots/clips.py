"""The data itself: a gallery of demo clips, their source images and features (notebook 00)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from hdcid.plots._common import _new, _np


def clip_gallery(
    images,
    video,
    audio,
    titles: Sequence[str],
    prompts: Sequence[str] | None = None,
    title: str = "A few demo clips",
    second: int | None = None,
) -> Figure:
    """One column per clip: a source image (h, w), the video feature grid of one second (channel
    mean, G x G), and the audio features over seconds (T x A, a spectrogram-like view) (nb 00).

    images (n, h, w) or None; video (n, T, G, G, C); audio (n, T, A); titles: one per clip; prompts:
    the text prompt of each clip, wrapped under its title. Video and audio rows share one colour
    scale per row, shown by a colour bar.
    """
    v, a = _np(video), _np(audio)
    n, T = len(v), v.shape[1]
    t_mid = T // 2 if second is None else second
    rows = 3 if images is not None else 2
    fig, axes = _new(rows, n, size=(2.3, 2.1))
    grids = v[:, t_mid].mean(-1)  # (n, G, G) channel mean of one second
    g_lim = (float(grids.min()), float(grids.max()))
    a_lim = (float(a.min()), float(a.max()))
    r = 1 if images is not None else 0
    for i in range(n):
        head = titles[i]
        if prompts is not None:
            head += "\n" + textwrap.fill(f"\u201c{prompts[i]}\u201d", width=26)
        top = axes[0, i]
        top.set_title(head, fontsize=8, loc="center")
        if images is not None:
            top.imshow(_np(images)[i], cmap="gray_r")
            top.set_axis_off()
        im_v = axes[r, i].imshow(grids[i], cmap="magma", vmin=g_lim[0], vmax=g_lim[1])
        axes[r, i].set_xlabel("grid column (cell)", fontsize=7)
        axes[r, i].set_xticks(np.arange(0, grids.shape[2], 2))
        axes[r, i].set_yticks(np.arange(0, grids.shape[1], 2))
        im_a = axes[r + 1, i].imshow(
            a[i].T,
            aspect="auto",
            origin="lower",
            cmap="viridis",
            vmin=a_lim[0],
            vmax=a_lim[1],
            extent=(-0.5, T - 0.5, -0.5, a.shape[2] - 0.5),
        )
        axes[r + 1, i].set_xlabel("time (s)", fontsize=7)
        for ax in axes[r:, i]:
            ax.tick_params(labelsize=6)
        if i == 0:
            axes[r, i].set_ylabel(f"video, second {t_mid}\ngrid row (cell)", fontsize=7)
            axes[r + 1, i].set_ylabel("audio\nfeature index", fontsize=7)
    fig.colorbar(im_v, ax=list(axes[r, :]), shrink=0.9, pad=0.01).set_label("channel mean (a.u.)", fontsize=7)
    fig.colorbar(im_a, ax=list(axes[r + 1, :]), shrink=0.9, pad=0.01).set_label("feature value (a.u.)", fontsize=7)
    fig.suptitle(title, fontsize=10)
    return fig
