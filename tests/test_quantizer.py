"""Unified codebook: MM-EMA / Laplace, reset, commitment, agreement, eval purity, levels, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdcid.config import ModelConfig
from hdcid.model.quantizer import (
    QuantizerOutput,
    UnifiedCodebook,
    code_agreement,
    kmeans_codes,
    nearest_codes,
    squared_distances,
    usage_perplexity,
)

BUFFERS = ("embedding", "ema_weight", "ema_count", "unactivated_count")


def _set_codebook(q: UnifiedCodebook, E, level: int | None = None) -> None:
    E = torch.as_tensor(E, dtype=q.embedding.dtype)
    if level is None:
        q.embedding.copy_(E)
        q.ema_weight.copy_(E)
    else:
        q.embedding[level].copy_(E)
        q.ema_weight[level].copy_(E)


def _snapshot(q: UnifiedCodebook) -> dict[str, torch.Tensor]:
    return {n: getattr(q, n).clone() for n in BUFFERS}


def _assert_unchanged(q: UnifiedCodebook, snap: dict[str, torch.Tensor]) -> None:
    for n in BUFFERS:
        assert torch.equal(getattr(q, n), snap[n]), f"buffer {n} changed"


def _t(x) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)


# ------------------------------------------------------------------------------------------------
# hand-computed toy case: M=2, D=1, B=T=1, decay 0.5, eps 0 (Laplace = identity)
# ------------------------------------------------------------------------------------------------
def _hand_case() -> tuple[UnifiedCodebook, QuantizerOutput]:
    q = UnifiedCodebook(n_codes=2, dim=1, decay=0.5, eps=0.0, reset_after=10**6).double()
    _set_codebook(q, [[0.0], [1.0]])
    out = q(_t([[[0.1]]]), _t([[[0.9]]]), _t([[[0.2]]]))
    return q, out


def test_ema_hand_case():
    # a -> code 0, v -> code 1, t -> code 0.
    # counts: a: c=[.5, 0]; v: c=[.25, .5]; t: c=[.625, .25]
    # masses: a: .5*.1+.25*.9+.25*.2=.325; v: .5*.9+.25*.1+.25*.2=.525; t: .5*.2+.25*.1+.25*.9=.35
    # W: [0,1] -> [.1625,.5] -> [.08125,.5125] -> [.215625,.25625]; E = W/c = [.345, 1.025]
    q, out = _hand_case()
    assert [int(out.indices[m]) for m in ("audio", "video", "text")] == [0, 1, 0]
    np.testing.assert_allclose(q.ema_count.numpy(), [0.625, 0.25], rtol=0, atol=1e-15)
    np.testing.assert_allclose(q.ema_weight.numpy().ravel(), [0.215625, 0.25625], rtol=0, atol=1e-15)
    np.testing.assert_allclose(q.embedding.numpy().ravel(), [0.345, 1.025], rtol=0, atol=1e-14)
    # outputs use the PRE-update codes 0 and 1
    assert float(out.quantized["audio"]) == 0.0 and float(out.quantized["video"]) == 1.0
    assert float(out.quantized["text"]) == 0.0


def test_commitment_hand_case():
    # Lc_a = .5*.1^2 + .125*(.1-1)^2 + .125*.1^2 = .1075
    # Lc_v = .5*.1^2 + .125*.9^2 + .125*.9^2 = .2075
    # Lc_t = .5*.2^2 + .125*.2^2 + .125*.8^2 = .105
    _, out = _hand_case()
    assert float(out.commitment["audio"]) == pytest.approx(0.1075, abs=1e-15)
    assert float(out.commitment["video"]) == pytest.approx(0.2075, abs=1e-15)
    assert float(out.commitment["text"]) == pytest.approx(0.105, abs=1e-15)
    assert float(out.agreement) == 0.0 and int(out.equal_num) == 0


def test_text_partner_off_hand_case():
    # text_partner=False: audio and video partner each other only, text has no partner.
    # masses: a: .75*.1+.25*.9=.3; v: .75*.9+.25*.1=.7; t: .2 (counts as in the original)
    # W: [0,1] -> [.15,.5] -> [.075,.6] -> [.1375,.3]; E = W/c = [.22, 1.2]
    q = UnifiedCodebook(n_codes=2, dim=1, decay=0.5, eps=0.0, reset_after=10**6, text_partner=False).double()
    _set_codebook(q, [[0.0], [1.0]])
    out = q(_t([[[0.1]]]), _t([[[0.9]]]), _t([[[0.2]]]))
    np.testing.assert_allclose(q.ema_weight.numpy().ravel(), [0.1375, 0.3], rtol=0, atol=1e-15)
    np.testing.assert_allclose(q.embedding.numpy().ravel(), [0.22, 1.2], rtol=0, atol=1e-14)
    # commitment: Lc_a = .5*.1^2 + .125*.9^2 = .10625; Lc_v = .5*.1^2 + .125*.9^2; Lc_t = .5*.2^2 = .02
    assert float(out.commitment["audio"]) == pytest.approx(0.10625, abs=1e-15)
    assert float(out.commitment["video"]) == pytest.approx(0.10625, abs=1e-15)
    assert float(out.commitment["text"]) == pytest.approx(0.02, abs=1e-15)


def test_partner_share_hand_case():
    # partner_share=0.5 without text partner: a: .5*.1+.5*.9=.5; v: .5*.9+.5*.1=.5; t: .2
    # W: [0,1] -> [.25,.5] -> [.125,.5] -> [.1625,.25]; c as in the original: E = [.26, 1.0]
    q = UnifiedCodebook(
        n_codes=2, dim=1, decay=0.5, eps=0.0, reset_after=10**6, text_partner=False, partner_share=0.5
    ).double()
    _set_codebook(q, [[0.0], [1.0]])
    q(_t([[[0.1]]]), _t([[[0.9]]]), _t([[[0.2]]]))
    np.testing.assert_allclose(q.ema_weight.numpy().ravel(), [0.1625, 0.25], rtol=0, atol=1e-15)
    np.testing.assert_allclose(q.embedding.numpy().ravel(), [0.26, 1.0], rtol=0, atol=1e-14)
    # with text a partner the largest share is 1/3; the published 0.25 gives the original's masses
    with pytest.raises(ValueError, match=r"partner_share must lie in \[0, 0.3333\].*got 0.5"):
        UnifiedCodebook(n_codes=2, dim=1, partner_share=0.5)
    with pytest.raises(ValueError, match=r"partner_share must lie in \[0, 0.5\].*got -0.1"):
        UnifiedCodebook(n_codes=2, dim=1, text_partner=False, partner_share=-0.1)


def test_cross_commitment_weight_hand_case():
    # cross_commitment=2 (x beta = .5 per other modality): Lc_a = .5*.1^2 + .5*.9^2 + .5*.1^2 = .415
    q = UnifiedCodebook(n_codes=2, dim=1, decay=0.5, eps=0.0, reset_after=10**6, cross_commitment=2.0).double()
    _set_codebook(q, [[0.0], [1.0]])
    out = q(_t([[[0.1]]]), _t([[[0.9]]]), _t([[[0.2]]]))
    assert float(out.commitment["audio"]) == pytest.approx(0.415, abs=1e-15)


def test_laplace_renormalisation_hand():
    # one modality-step with eps>0 on M=2: c=[.5,0] -> s=.5, c=(c+eps)*s/(s+2 eps)
    eps = 0.1
    q = UnifiedCodebook(n_codes=2, dim=1, decay=0.5, eps=eps, reset_after=10**6).double()
    _set_codebook(q, [[0.0], [100.0]])
    z = _t([[[0.0]]])
    q(z, z, z)  # all three modalities pick code 0
    c = np.array([0.0, 0.0])
    for _ in range(3):
        c = 0.5 * c + 0.5 * np.array([1.0, 0.0])
        s = c.sum()
        c = (c + eps) * s / (s + 2 * eps)
    np.testing.assert_allclose(q.ema_count.numpy(), c, rtol=1e-15)
    assert c[1] > 0  # the unused code keeps an eps-level count


# ------------------------------------------------------------------------------------------------
# literal per-element NumPy reference of two training calls
# ------------------------------------------------------------------------------------------------
def _reference_step(E, W, c, za, zv, zt, decay, eps):
    """Most literal form of spec 2.3 steps 1, 3, 5 for one call (no reset)."""
    M, D = E.shape
    z = {"a": za.reshape(-1, D), "v": zv.reshape(-1, D), "t": zt.reshape(-1, D)}
    N = z["a"].shape[0]
    k = {}
    for m in "avt":
        k[m] = []
        for n in range(N):
            best, best_d = 0, None
            for j in range(M):
                d = sum((z[m][n, i] - E[j, i]) ** 2 for i in range(D))
                if best_d is None or d < best_d:
                    best, best_d = j, d
            k[m].append(best)
    partners = {"a": ("v", "t"), "v": ("a", "t"), "t": ("a", "v")}
    c, W = c.copy(), W.copy()
    for m in "avt":
        o1, o2 = partners[m]
        for j in range(M):
            c[j] = decay * c[j] + (1 - decay) * sum(1.0 for n in range(N) if k[m][n] == j)
        s = sum(c)
        for j in range(M):
            c[j] = (c[j] + eps) * s / (s + M * eps)
        for j in range(M):
            for i in range(D):
                mass = sum(0.5 * z[m][n, i] + 0.25 * z[o1][n, i] + 0.25 * z[o2][n, i] for n in range(N) if k[m][n] == j)
                W[j, i] = decay * W[j, i] + (1 - decay) * mass
    E_new = np.array([[W[j, i] / c[j] for i in range(D)] for j in range(M)])
    return E_new, W, c, k


def test_ema_matches_literal_reference_over_two_calls():
    rng = np.random.default_rng(0)
    M, D, B, T = 3, 2, 2, 2
    E0 = np.array([[-1.0, 0.0], [1.0, 0.5], [0.2, -1.2]])
    q = UnifiedCodebook(n_codes=M, dim=D, decay=0.5, eps=1e-5, reset_after=10**6).double()
    _set_codebook(q, E0)
    E, W, c = E0.copy(), E0.copy(), np.zeros(M)
    for _ in range(2):
        za, zv, zt = (rng.normal(size=(B, T, D)) for _ in range(3))
        out = q(_t(za), _t(zv), _t(zt))
        E_prev = E
        E, W, c, k = _reference_step(E, W, c, za, zv, zt, 0.5, 1e-5)
        for m, key in zip("avt", ("audio", "video", "text")):
            assert out.indices[key].reshape(-1).tolist() == k[m]
            # codes come from the codebook BEFORE this call's update
            np.testing.assert_allclose(
                out.quantized[key].detach().numpy().reshape(-1, D), E_prev[k[m]], rtol=0, atol=1e-15
            )
        np.testing.assert_allclose(q.ema_count.numpy(), c, rtol=1e-12)
        np.testing.assert_allclose(q.ema_weight.numpy(), W, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(q.embedding.numpy(), E, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# dead-code reset
# ------------------------------------------------------------------------------------------------
def _reset_setup(updates_ema: bool):
    torch.manual_seed(0)
    q = UnifiedCodebook(
        n_codes=4, dim=2, decay=0.99, reset_after=2, donor_window=1, reset_noise=1e-3, reset_updates_ema=updates_ema
    ).double()
    _set_codebook(q, [[0.0, 0.0], [1.0, 1.0], [50.0, 50.0], [-50.0, 50.0]])
    # warm statistics: each modality sends 3 vectors to codes 0 and 1 per call; codes 2, 3 at eps level
    q.ema_count.copy_(torch.tensor([3.0, 3.0, 1e-3, 1e-3]))
    q.ema_weight.copy_(q.embedding * q.ema_count[:, None])
    gen = torch.Generator().manual_seed(1)

    def batch():  # every vector near code 0 or code 1 -> codes 2, 3 never used
        base = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)[torch.arange(6) % 2]
        return (base + 0.01 * torch.randn(6, 2, generator=gen, dtype=torch.float64)).reshape(2, 3, 2)

    return q, batch


@pytest.mark.parametrize("updates_ema", [True, False])
def test_unused_code_is_reset_from_a_donor(updates_ema):
    q, batch = _reset_setup(updates_ema)
    expected_u = [[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 2, 2]]  # counters start at -1
    for u in expected_u:  # calls 1-3: nothing reset yet
        out = q(batch(), batch(), batch())
        assert q.unactivated_count.tolist() == u
        assert not out.reset.any()
    W_before = q.ema_weight.clone()
    out = q(batch(), batch(), batch())  # call 4: u = 3 > 2 -> codes 2 and 3 reset
    assert out.reset.tolist() == [False, False, True, True]
    assert q.unactivated_count.tolist() == [0, 0, 0, 0]
    donors = q.embedding[:2]  # post-EMA donors (codes 0, 1 are not changed by the reset)
    for j in (2, 3):
        gap = (q.embedding[j] - donors).abs().max(dim=1).values.min()
        assert gap <= 1e-3, "reset code is a donor plus U(-1e-3, 1e-3) noise"
    if updates_ema:  # W follows the reset so E = W / c holds for the reset rows
        torch.testing.assert_close(q.ema_weight[2:], q.embedding[2:] * q.ema_count[2:, None])
    else:  # original: only E is written
        torch.testing.assert_close(q.ema_weight[2:], 0.99**3 * W_before[2:])


@pytest.mark.parametrize("updates_ema", [True, False])
def test_reset_survives_next_ema_step_only_with_updates_ema(updates_ema):
    q, batch = _reset_setup(updates_ema)
    for _ in range(4):
        q(batch(), batch(), batch())
    E_reset = q.embedding[2].clone()  # a donor-like code near (0,0) or (1,1)
    exact = q.embedding[:2].clone()[torch.arange(6) % 2].reshape(2, 3, 2)  # exactly on codes 0, 1
    out = q(exact, exact, exact)  # codes 2, 3 lose every tie to their donors: not picked
    assert set(out.indices["audio"].unique().tolist()) == {0, 1}
    E_after = q.embedding[2]
    if updates_ema:
        # W decays by 0.99^3 and c stays near its eps-level fixed point: same direction, similar size
        cos = torch.nn.functional.cosine_similarity(E_after, E_reset, dim=0)
        assert float(cos) == pytest.approx(1.0, abs=1e-12)
        assert 0.5 < float(E_after.norm() / E_reset.norm()) < 2.0
    else:
        # overwritten by W/c of the never-used code: back near the old (50, 50) direction
        assert float((E_after - E_reset).norm()) > 10.0


def test_reset_without_donor_is_skipped():
    # donor window empty: codes due for a reset are left alone (the original raises) and keep ticking
    q = UnifiedCodebook(n_codes=3, dim=2, reset_after=0, donor_window=0).double()
    z = torch.zeros(1, 2, 2, dtype=torch.float64)
    k0 = int(nearest_codes(z, q.embedding)[0, 0])
    outs = [q(z, z, z) for _ in range(3)]
    assert not any(o.reset.any() for o in outs)
    expected = [2.0, 2.0, 2.0]
    expected[k0] = 0.0
    assert q.unactivated_count.tolist() == expected


# ------------------------------------------------------------------------------------------------
# eval purity, lookup, nearest
# ------------------------------------------------------------------------------------------------
def test_eval_forward_and_lookup_leave_every_buffer_identical():
    torch.manual_seed(0)
    q = UnifiedCodebook(n_codes=16, dim=8, levels=2, reset_after=0, donor_window=5).double()
    z = [torch.randn(3, 4, 8, dtype=torch.float64) for _ in range(3)]
    q.train()
    q(*z, level=1)  # some real state first
    snap = _snapshot(q)
    q.eval()
    for level in (0, 1):
        q(*z, level=level)
        q.lookup(z[0], level)
        q.nearest(z[1], level)
    _assert_unchanged(q, snap)
    q.train()
    qz, k = q.lookup(z[2], 1)  # lookup is pure in train mode too
    _assert_unchanged(q, snap)
    torch.testing.assert_close(qz, q.embedding[1][k], rtol=0, atol=1e-15)  # z + (q - z) rounding


def test_reset_in_eval_switch_ticks_counters_like_the_original():
    q = UnifiedCodebook(n_codes=5, dim=2, reset_in_eval=True).double().eval()
    snap = _snapshot(q)
    z = torch.zeros(1, 2, 2, dtype=torch.float64)
    q(z, z, z)
    assert q.unactivated_count.tolist() == [0.0] * 5  # -1 + 1 everywhere
    assert torch.equal(q.embedding, snap["embedding"]) and torch.equal(q.ema_count, snap["ema_count"])


def test_nearest_first_index_on_ties_and_expanded_distances():
    E = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    z = torch.tensor([[[1.0, 0.0], [0.5, 0.5], [0.0, 2.0]]], dtype=torch.float64)
    assert nearest_codes(z, E).tolist() == [[0, 0, 1]]  # (0.5,0.5) ties codes 0,1,2 -> 0
    d = squared_distances(z[0], E)
    np.testing.assert_allclose(d.numpy(), [[0, 2, 0], [0.5, 0.5, 0.5], [5, 1, 5]], atol=1e-15)


# ------------------------------------------------------------------------------------------------
# levels, dtypes, config, agreement, errors
# ------------------------------------------------------------------------------------------------
def test_two_level_buffers_and_independence():
    torch.manual_seed(0)
    q = UnifiedCodebook.from_config(ModelConfig.tiny("hdcid", n_codes=64, hdcid_cmcm=False))  # the original H-DCID
    M, D = 64, 64
    assert q.embedding.shape == (2, M, D) and q.ema_weight.shape == (2, M, D)
    assert q.ema_count.shape == (2, M) and q.unactivated_count.shape == (2, M)
    assert (q.embedding.abs() <= 1.0 / M).all() and torch.equal(q.embedding, q.ema_weight)
    assert (q.unactivated_count == -1).all() and (q.ema_count == 0).all()
    assert not torch.equal(q.embedding[0], q.embedding[1])
    assert not q.use_cmcm
    z = [torch.randn(2, 3, D) for _ in range(3)]
    snap = _snapshot(q)
    out = q(*z, level=1)
    assert float(out.cmcm) == 0.0
    for n in BUFFERS:
        assert torch.equal(getattr(q, n)[0], snap[n][0]), f"level 0 {n} touched by a level-1 call"
        assert not torch.equal(getattr(q, n)[1], snap[n][1]), f"level 1 {n} not updated"
    assert q.codebooks().shape == (2, M, D)


def test_kmeans_codes_finds_separated_clusters_and_is_seeded():
    g = torch.Generator().manual_seed(0)
    centres = 10.0 * torch.eye(4, dtype=torch.float64)  # (4, 4) far apart
    x = (centres.repeat_interleave(25, 0) + 0.1 * torch.randn(100, 4, generator=g, dtype=torch.float64)).float()
    C = kmeans_codes(x, 4, torch.Generator().manual_seed(3))
    assert C.shape == (4, 4) and C.dtype == torch.float32
    # every true centre has one found centre at its cluster's mean
    means = x.reshape(4, 25, 4).mean(1)
    d = torch.cdist(means, C)  # (4 true, 4 found)
    assert sorted(d.argmin(1).tolist()) == [0, 1, 2, 3] and float(d.min(1).values.max()) < 1e-5
    assert torch.equal(C, kmeans_codes(x, 4, torch.Generator().manual_seed(3)))  # the generator decides
    few = kmeans_codes(x[:2], 3, torch.Generator().manual_seed(0))  # fewer points than codes: no error
    assert few.shape == (3, 4) and torch.isfinite(few).all()


def test_data_init_sets_the_level_from_the_batch_then_runs_the_usual_step():
    """`init_pending` (TrainConfig.data_init): the level's pre-update codebook is the k-means of the
    batch's audio and video features, the other level is untouched, and it happens once."""
    torch.manual_seed(0)
    q = UnifiedCodebook(n_codes=3, dim=2, levels=2, decay=0.9).double()
    blobs = _t([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    z_a = (blobs[torch.tensor([0, 1, 2, 0])] + 0.01 * torch.randn(4, 2, dtype=torch.float64)).reshape(2, 2, 2)
    z_v = (blobs[torch.tensor([1, 2, 0, 1])] + 0.01 * torch.randn(4, 2, dtype=torch.float64)).reshape(2, 2, 2)
    z_t = torch.zeros(2, 2, 2, dtype=torch.float64)  # text takes no part in the centres
    want = kmeans_codes(torch.cat([z_a.reshape(-1, 2), z_v.reshape(-1, 2)]), 3, torch.Generator().manual_seed(7))
    level0 = q.embedding[0].clone()
    q.init_pending = {1: 7}
    out = q(z_a, z_v, z_t, level=1)
    assert q.init_pending == {}
    assert torch.equal(q.embedding[0], level0)
    for m, z in (("audio", z_a), ("video", z_v)):  # codes looked up in the initialised codebook
        assert torch.allclose(out.quantized[m].detach(), want[out.indices[m]], rtol=0, atol=1e-12)
        assert float((out.quantized[m] - z).abs().max()) < 0.1  # each position sits on its blob's centre
    assert sorted(set(out.indices["audio"].reshape(-1).tolist())) == [0, 1, 2]
    again = q(z_a, z_v, z_t, level=1)  # no second initialisation: the EMA moved the codes on
    assert not torch.allclose(again.quantized["audio"].detach(), want[again.indices["audio"]], rtol=0, atol=1e-6)


def test_from_config_reads_every_switch():
    cfg = ModelConfig.tiny("dcid", n_codes=64)
    a = UnifiedCodebook.from_config(cfg)
    assert a.embedding.shape == (64, 64)
    assert a.use_cmcm and a.reset_updates_ema and not a.reset_in_eval
    f = UnifiedCodebook.from_config(cfg.faithful())
    assert not f.reset_updates_ema and f.reset_in_eval
    assert f.text_partner and f.cross_commitment == 0.5  # the original's partners and weights
    assert f.partner_share == 0.25
    o = UnifiedCodebook.from_config(cfg.replace(text_partner=False, cross_commitment=1.5, ema_partner_share=0.4))
    assert not o.text_partner and o.cross_commitment == 1.5 and o.partner_share == 0.4
    h = UnifiedCodebook.from_config(cfg.replace(variant="hdcid"))
    assert h.embedding.shape == (2, 64, 64) and not h.use_cmcm
    with pytest.raises(TypeError):
        UnifiedCodebook(cfg)  # one form: sizes by keyword, or from_config
    assert UnifiedCodebook.from_config(ModelConfig.paper()).embedding.shape == (400, 256)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtypes_follow_input(dtype):
    torch.manual_seed(0)
    q = UnifiedCodebook(n_codes=8, dim=4).to(dtype)
    z = [torch.randn(2, 3, 4, dtype=dtype, requires_grad=True) for _ in range(3)]
    out = q(*z)
    assert out.quantized["audio"].dtype == dtype and out.cmcm.dtype == dtype
    assert q.embedding.dtype == dtype and q.ema_count.dtype == dtype
    assert torch.isfinite(q.embedding).all()
    (out.cmcm + sum(out.commitment.values())).backward()
    assert all(torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0 for x in z)


def test_float32_and_float64_give_the_same_numbers():
    torch.manual_seed(0)
    q64 = UnifiedCodebook(n_codes=8, dim=4).double()
    q32 = UnifiedCodebook(n_codes=8, dim=4)
    q32.load_state_dict({k: v.float() for k, v in q64.state_dict().items()})
    z = [torch.randn(2, 3, 4, dtype=torch.float64) for _ in range(3)]
    o64, o32 = q64(*z), q32(*[x.float() for x in z])
    for m in ("audio", "video", "text"):
        assert torch.equal(o64.indices[m], o32.indices[m])
        assert float(o64.commitment[m]) == pytest.approx(float(o32.commitment[m]), rel=1e-5)
    assert float(o64.cmcm) == pytest.approx(float(o32.cmcm), rel=1e-5)
    torch.testing.assert_close(q32.embedding.double(), q64.embedding, rtol=1e-4, atol=1e-5)


def test_mixed_dtype_module_float64_input_float32():
    q = UnifiedCodebook(n_codes=8, dim=4).double()
    z = torch.randn(2, 3, 4)
    out = q(z, z, z)
    assert out.quantized["text"].dtype == torch.float32 and q.embedding.dtype == torch.float64


def test_agreement_and_equal_num_hand_case():
    k_a = torch.tensor([[0, 1, 2], [3, 3, 1]])
    k_v = torch.tensor([[0, 1, 0], [3, 1, 1]])
    k_t = torch.tensor([[0, 0, 2], [3, 3, 3]])
    # positions agreeing: (0,0) and (1,0) -> 2/6; modes: sample 0: a 0 (3-way tie -> smallest),
    # v 0, t 0 -> equal; sample 1: a 3, v 1, t 3 -> not equal
    agreement, equal_num = code_agreement(k_a, k_v, k_t, n_codes=4)
    assert float(agreement) == pytest.approx(2 / 6, abs=1e-15)
    assert int(equal_num) == 1


def test_perplexity_hand_case():
    # usage p = (0.5, 0.5, 0, 0) -> perplexity 2 ; uniform over 4 -> 4
    assert float(usage_perplexity(torch.tensor([0, 1, 0, 1]), 4)) == pytest.approx(2.0, rel=1e-9)
    assert float(usage_perplexity(torch.tensor([[0, 1], [2, 3]]), 4)) == pytest.approx(4.0, rel=1e-9)


def test_forward_agreement_counts_positions():
    q = UnifiedCodebook(n_codes=3, dim=1).double().eval()
    _set_codebook(q, [[0.0], [1.0], [2.0]])
    za = _t([[[0.1], [1.1], [2.0]]])
    zv = _t([[[0.0], [1.9], [2.1]]])
    zt = _t([[[-0.2], [1.0], [1.8]]])
    out = q(za, zv, zt)  # codes a [0,1,2], v [0,2,2], t [0,1,2] -> agree at t=0 and t=2
    assert float(out.agreement) == pytest.approx(2 / 3)
    assert int(out.equal_num) == 0  # modes (smallest of ties): a 0, v 2, t 0 -> not all equal


def test_bad_inputs_raise_clear_errors():
    q = UnifiedCodebook(n_codes=4, dim=3)
    good = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match=r"\(B, T, 3\).*\(2, 5, 4\)"):
        q(torch.zeros(2, 5, 4), good, good)
    with pytest.raises(ValueError, match="equal shape.*z_t is \\(2, 4, 3\\)"):
        q(good, good, torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match=r"level must be an int in \[0, 0\].*got 1"):
        q(good, good, good, level=1)
    with pytest.raises(ValueError, match="levels must be 1"):
        UnifiedCodebook(n_codes=4, dim=3, levels=3)
    with pytest.raises(ValueError, match=r"z \(N, D\) and E \(M, D\)"):
        squared_distances(torch.zeros(2, 3), torch.zeros(4, 2))
