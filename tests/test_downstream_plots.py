"""plots.downstream.grouped_bars (grouped bars with error bars) and the sklearn-backed nearest centroid."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def test_grouped_bars_heights_order_and_error_bars():
    from hdcid import plots

    df = pd.DataFrame(
        {
            "direction": ["v2a", "v2a", "a2v", "a2v"],
            "row": ["DCID", "H-DCID", "DCID", "H-DCID"],
            "mean": [40.0, 55.0, 35.0, 50.0],
            "std": [3.0, 5.0, 2.0, np.nan],
        }
    )
    fig = plots.grouped_bars(df, x="direction", y="mean", hue="row", err="std", chance=10.0, title="t")
    ax = fig.axes[0]
    assert [[b.get_height() for b in c] for c in ax.containers[:2]] == [[40.0, 35.0], [55.0, 50.0]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["v2a", "a2v"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["DCID", "H-DCID", "chance"]  # as drawn
    caps = [c for c in ax.collections if c.__class__.__name__ == "LineCollection"]
    segs = np.concatenate([c.get_segments() for c in caps])  # error bars: (bottom, top) per bar
    spans = sorted(round(float(s[1, 1] - s[0, 1]), 6) for s in segs)
    assert spans == [0.0, 4.0, 6.0, 10.0]  # 2 * std, NaN std drawn as 0


def test_nearest_centroid_matches_the_hand_computed_rule():
    spec = importlib.util.spec_from_file_location(
        "_nc", Path(__file__).resolve().parents[1] / "benchmarks" / "nearest_centroid.py"
    )
    nc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nc)
    tr = np.array([[0.0, 0.0], [1.0, 2.0], [10.0, 0.0], [11.0, 2.0]])
    y = np.array([0, 0, 1, 1])  # centroids (0.5, 1) and (10.5, 1)
    te = np.array([[5.4, 0.0], [5.6, 9.0], [-3.0, 1.0]])
    assert nc._nearest(tr, y, te, 2).tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match=r"classes \[2\] have no training point"):
        nc._nearest(tr, y, te, 3)


def test_heatmap_puts_row_zero_on_top_and_writes_each_value_legibly():
    from matplotlib.figure import Figure

    from hdcid.plots._common import heatmap

    ax = Figure().subplots()
    m = np.array([[0.0, 0.25, 1.0], [0.5, 0.75, 0.1]])
    heatmap(ax, m, ["a", "b", "c"], ["r0", "r1"], vmin=0, vmax=1, annot=True)
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # y grows downwards: row 0 at the top
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["r0", "r1"]
    written = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts}
    assert {k: t.get_text() for k, t in written.items()} == {(i, j): f"{v:.2f}" for (i, j), v in np.ndenumerate(m)}
    assert written[(0, 0)].get_color() == "w" and written[(0, 2)].get_color() == "k"  # dark / yellow cell
    assert len(ax.figure.axes) == 2  # the colour bar
    with pytest.raises(ValueError, match=r"expected a 2-D matrix, got shape \(3,\)"):
        heatmap(ax, np.zeros(3))


def test_level_information_bars_group_by_target_in_the_frames_order():
    from hdcid import plots

    info = pd.DataFrame(
        {
            "target": ["speaker", "speaker", "event", "event"],
            "level": ["level 1", "level 2"] * 2,
            "nmi": [0.1, 0.2, 0.3, 0.4],
        }
    )
    ax = plots.level_information_bars(info).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["speaker", "event"]
    assert [[b.get_height() for b in c] for c in ax.containers] == [[0.1, 0.3], [0.2, 0.4]]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["level 1", "level 2"]
