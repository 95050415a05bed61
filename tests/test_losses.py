"""CMCM, Cross-CPC and CLUB against literal (loop) implementations written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hdcid.model.club import CLUBSample
from hdcid.model.cpc import CrossCPC, cpc_accuracy, cpc_term
from hdcid.model.quantizer import cmcm_loss


# ------------------------------------------------------------------------------------------------
# CMCM
# ------------------------------------------------------------------------------------------------
def _cmcm_literal(za, zv, zt, E):
    """The original's way: per-element distances, softmax of -sqrt, loop over i, min shift, +1e-5."""
    B, T, D = za.shape
    M = E.shape[0]

    def P(z):
        out = np.zeros((B, M))
        for b in range(B):
            for t in range(T):
                d = np.array([sum((z[b, t, i] - E[k, i]) ** 2 for i in range(D)) for k in range(M)])
                e = np.exp(-np.sqrt(d))
                out[b] += e / e.sum() / T
        return out

    def pair(Px, Py):
        S = np.zeros((B, B))
        for i in range(B):
            for j in range(B):
                S[i, j] = sum(
                    Px[i, k] * math.log(Py[j, k] + 1e-10) + Py[i, k] * math.log(Px[j, k] + 1e-10) for k in range(M)
                )
        ES = np.exp(S + np.max(-S))  # original: exp(S + max(-S)) = exp(S - min S)
        L = 0.0
        for i in range(B):
            L -= math.log(ES[i, i] / (ES[i].sum() + 1e-5))
        return L / B

    Pa, Pv, Pt = P(za), P(zv), P(zt)
    return 0.5 * (pair(Pa, Pv) + pair(Pa, Pt) + pair(Pt, Pv))


def test_cmcm_equals_literal_loop():
    rng = np.random.default_rng(0)
    za, zv, zt = (rng.normal(size=(3, 2, 4)) for _ in range(3))
    E = rng.normal(size=(5, 4))
    got = cmcm_loss(*(torch.tensor(x) for x in (za, zv, zt)), torch.tensor(E))
    assert float(got) == pytest.approx(_cmcm_literal(za, zv, zt, E), rel=1e-12)


def test_cmcm_identical_batch_is_log_b_like_and_grad_flows_to_z_not_E():
    torch.manual_seed(0)
    B = 4
    # all inputs identical across the batch: S constant -> each pair is log(B + 1e-5) (shift = 0)
    z = torch.randn(1, 3, 6, dtype=torch.float64).expand(B, 3, 6)
    E = torch.randn(7, 6, dtype=torch.float64)
    L = cmcm_loss(z, z, z, E)
    assert float(L) == pytest.approx(1.5 * math.log(B + 1e-5), rel=1e-12)
    za = torch.randn(B, 3, 6, dtype=torch.float64, requires_grad=True)
    Eg = E.clone().requires_grad_(True)
    cmcm_loss(za, za.detach() + 0.1, za.detach() - 0.1, Eg).backward()
    assert za.grad is not None and float(za.grad.abs().sum()) > 0
    assert Eg.grad is None  # the codebook is a constant for CMCM


def test_cmcm_no_nan_when_input_equals_a_code():
    E = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float32)
    z = E[torch.tensor([[0, 1], [1, 0]])]  # (2, 2, 2): distances round to <= 0
    assert torch.isfinite(cmcm_loss(z, z, z, E))


