"""Many downstream heads trained at once: one batched model for every (TOC candidate, seed) member.

``fit_heads`` trains M heads that share the schedule and the training clips but differ in their
input codes (a TOC candidate each) and seed, as ONE model with stacked parameters
(``W1 (M, d, d)``, ``W2 (M, K, d)``, ...) and batched matrix products, so a task's grid is a few
hundred batched steps instead of thousands of tiny ones. It reproduces ``protocol.fit_head`` member
by member (the sequential reference, kept and tested against this): each member's head is created
after ``seed_everything(seed)`` exactly as there, draws its own batch order from its own generator,
has its own gradient-norm clip and its own epoch selection; Adam and the learning-rate schedule are
element-wise, so one optimizer over the stacked tensors equals M optimizers.

Candidates of different widths share one batch by zero padding: a head of width d padded to
``d_max`` has zero weights on the padded inputs and hidden units, whose gradients are exactly zero,
so they stay zero (Adam moves nothing without a gradient) and change no norm, logit or loss.

Only the selection split is evaluated every epoch (the history holds ``train/loss`` and the
selection split's headline metrics); the reported splits are evaluated once, at the chosen epoch,
by the caller.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from hdcid.downstream.heads import SegmentHead, VideoLevelHead
from hdcid.downstream.losses import SegmentLoss
from hdcid.downstream.metrics import video_targets
from hdcid.utils import seed_everything

__all__ = ["Member", "fit_heads"]


@dataclass(frozen=True)
class Member:
    """One head of a batched fit: ``cand`` indexes the candidate inputs, ``seed`` its run seed."""

    cand: int
    seed: int


def _pad(x: torch.Tensor, d: int) -> torch.Tensor:
    """Zero-pad the last dim of x to d."""
    return x if x.shape[-1] == d else F.pad(x, (0, d - x.shape[-1]))


def _init_params(kind: str, members, widths, K1: int, d_max: int) -> dict[str, torch.Tensor]:
    """Stacked initial parameters, each member's exactly as ``fit_head`` creates them (seeded).

    Returns W1 (M, d, d), b1 (M, d), W2 (M, K, d), b2 (M, K) [+ alpha (M, K+1) for segment heads],
    zero-padded to d = d_max.
    """
    out = {"W1": [], "b1": [], "W2": [], "b2": [], "alpha": []}
    for m in members:
        d = widths[m.cand]
        seed_everything(m.seed)
        head = VideoLevelHead(d, K1 - 1) if kind == "video" else SegmentHead(d, K1)
        out["W1"].append(F.pad(head.proj.weight.detach(), (0, d_max - d, 0, d_max - d)))
        out["b1"].append(_pad(head.proj.bias.detach(), d_max))
        out["W2"].append(_pad(head.out.weight.detach(), d_max))
        out["b2"].append(head.out.bias.detach())
        if kind == "segment":
            out["alpha"].append(SegmentLoss(K1).exp_log.alpha.detach())
    return {k: torch.stack(v) for k, v in out.items() if v}


def _forward(kind: str, p: dict, x: torch.Tensor) -> torch.Tensor:
    """x (M, B, T, d) -> logits (M, B, K) (video: max over T of the projection) or (M, B, T, K+1)."""
    M, B, T, d = x.shape
    h = torch.baddbmm(p["b1"].unsqueeze(1), x.reshape(M, B * T, d), p["W1"].transpose(1, 2))  # (M, BT, d)
    if kind == "video":
        h = h.reshape(M, B, T, d).max(dim=2).values  # (M, B, d)
        return torch.baddbmm(p["b2"].unsqueeze(1), h, p["W2"].transpose(1, 2))  # (M, B, K)
    z = torch.baddbmm(p["b2"].unsqueeze(1), h, p["W2"].transpose(1, 2))  # (M, BT, K+1)
    return z.reshape(M, B, T, -1)


def _loss(kind: str, p: dict, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-member mean loss (M,): CE (video, target (M, B)) or BCE + ExpLog (segment, (M, B, T, K+1))."""
    M = logits.shape[0]
    if kind == "video":
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
        return ce.reshape(M, -1).mean(1)
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").reshape(M, -1).mean(1)
    logp = F.log_softmax(logits, dim=-1)  # (M, B, T, K+1)
    w = torch.exp(-p["alpha"])[:, None, None, :]  # (M, 1, 1, K+1)
    exp_log = -(target * logp * w).sum(-1).reshape(M, -1).mean(1)
    return bce + exp_log


