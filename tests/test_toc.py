"""TOC: closed form vs the literal double loop, selection order, errors, apply_toc, cosine views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hdcid.toc import (
    TOCSettings,
    apply_toc,
    cosine_summary,
    cosine_views,
    toc_scores,
    toc_scores_loop,
    toc_select,
    toc_select_levels,
)


def _codebooks():
    g = torch.Generator().manual_seed(0)
    M, D = 23, 12
    uniform = (torch.rand(M, D, generator=g, dtype=torch.float64) - 0.5) / 200
    offset = torch.randn(M, D, generator=g, dtype=torch.float64) + torch.linspace(-2, 2, D, dtype=torch.float64)
    lowrank = (
        torch.randn(M, 3, generator=g, dtype=torch.float64) @ torch.randn(3, D, generator=g, dtype=torch.float64)
    ) * torch.linspace(0.1, 3, D, dtype=torch.float64)
    lowrank = lowrank + 0.01 * torch.randn(M, D, generator=g, dtype=torch.float64)
    return {"uniform": uniform, "offset": offset, "lowrank": lowrank}


def _loop_select(E, c, a, b):
    """Selection from the loop scores with plain Python sorting (independent of topk)."""
    s = toc_scores_loop(E).tolist()
    q = c // (a + b)
    desc = sorted(range(len(s)), key=lambda d: -s[d])
    asc = sorted(range(len(s)), key=lambda d: s[d])
    return desc[: q * a] + asc[: q * b]


def test_hand_worked_scores():
    E = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 0.0]])
    # col 0: pairs sum = (9^2 - 35) / 6 = 46/6, var = 4; col 1: (36 - 20) / 6 = 16/6, var = 4
    want = torch.tensor([-0.7 * 46 / 6 + 0.3 * 4, -0.7 * 16 / 6 + 0.3 * 4], dtype=torch.float64)
    assert torch.allclose(toc_scores(E), want, rtol=0, atol=1e-12)
    assert torch.allclose(toc_scores_loop(E), want, rtol=0, atol=1e-12)
    assert toc_scores(E).dtype == torch.float64


@pytest.mark.parametrize("kind", ["uniform", "offset", "lowrank"])
def test_closed_form_equals_double_loop(kind):
    E = _codebooks()[kind]
    loop, closed = toc_scores_loop(E), toc_scores(E)
    scale = loop.abs().max()
    assert torch.allclose(closed, loop, rtol=0, atol=1e-12 * float(scale))
    # other weights too
    assert torch.allclose(toc_scores(E, 0.3, 0.7), toc_scores_loop(E, 0.3, 0.7), rtol=0, atol=1e-12 * float(scale))


@pytest.mark.parametrize("kind", ["uniform", "offset", "lowrank"])
@pytest.mark.parametrize("c,a,b", [(8, 1, 1), (8, 3, 1), (6, 1, 0), (12, 1, 0), (12, 1, 1), (4, 0, 1)])
def test_selection_order_matches_loop(kind, c, a, b):
    E = _codebooks()[kind]
    idx = toc_select(E, c, a, b)
    assert idx.dtype == torch.long
    assert idx.tolist() == _loop_select(E, c, a, b)
    assert len(set(idx.tolist())) == c


def test_selection_parts_are_sorted():
    E = _codebooks()["offset"]
    s = toc_scores(E)
    idx = toc_select(E, 8, 3, 1)  # 6 best (descending) + 2 worst (ascending)
    top, bot = s[idx[:6]], s[idx[6:]]
    assert torch.all(top[:-1] >= top[1:]) and torch.all(bot[:-1] <= bot[1:])
    assert float(top.min()) >= float(s.sort(descending=True).values[5])
    assert float(bot.max()) <= float(s.sort().values[1])


def test_paper_setting_widths():
    E = torch.randn(400, 256, dtype=torch.float64)
    idx = toc_select(E, 128, 3, 1)
    assert idx.numel() == 128
    s = toc_scores(E)
    assert set(idx[:96].tolist()) == set(torch.topk(s, 96).indices.tolist())
    assert set(idx[96:].tolist()) == set(torch.topk(s, 32, largest=False).indices.tolist())
    assert toc_select(E, 256, 1, 0).tolist() == torch.argsort(s, descending=True).tolist()


@pytest.mark.parametrize(
    "args,msg",
    [
        ((10, 3, 1), "10 is not divisible by toc_max_num \\+ toc_min_num = 4; .* Nearest valid budgets: \\[8, 12\\]"),
        ((16, 1, 1), "choose_channel must lie in 1..12 \\(the code width\\), got 16"),
        ((8, -1, 1), "toc_max_num must be a non-negative integer, got -1"),
        ((8, 1, -2), "toc_min_num must be a non-negative integer, got -2"),
        ((-4, 1, 1), "choose_channel must be a non-negative integer"),
        ((8, 0, 0), "toc_max_num \\+ toc_min_num is 0"),
        ((float("nan"), 1, 1), "choose_channel must be a non-negative integer, got nan"),
        ((0, 1, 1), "choose_channel must lie in 1..12"),
    ],
)
def test_errors(args, msg):
    E = _codebooks()["offset"]
    with pytest.raises(ValueError, match=msg):
        toc_select(E, *args)


def test_settings_errors_and_bad_codebook():
    with pytest.raises(ValueError, match="divisible"):
        TOCSettings(10, 3, 1)
    with pytest.raises(ValueError, match=r"expected a 2-D codebook \(M, D\), got shape \(3, 4, 5, 6\)"):
        toc_select(torch.zeros(3, 4, 5, 6), 4, 1, 0)
    with pytest.raises(ValueError, match="at least 2 codes"):
        toc_scores(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"codebooks: expected shape \(L, M, D\)"):
        toc_select_levels(torch.zeros(5), 4, 1, 0)


def test_levels_and_apply_toc():
    g = torch.Generator().manual_seed(1)
    cb = torch.randn(2, 20, 6, generator=g, dtype=torch.float64)
    st = TOCSettings(4, 1, 1)
    idx = st.select(cb)
    assert [i.tolist() for i in idx] == [toc_select(cb[0], 4, 1, 1).tolist(), toc_select(cb[1], 4, 1, 1).tolist()]
    codes = torch.arange(3 * 2 * 2 * 6, dtype=torch.float32).reshape(3, 2, 2, 6)  # (N, T, L, D)
    out = apply_toc(codes, idx)
    assert out.shape == (3, 2, 8)
    want = torch.cat([codes[:, :, 0, idx[0]], codes[:, :, 1, idx[1]]], dim=-1)  # level 0 first
    assert torch.equal(out, want)
    # numpy input, and None keeps every dim in natural order
    assert np.array_equal(apply_toc(codes.numpy(), idx), want.numpy())
    assert torch.equal(apply_toc(codes, None), codes.reshape(3, 2, 12))
    with pytest.raises(ValueError, match="1 index lists for 2 code levels"):
        apply_toc(codes, idx[:1])
    with pytest.raises(ValueError, match=r"expected codes \(N, T, L, D\)"):
        apply_toc(codes[0], idx)
    assert st.label == "C4/1:1"


def test_cosine_views_hand_case():
    E = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    before, after = cosine_views(E, torch.tensor([0]))
    r = 1 / math.sqrt(2)
    assert torch.allclose(before, torch.tensor([[1, 0, r], [0, 1, r], [r, r, 1]], dtype=torch.float64))
    # after: rows [1], [0], [1]; the zero row has cosine 0 with everything (eps clamp)
    assert torch.allclose(after, torch.tensor([[1, 0, 1], [0, 0, 0], [1, 0, 1]], dtype=torch.float64))
    s = cosine_summary(before, after)
    assert s["mean_cos_before"] == pytest.approx(4 * r / 6)
    assert s["mean_cos_after"] == pytest.approx(2 / 6)
    # keeping every dim (any order) leaves the cosines unchanged
    b2, a2 = cosine_views(E, torch.tensor([1, 0]))
    assert torch.allclose(b2, a2)
