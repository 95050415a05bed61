"""hdcid.widgets: render functions and the slider / dropdown shells around them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hdcid import analysis, widgets
from hdcid.toc import TOCSettings, settings_problem


def _toc_fixture(n=40, seed=0):
    """Codebook (1, 8, 4) where w_sim decides the best dim, and codes whose dim 0 holds the class.

    dim 0: mean 3, large spread -> best at w_sim = 0 (variance only), worst at w_sim = 0.7
    dim 1: mean 0, small spread -> best at w_sim = 0.7
    """
    rng = np.random.default_rng(seed)
    E = np.zeros((8, 4))
    E[:, 0] = 3.0 + np.array([-2, 2, -2, 2, -2, 2, -2, 2], float)  # var ~4.57, mean 3
    E[:, 1] = np.array([-1, 1, -1, 1, -1, 1, -1, 1], float)  # var ~1.14, mean 0
    E[:, 2] = 5.0 + 0.1 * rng.normal(size=8)
    E[:, 3] = -5.0 + 0.1 * rng.normal(size=8)
    y = np.arange(n) % 2

    def codes(s):
        q = np.random.default_rng(s).normal(0, 3.0, size=(n, 10, 1, 4))
        q[..., 0] = y[:, None, None] * 2.0  # the informative dimension
        return q

    return E[None], codes(seed + 1), codes(seed + 2), y


def test_settings_problems_are_messages():
    assert settings_problem(64, 32, 1, 0) is None
    msg = settings_problem(64, 31, 3, 0)
    assert "choose_channel = 31 is not divisible by toc_max_num + toc_min_num = 3" in msg
    assert "[30, 33]" in msg
    assert "is 0" in settings_problem(64, 32, 0, 0)
    assert "1..64" in settings_problem(64, 65, 1, 0)
    assert "nearest" in settings_problem(64, 63, 2, 0).lower()
    assert "[62, 64]" in settings_problem(64, 63, 2, 0)
    assert "[4]" in settings_problem(5, 5, 4, 0)  # 8 would exceed the width
    assert "w_sim must be a finite weight" in settings_problem(64, 32, 1, 0, w_sim=float("nan"))


def test_render_toc_readout_probe_and_invalid():
    E, qa, qb, y = _toc_fixture()
    state = widgets.TOCState(E, qa, y, qb, y, direction="video -> audio")
    text, fig, acc = widgets.render_toc(state, 1, 1, 0, 0.7)
    assert "keep 1 of 4 dims per level = 1 best + 0 worst" in text
    assert "level 1 dims: [1]" in text  # zero-mean dim wins when similarity is penalised
    assert fig is not None
    assert acc == pytest.approx(analysis.cross_modal_probe(qa, y, qb, y, dims=[np.array([1])]))
    text0, _, acc0 = widgets.render_toc(state, 1, 1, 0, 0.0)
    assert "level 1 dims: [0]" in text0 and acc0 == pytest.approx(100.0)
    assert acc < 90.0
    bad_text, bad_fig, bad_acc = widgets.render_toc(state, 3, 2, 0, 0.7)
    assert bad_text.startswith("Invalid setting:") and bad_fig is None and bad_acc is None


def test_toc_explorer_sliders_update_outputs():
    E, qa, qb, y = _toc_fixture()
    ex = widgets.toc_explorer(E, qa, qb, y, y, settings=TOCSettings(2, 1, 0, 0.7, 0.3))
    first_msg, first_img, first_acc = ex.message, ex.image.value, ex.probe_acc
    assert first_img[:4] == b"\x89PNG" and "keep 2 of 4" in first_msg
    ex.choose_channel.value = 1
    assert "keep 1 of 4" in ex.message and ex.message != first_msg
    assert ex.image.value != first_img  # the after-TOC heatmap changed
    acc_sim = ex.probe_acc
    ex.w_sim.value = 0.0  # variance only: the informative dim 0 is now the best
    assert "level 1 dims: [0]" in ex.message
    assert ex.probe_acc == pytest.approx(100.0) and ex.probe_acc != acc_sim
    img_before_invalid = ex.image.value
    ex.toc_max_num.value = 2  # 1 % 2 != 0 -> invalid
    assert "Invalid setting" in ex.message and "not divisible" in ex.readout.value
    assert ex.probe_acc is None and ex.image.value == img_before_invalid  # nothing crashed, old image kept
    ex.choose_channel.value = 2
    assert "keep 2 of 4 dims per level = 2 best" in ex.message
    assert first_acc is not None and ex.values == (2, 2, 0, 0.0)


def test_toc_state_shape_error():
    E, qa, qb, y = _toc_fixture()
    with pytest.raises(ValueError, match=r"q_test: expected \(N, T, 1, 4\)"):
        widgets.TOCState(E, qa, y, qb[..., :3], y)


def _points():
    xy = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    points = pd.DataFrame(
        {
            "modality": ["video", "audio", "video", "audio"],
            "level": [1, 1, 2, 2],
            "code": [0, 0, 1, 2],
            "class": ["a", "b", "a", "b"],
            "point": [0, 0, 1, 2],
        }
    )
    return xy, points


def test_render_projection_filters():
    xy, points = _points()
    fig = widgets.render_projection(xy, points, level="2", modality="all", colour_by="modality", note="PCA")
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 2
    assert "level 2" in ax.get_title() and ax.get_title().startswith("PCA")
    empty = widgets.render_projection(xy, points, level="1", modality="text")
    assert "no segments" in empty.texts[0].get_text()


def test_umap_explorer_dropdowns_change_the_image():
    xy, points = _points()
    ex = widgets.umap_explorer(xy, points, note="PCA (quick mode)")
    assert ex.level.options == ("all", "1", "2") and ex.modality.options == ("all", "video", "audio")
    img = ex.image.value
    ex.colour_by.value = "level"
    assert ex.image.value != img
    img = ex.image.value
    ex.modality.value = "audio"
    assert ex.image.value != img