def _clip_(params: list[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` per member: stacked grads (M, ...) scaled by min(1, max/(norm_m + 1e-6))."""
    norms = torch.stack([torch.linalg.vector_norm(q.grad.reshape(q.shape[0], -1), dim=1) for q in params])
    total = torch.linalg.vector_norm(norms, dim=0)  # (M,)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for q in params:
        q.grad.mul_(coef.reshape(-1, *([1] * (q.ndim - 1))))


@torch.no_grad()
def _logits(kind: str, p: dict, x: torch.Tensor, cand: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
    """Logits of every member on its candidate's codes x (C, N, T, d): (M, N, K) or (M, N, T, K+1)."""
    return torch.cat([_forward(kind, p, x[cand, s:s + chunk]) for s in range(0, x.shape[1], chunk)], dim=1)


def _headline(kind: str, logits: torch.Tensor, labels: torch.Tensor, batch_size: int) -> dict:
    """Per-member headline metrics, computed as ``protocol._headline`` does (float64): top-1 % or the
    reference AVVP P/R/F1 % (batch-averaged, background included). Returns name -> (M,) float64."""
    if kind == "video":
        y = torch.as_tensor(video_targets(labels))  # (N,)
        hits = (logits.argmax(-1).cpu() == y).sum(1).double()  # (M,)
        return {"top1": 100.0 * (hits / y.shape[0])}
    pred = (logits > 0.0).cpu()  # (M, N, T, K+1)
    Y = labels.cpu().bool()  # (N, T, K+1)
    M, N, T = pred.shape[:3]
    P = torch.zeros(M, dtype=torch.float64)
    R = torch.zeros(M, dtype=torch.float64)
    W = 0.0
    for s in range(0, N, batch_size):
        pb, yb = pred[:, s:s + batch_size], Y[s:s + batch_size]
        n_pred = pb.sum((1, 2, 3)).double()  # (M,)
        tp = (pb & yb).sum((1, 2, 3)).double()
        p = torch.where(n_pred > 0, tp / n_pred.clamp(min=1), 0.0)
        r = torch.where(n_pred > 0, tp / max(int(yb.sum()), 1), 0.0)
        w = T * min(batch_size, N - s)
        P, R, W = P + w * p, R + w * r, W + w
    P, R = P / W, R / W
    F1 = torch.where(P + R > 0, 2 * P * R / (P + R).clamp(min=1e-300), 0.0)
    return {"ref_precision": 100 * P, "ref_recall": 100 * R, "ref_f1": 100 * F1}


def _member_head(kind: str, p: dict, m: int, d: int, K1: int, device) -> torch.nn.Module:
    """A plain head module holding member m's (unpadded) parameters, in eval mode."""
    head = VideoLevelHead(d, K1 - 1) if kind == "video" else SegmentHead(d, K1)
    with torch.no_grad():
        head.proj.weight.copy_(p["W1"][m, :d, :d])
        head.proj.bias.copy_(p["b1"][m, :d])
        head.out.weight.copy_(p["W2"][m, :, :d])
        head.out.bias.copy_(p["b2"][m])
    return head.to(device).eval()


def fit_heads(kind: str, train_x: list[list[torch.Tensor]], train_labels: torch.Tensor,
              select_x: list[torch.Tensor], select_labels: torch.Tensor, members: list[Member], *,
              cfg, select_split: str, select_metric: str, device: torch.device):
    """Train ``len(members)`` heads as one batched model; each picks its epoch on the selection split.

    train_x[c]: the training codes of candidate c, one (N, T, d_c) tensor per draw (epoch e uses draw
    e % n_draws, as ``fit_head``). train_labels (N, T, K+1). select_x[c]: (Nv, T, d_c) codes of the
    selection split; select_labels (Nv, T, K+1). cfg: ``FitConfig``.
    Returns one ``protocol.FitResult`` per member (history: ``train/loss`` and
    ``<select_split>/<metric>`` per epoch; head: the chosen epoch's head, eval mode).
    """
    from hdcid.downstream.protocol import FitResult  # local: protocol imports this module

    if kind not in ("video", "segment"):
        raise ValueError(f"fit_heads: kind must be 'video' or 'segment', got {kind!r}")
    if not members:
        raise ValueError("fit_heads: no members to train")
    widths = [xs[0].shape[-1] for xs in train_x]
    d_max, K1, M = max(widths), train_labels.shape[-1], len(members)
    n_draws = len(train_x[0])
    # (C, N, T, d_max) per draw, zero-padded
    X = [torch.stack([_pad(train_x[c][k], d_max) for c in range(len(train_x))]).to(device, torch.float32)
         for k in range(n_draws)]
    Xs = torch.stack([_pad(x, d_max) for x in select_x]).to(device, torch.float32)  # (C, Nv, T, d_max)
    cand = torch.tensor([m.cand for m in members], device=device)  # (M,)
    if kind == "video":
        target = torch.as_tensor(video_targets(train_labels)).to(device)  # (N,)
    else:
        target = train_labels.to(device, torch.float32)  # (N, T, K+1)
    p = {k: v.to(device).requires_grad_(True) for k, v in _init_params(kind, members, widths, K1, d_max).items()}
    head_keys = ["W1", "b1", "W2", "b2"]
    params = [p[k] for k in head_keys] + ([p["alpha"]] if kind == "segment" else [])
    clip_params = params if (kind == "segment" and cfg.clip_alphas) else [p[k] for k in head_keys]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), cfg.gamma)
    gens = [torch.Generator().manual_seed(m.seed) for m in members]
    N = X[0].shape[1]
    best_val = torch.full((M,), -np.inf, dtype=torch.float64)
    best_epoch = torch.zeros(M, dtype=torch.int64)
    best = {k: p[k].detach().clone() for k in head_keys}
    rows = []
    for epoch in range(cfg.epochs):
        x = X[epoch % n_draws]
        perm = torch.stack([torch.randperm(N, generator=g) for g in gens]).to(device)  # (M, N)
        total = torch.zeros(M, device=device)
        for s in range(0, N, cfg.batch_size):
            b = perm[:, s:s + cfg.batch_size]  # (M, B)
            logits = _forward(kind, p, x[cand[:, None], b])
            loss = _loss(kind, p, logits, target[b])  # (M,)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()  # members share no parameter: each gets its own gradient
            with torch.no_grad():
                _clip_(clip_params, cfg.clip)
            opt.step()
            total += loss.detach() * b.shape[1]
        sched.step()
        m_sel = _headline(kind, _logits(kind, p, Xs, cand), select_labels, cfg.batch_size)
        rows.append({"epoch": epoch + 1, "train/loss": (total.double().cpu() / N).numpy(),
                     **{f"{select_split}/{k}": v.numpy() for k, v in m_sel.items()}})
        better = m_sel[select_metric] > best_val  # first maximum wins, as in fit_head
        if bool(better.any()):
            best_val = torch.where(better, m_sel[select_metric], best_val)
            best_epoch[better] = epoch + 1
            mask = better.to(device)
            with torch.no_grad():
                for k in head_keys:
                    best[k] = torch.where(mask.reshape(-1, *([1] * (best[k].ndim - 1))), p[k].detach(), best[k])
    sel = f"{select_split}/{select_metric}"
    results = []
    for i, m in enumerate(members):
        hist = pd.DataFrame([{k: (v if k == "epoch" else float(v[i])) for k, v in r.items()} for r in rows])
        head = _member_head(kind, best, i, widths[m.cand], K1, device)
        results.append(FitResult(hist.set_index("epoch"), int(best_epoch[i]), head, sel, float(best_val[i])))
    return results
