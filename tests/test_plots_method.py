"""Figures of the method toys (nb 01) and the clip gallery (nb 00): labelled axes with units, a
legend or colour bar for every colour, prompts that fit their column."""

from __future__ import annotations

import numpy as np
import torch

from hdcid import plots


def _path(steps=4, codes=3):
    g = torch.Generator().manual_seed(0)
    return torch.cumsum(0.1 * torch.randn(steps + 1, codes, 2, generator=g), 0)  # (S+1, K, 2)


def test_ema_trajectories_labels_every_code_and_clips_far_codes():
    path = _path()
    path[-1, 2] = torch.tensor([500.0, 500.0])  # a code thrown far away (dead code)
    feats = torch.randn(50, 2, generator=torch.Generator().manual_seed(1))
    fig = plots.ema_trajectories(path, feats)
    ax = fig.axes[0]
    assert "(a.u.)" in ax.get_xlabel() and "(a.u.)" in ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("features") and labels[1:] == ["code 0", "code 1", "code 2 (leaves the view)"]
    assert ax.get_xlim()[1] < 10 and ax.get_ylim()[1] < 10  # the view stays on the data


def test_reset_revival_has_two_labelled_panels():
    wins = torch.tensor([[5, 3, 0], [4, 4, 0], [3, 3, 2], [2, 3, 3]])
    fig = plots.reset_revival(_path(), wins, dead=2, features=torch.randn(20, 2))
    left, right = fig.axes[:2]
    assert right.get_xlabel() == "training call" and "count" in right.get_ylabel()
    assert len(right.get_legend().get_texts()) == 3 and len(left.get_legend().get_texts()) == 4
    np.testing.assert_array_equal(right.lines[2].get_ydata(), [0, 0, 2, 3])  # the dead code's wins


def test_clip_gallery_prompts_wrap_and_every_colour_has_a_bar():
    rng = np.random.default_rng(0)
    n, T = 3, 10
    prompts = ["someone says the number zero and writes it down"] * n
    fig = plots.clip_gallery(
        rng.random((n, 8, 8)), rng.random((n, T, 7, 7, 4)), rng.random((n, T, 16)), ["a", "b", "c"], prompts=prompts
    )
    main = fig.axes[: 3 * n]
    cbars = fig.axes[3 * n :]
    assert len(cbars) == 2 and all(cb.get_ylabel().endswith("(a.u.)") for cb in cbars)
    titles = [ax.get_title() for ax in main[:n]]
    assert all(max(len(line) for line in t.splitlines()) <= 28 for t in titles)  # wrapped, no overlap
    assert all(ax.get_xlabel() for ax in main[n:])  # every data panel has a labelled x axis
    assert "time (s)" in main[2 * n].get_xlabel()


def test_loss_curves_plots_the_terms_that_analysis_groups():
    import pandas as pd

    from hdcid import analysis

    h = pd.DataFrame(
        {
            "step": [1, 2],
            "epoch": [0, 0],
            "rec_a": [1.0, 0.5],
            "rec_v": [2.0, 1.0],
            "cpc": [3.0, 2.0],
            "total": [6, 3.5],
        }
    )
    h["agreement"], h["level2"] = [0.1, 0.2], [0.0, 0.0]  # logged, not loss terms: loss_terms drops them
    terms = analysis.loss_terms(h)
    fig = plots.loss_curves(terms)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == [c for c in terms.columns if c not in ("step", "epoch")] == ["reconstruction", "CPC", "total"]
    assert list(fig.axes[0].lines[0].get_ydata()) == [3.0, 1.5]  # rec_a + rec_v per step


def test_loss_curves_skip_a_term_that_no_run_has():
    import pandas as pd

    hdcid_run = pd.DataFrame({"step": [1, 2], "CPC": [3.0, 2.0], "CMCM": [0.0, 0.0]})  # H-DCID logs CMCM as 0
    dcid_run = pd.DataFrame({"step": [1, 2], "CPC": [3.5, 2.5], "CMCM": [1.0, 0.8]})
    shown = lambda fig: [ax.get_title() for ax in fig.axes if ax.get_visible()]  # noqa: E731
    assert shown(plots.loss_curves({"H-DCID": hdcid_run})) == ["CPC"]
    assert shown(plots.loss_curves({"DCID": dcid_run, "H-DCID": hdcid_run})) == ["CPC", "CMCM"]
    waiting = pd.DataFrame({"step": [0], "total": [float("nan")]})  # notebook 01's live plot before step 1
    assert shown(plots.loss_curves(waiting)) == ["total"]