# ------------------------------------------------------------------------------------------------
# CPC
# ------------------------------------------------------------------------------------------------
def _lstm_literal(lstm: torch.nn.LSTM, x: np.ndarray) -> np.ndarray:
    """Gate equations of a unidirectional multi-layer LSTM with zero initial states: (B,T,I) -> (B,T,H)."""

    def sig(a):
        return 1.0 / (1.0 + np.exp(-a))

    H = lstm.hidden_size
    out = x
    for layer in range(lstm.num_layers):
        Wi = getattr(lstm, f"weight_ih_l{layer}").detach().numpy()
        Wh = getattr(lstm, f"weight_hh_l{layer}").detach().numpy()
        b = (getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")).detach().numpy()
        B, T, _ = out.shape
        h, c = np.zeros((B, H)), np.zeros((B, H))
        seq = np.zeros((B, T, H))
        for t in range(T):
            g = out[:, t] @ Wi.T + h @ Wh.T + b
            i, f, gg, o = sig(g[:, :H]), sig(g[:, H : 2 * H]), np.tanh(g[:, 2 * H : 3 * H]), sig(g[:, 3 * H :])
            c = f * c + i * gg
            h = o * np.tanh(c)
            seq[:, t] = h
        out = seq
    return out


def _term_literal(Y, P):
    B = Y.shape[0]
    total = 0.0
    for i in range(B):
        logits = [sum(Y[i, d] * P[j, d] for d in range(Y.shape[1])) for j in range(B)]
        total += logits[i] - math.log(sum(math.exp(v) for v in logits))
    return -total / B


@pytest.mark.parametrize("t_star", [1, 3])
def test_cpc_equals_literal_computation(t_star):
    torch.manual_seed(0)
    B, T, D = 3, 5, 4
    cpc = CrossCPC(D, hidden=5, layers=2, max_offset=3).double()
    z = {m: torch.randn(B, T, D, dtype=torch.float64) for m in "avt"}
    out = cpc(z["a"], z["v"], z["t"], t_star=t_star)
    names = {"a": "audio", "v": "video", "t": "text"}
    P, Y = {}, {}
    for m in "avt":
        ctx = _lstm_literal(cpc.lstm[names[m]], z[m].numpy()[:, : t_star + 1])[:, t_star]  # (B, H)
        lin = cpc.predictor[names[m]]
        P[m] = ctx @ lin.weight.detach().numpy().T + lin.bias.detach().numpy()
        Y[m] = z[m].numpy()[:, t_star + 1]
    cross = [("a", "v"), ("a", "t"), ("v", "t"), ("v", "a"), ("t", "a"), ("t", "v")]
    expected = sum(_term_literal(Y[x], P[y]) for x, y in cross)
    expected += 0.1 * sum(_term_literal(Y[m], P[m]) for m in "avt")
    assert out.loss.item() == pytest.approx(expected, rel=1e-10)
    assert out.terms["v<-t"].item() == pytest.approx(_term_literal(Y["v"], P["t"]), rel=1e-10)
    assert out.t_star == t_star and len(out.accuracies) == 9


def test_cpc_term_and_accuracy_hand_case():
    # Y = I, P = I (B=2): logits I -> term = -log(e / (e + 1)); argmax over rows per column = column
    eye = torch.eye(2, dtype=torch.float64)
    assert float(cpc_term(eye, eye)) == pytest.approx(-math.log(math.e / (math.e + 1)), rel=1e-14)
    assert cpc_accuracy(eye, eye) == 1.0
    assert cpc_accuracy(eye, eye.flip(0)) == 0.0


def test_cpc_draws_t_star_from_global_rng_and_validates():
    cpc = CrossCPC(4, hidden=3, layers=2, max_offset=8)
    z = torch.randn(2, 10, 4)
    for seed in (0, 1, 2):  # t* = 1 + randint(max_offset) from the global torch RNG
        torch.manual_seed(seed)
        expected = 1 + int(torch.randint(8, (1,)))
        torch.manual_seed(seed)
        assert cpc(z, z, z).t_star == expected and 1 <= expected <= 8
    with pytest.raises(ValueError, match=r"t_star must be in \[0, T-2\] = \[0, 8\] for T=10, got 9"):
        cpc(z, z, z, t_star=9)
    with pytest.raises(ValueError, match=r"\(B, T, 4\)"):
        cpc(z, z, torch.randn(2, 9, 4), t_star=1)


def test_cpc_gradient_reaches_inputs():
    torch.manual_seed(0)
    cpc = CrossCPC(4, hidden=3).double()
    z = [torch.randn(3, 10, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    cpc(*z, t_star=2).loss.backward()
    for x in z:
        assert float(x.grad[:, :4].abs().sum()) > 0  # context steps 0..2 and target step 3
        assert float(x.grad[:, 4:].abs().sum()) == 0.0  # never seen


# ------------------------------------------------------------------------------------------------
# CLUB
# ------------------------------------------------------------------------------------------------
def _club_setup():
    torch.manual_seed(0)
    club = CLUBSample(3, 2, hidden=4).double()
    x = torch.randn(3, 4, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    mu, logvar = (a.detach().numpy() for a in club.mu_logvar(x))
    return club, x, y, mu, logvar


def test_club_architecture():
    club = CLUBSample(256, 512, 128)
    assert [tuple(m.weight.shape) for m in club.p_mu if hasattr(m, "weight")] == [
        (128, 256),
        (128, 128),
        (128, 128),
        (512, 128),
    ]
    assert isinstance(club.p_logvar[-1], torch.nn.Tanh)
    _, x, _, _, logvar = _club_setup()
    assert np.all(np.abs(logvar) < 1)


def test_club_loglik_loss_equals_formula():
    club, x, y, mu, logvar = _club_setup()
    yn = y.detach().numpy()
    B, T, Dy = yn.shape
    total = 0.0
    for b in range(B):
        for t in range(T):
            for d in range(Dy):
                total += (-((mu[b, t, d] - yn[b, t, d]) ** 2) / math.exp(logvar[b, t, d]) - logvar[b, t, d]) / 2
    assert club.loglik_loss(x, y).item() == pytest.approx(-total / (B * T), rel=1e-12)


def test_club_mi_est_equals_formula_for_fixed_perm_and_grads_flow():
    club, x, y, mu, logvar = _club_setup()
    yn = y.detach().numpy()
    B, T, Dy = yn.shape
    perm = torch.tensor([2, 0, 0])  # any index map (fixed points / repeats allowed)
    total = 0.0
    for b in range(B):
        for d in range(Dy):
            var = math.exp(sum(logvar[b, t, d] for t in range(T)) / T)
            pos = -sum((mu[b, t, d] - yn[b, t, d]) ** 2 for t in range(T)) / T / var
            neg = -sum((mu[b, t, d] - yn[int(perm[b]), t, d]) ** 2 for t in range(T)) / T / var
            total += (pos - neg) / 2
    mi = club.mi_est(x, y, perm=perm)
    assert mi.item() == pytest.approx(total / B, rel=1e-12)
    mi.backward()
    assert float(x.grad.abs().sum()) > 0 and float(y.grad.abs().sum()) > 0
    # identity permutation -> the bound is exactly 0
    assert club.mi_est(x, y, perm=torch.arange(B)).item() == 0.0


def test_club_random_perm_from_global_rng_and_errors():
    club, x, y, _, _ = _club_setup()
    torch.manual_seed(3)
    a = club.mi_est(x, y).item()
    torch.manual_seed(3)
    assert club.mi_est(x, y, perm=torch.randperm(3)).item() == a
    with pytest.raises(ValueError, match=r"x \(B, T, 3\) and y \(B, T, 2\).*y \(3, 4, 5\)"):
        club.loglik_loss(x, torch.zeros(3, 4, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"perm must have shape \(3,\)"):
        club.mi_est(x, y, perm=torch.arange(2))
