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
from hdcid.downstream.tuples import ClipTuples, SegmentTuples, TableMax, clip_tuples, unique_rows
from hdcid.utils import GLOBAL_STATE_LOCK, seed_everything

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
        with GLOBAL_STATE_LOCK:  # the seeded initialisation, whole, whatever other threads draw
            seed_everything(m.seed)
            head = VideoLevelHead(d, K1 - 1) if kind == "video" else SegmentHead(d, K1)
        out["W1"].append(F.pad(head.proj.weight.detach(), (0, d_max - d, 0, d_max - d)))
        out["b1"].append(_pad(head.proj.bias.detach(), d_max))
        out["W2"].append(_pad(head.out.weight.detach(), d_max))
        out["b2"].append(head.out.bias.detach())
        if kind == "segment":
            out["alpha"].append(SegmentLoss(K1).exp_log.alpha.detach())
    return {k: torch.stack(v) for k, v in out.items() if v}


def _project(p: dict, x, max_over_t: bool = False) -> torch.Tensor:
    """First layer ``x W1^T + b1`` of every member -> (M, B, T, d), or its max over T (M, B, d).

    x is either dense codes (M, B, T, d), or ``("table", table, rows)``: a table (M, U, d) of each
    member's distinct input vectors of every code level (zero outside the level's columns) and, per
    (clip, second), the row of each level (M, B, T, L); the input is the sum over levels of its rows,
    so the projection is ``sum_l (table W1^T)[rows_l]`` (U products instead of B*T, then a gather).
    The bias is added after the max (the same value: rounding is monotonic).
    """
    if isinstance(x, tuple) and x[0] == "tuples":  # video: each clip's distinct tuples (tuples.clip_tuples)
        _, table, tup, clips = x  # (M, U, d), (G, L), (M, B, E)
        M, U, d = table.shape
        # W1 untransposed (its gradient comes out contiguous; no copy in the backward)
        proj = torch.bmm(p["W1"], table.transpose(1, 2)).transpose(1, 2)  # (M, U, d)
        projT = proj.index_select(1, tup[:, 0])  # (M, G, d): each tuple's rows summed, level by level
        for lv in range(1, tup.shape[1]):
            projT = projT + proj.index_select(1, tup[:, lv])
        projT = projT.reshape(-1, d)  # (M*G, d)
        flat = (clips + tup.shape[0] * torch.arange(M, device=clips.device).reshape(M, 1, 1)).reshape(
            -1, clips.shape[2], 1
        )
        return TableMax.apply(projT, flat).reshape(M, clips.shape[1], d) + p["b1"][:, None, :]
    if isinstance(x, tuple):
        _, table, rows = x
        M, U, d = table.shape
        _, B, T, L = rows.shape
        proj = torch.bmm(table, p["W1"].transpose(1, 2)).reshape(M * U, d)  # (M*U, d)
        flat = (rows + U * torch.arange(M, device=rows.device).reshape(M, 1, 1, 1)).reshape(M * B, T, L)
        if max_over_t:
            return TableMax.apply(proj, flat).reshape(M, B, d) + p["b1"][:, None, :]
        h = F.embedding_bag(flat.reshape(-1, L), proj, mode="sum")  # (M*B*T, d)
        return h.reshape(M, B, T, d) + p["b1"][:, None, None, :]
    M, B, T, d = x.shape
    h = torch.baddbmm(p["b1"].unsqueeze(1), x.reshape(M, B * T, d), p["W1"].transpose(1, 2))  # (M, BT, d)
    h = h.reshape(M, B, T, d)
    return h.max(dim=2).values if max_over_t else h


def _forward(kind: str, p: dict, x) -> torch.Tensor:
    """x (M, B, T, d) or a table input (``_project``) -> logits (M, B, K) (video: max over T of the
    projection) or (M, B, T, K+1)."""
    if kind == "video":
        h = _project(p, x, max_over_t=True)  # (M, B, d)
        return torch.baddbmm(p["b2"].unsqueeze(-1), p["W2"], h.transpose(1, 2)).transpose(1, 2)  # (M, B, K) view
    if isinstance(x, tuple):  # two affine layers fold into one: x (W2 W1)^T + (W2 b1 + b2), on the table
        _, table, rows = x
        M, U, _ = table.shape
        _, B, T, L = rows.shape
        Wc = torch.bmm(p["W2"], p["W1"])  # (M, K+1, d)
        bc = torch.baddbmm(p["b2"].unsqueeze(-1), p["W2"], p["b1"].unsqueeze(-1)).squeeze(-1)  # (M, K+1)
        proj = torch.bmm(table, Wc.transpose(1, 2)).reshape(M * U, -1)  # (M*U, K+1)
        flat = (rows + U * torch.arange(M, device=rows.device).reshape(M, 1, 1, 1)).reshape(-1, L)
        z = sum(proj.index_select(0, flat[:, lv]) for lv in range(L)).reshape(M, B, T, -1)  # (M, B, T, K+1)
        return z + bc[:, None, None, :]
    h = _project(p, x)  # (M, B, T, d)
    M, B, T, d = h.shape
    z = torch.baddbmm(p["b2"].unsqueeze(1), h.reshape(M, B * T, d), p["W2"].transpose(1, 2))  # (M, BT, K+1)
    return z.reshape(M, B, T, -1)


def _loss(kind: str, p: dict, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-member mean loss (M,): CE (video, target (M, B)) or BCE + ExpLog (segment, (M, B, T, K+1)).

    ExpLog ``-mean_rows sum_c y_c w_c log_softmax(z)_c`` is computed as
    ``-mean_rows (sum_c y_c w_c z_c - (sum_c y_c w_c) logsumexp(z))`` on a class-major view, where
    the reductions over the K+1 classes are vectorised over rows (the same value as
    ``losses.ExpLogLoss`` up to float rounding).
    """
    M = logits.shape[0]
    if kind == "video":
        # classes on dim 1: torch's (N, C, d) path, ~4x faster than (M*B, K) rows of 10-20 classes, same values
        return F.cross_entropy(logits.transpose(1, 2), target, reduction="none").mean(1)
    K1 = logits.shape[-1]
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").reshape(M, -1).mean(1)
    zT = logits.reshape(-1, K1).t().reshape(K1, M, -1)  # (K+1, M, R) view, R = B*T rows per member
    yT = target.reshape(-1, K1).t().reshape(K1, M, -1)
    mx = zT.detach().amax(0)  # (M, R)
    lse = mx + (zT - mx).exp().sum(0).log()  # (M, R)
    yw = yT * torch.exp(-p["alpha"]).t()[:, :, None]  # (K+1, M, R) = y_c * exp(-alpha_c)
    exp_log = -((yw * zT).sum(0) - yw.sum(0) * lse).mean(1)  # (M,)
    return bce + exp_log


def _fused(device: torch.device) -> bool:
    """Adam's fused kernel where torch has one (CPU, CUDA): one pass over each stacked tensor
    instead of about ten, the same update up to float rounding (about 1 ulp)."""
    return device.type in ("cpu", "cuda")


class _StackedAdam:
    """Adam (betas 0.9 / 0.999, eps 1e-8, no weight decay) with a ``MultiStepLR`` schedule over the
    stacked parameters: ``step()`` after each batch, ``end_epoch()`` after each epoch.

    Where torch has a fused Adam kernel (``_fused``: CPU, CUDA) it is called directly: the update of
    ``torch.optim.Adam(fused=True)`` with ``MultiStepLR`` bit for bit (tested), without the
    optimizer's per-step bookkeeping (grouping by device and dtype, hooks, profiler records: about a
    tenth of a segment head's step). Elsewhere ``torch.optim.Adam`` and ``MultiStepLR`` themselves."""

    def __init__(self, params: list[torch.Tensor], lr: float, milestones, gamma: float):
        self.params, self.lr, self.milestones, self.gamma, self.epoch = params, lr, list(milestones), gamma, 0
        self.fused = _fused(params[0].device)
        if self.fused:
            self.exp_avg = [torch.zeros_like(q, memory_format=torch.preserve_format) for q in params]
            self.exp_avg_sq = [torch.zeros_like(q, memory_format=torch.preserve_format) for q in params]
            self.steps = [torch.zeros((), dtype=torch.float32, device=q.device) for q in params]
        else:
            self.opt = torch.optim.Adam(params, lr=lr)
            self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, self.milestones, gamma)

    @torch.no_grad()
    def step(self) -> None:
        if not self.fused:
            self.opt.step()
            return
        torch._foreach_add_(self.steps, 1)
        torch._fused_adam_(
            self.params,
            [q.grad for q in self.params],
            self.exp_avg,
            self.exp_avg_sq,
            [],
            self.steps,
            amsgrad=False,
            lr=self.lr,
            beta1=0.9,
            beta2=0.999,
            weight_decay=0.0,
            eps=1e-8,
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )

    def end_epoch(self) -> None:
        if not self.fused:
            self.sched.step()
            return
        self.epoch += 1  # MultiStepLR: lr * gamma ** (times this epoch is a milestone)
        if self.epoch in self.milestones:
            self.lr = self.lr * self.gamma ** self.milestones.count(self.epoch)


def _clip_(params: list[torch.Tensor], max_norm: float) -> None:
    """``clip_grad_norm_`` per member: stacked grads (M, ...) scaled by min(1, max/(norm_m + 1e-6))."""
    norms = torch.stack([torch.linalg.vector_norm(q.grad.reshape(q.shape[0], -1), dim=1) for q in params])
    total = torch.linalg.vector_norm(norms, dim=0)  # (M,)
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for q in params:
        q.grad.mul_(coef.reshape(-1, *([1] * (q.ndim - 1))))


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
        pb, yb = pred[:, s : s + batch_size], Y[s : s + batch_size]
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
    """A plain head module holding member m's (unpadded) parameters, in eval mode.

    Built on the meta device and then filled: a default initialisation would draw from torch's
    global generator, and heads fitted in other threads (``TaskOptions.workers``) seed and draw
    their initialisations from it."""
    with torch.device("meta"):
        head = VideoLevelHead(d, K1 - 1) if kind == "video" else SegmentHead(d, K1)
    head = head.to_empty(device=p["W1"].device)
    with torch.no_grad():
        head.proj.weight.copy_(p["W1"][m, :d, :d])
        head.proj.bias.copy_(p["b1"][m, :d])
        head.out.weight.copy_(p["W2"][m, :, :d])
        head.out.bias.copy_(p["b2"][m])
    return head.to(device).eval()


class _Inputs:
    """The members' input codes: the TOC-selected codes of each candidate, zero-padded to d_max.

    Built from codes (N, T, L, D) (a list: training draws) and per candidate the kept dims of each
    level (``idx`` lists, None = all dims, concatenated level 0 first as ``apply_toc``). Dense form:
    (C, N, T, d_max) tensors. Table form (when the codes take few distinct values per level, as
    quantized codes do): per level the distinct vectors laid out in each candidate's columns
    (C, U_l, d_max) and every (clip, second)'s row number (N, T), see ``_project``.
    """

    def __init__(
        self,
        sets: list[torch.Tensor],
        idx_lists: list,
        cand: torch.Tensor,
        d_max: int,
        table: bool | None,
        batch_rows: int,
        device,
        distinct: bool = False,
    ):
        L, D = sets[0].shape[2:]
        self.cand, self.d_max, self.distinct = cand, d_max, distinct
        sels = [
            [torch.arange(D) if idx is None else torch.as_tensor(idx[lv]).long() for lv in range(L)]
            for idx in idx_lists
        ]  # candidate -> level -> kept dims
        uniq = [unique_rows(torch.cat([q[:, :, lv].reshape(-1, D) for q in sets])) for lv in range(L)]
        self.table = (sum(u.shape[0] for u, _ in uniq) < batch_rows) if table is None else table
        if self.table:
            U = [u.shape[0] for u, _ in uniq]
            tab = torch.zeros(len(sels), sum(U), d_max)  # candidate -> every level's distinct rows
            for lv, (u, _) in enumerate(uniq):
                for c, sel in enumerate(sels):
                    off = sum(len(x) for x in sel[:lv])
                    tab[c, sum(U[:lv]) : sum(U[: lv + 1]), off : off + len(sel[lv])] = u[:, sel[lv]]
            self.tab = tab[cand.cpu()].to(device)  # (M, U, d_max)
            sizes = [q.shape[0] * q.shape[1] for q in sets]
            inv = torch.stack([inv + sum(U[:lv]) for lv, (_, inv) in enumerate(uniq)], -1)  # (rows, L)
            self.rows = [r.reshape(*q.shape[:2], L).to(device) for r, q in zip(inv.split(sizes), sets)]
            if distinct:  # video heads: each clip's distinct tuples (the same max over seconds)
                tup, clips = clip_tuples(self.rows)
                self.tuples, self.clips = tup.to(device), [c.to(device) for c in clips]
        else:
            self.x = [
                torch.stack([_pad(torch.cat([q[:, :, lv, sel[lv]] for lv in range(L)], -1), d_max) for sel in sels]).to(
                    device
                )
                for q in sets
            ]  # set -> (C, N, T, d_max)

    def batch(self, k: int, b: torch.Tensor):
        """Inputs of set k at rows b (M, B) (each member its own rows), for ``_forward``."""
        if self.table and self.distinct:
            return ("tuples", self.tab, self.tuples, self.clips[k][b])  # (M, B, E)
        if self.table:
            return ("table", self.tab, self.rows[k][b])  # (M, B, T, L)
        return self.x[k][self.cand[:, None], b]

    def chunk(self, k: int, s: int, e: int):
        """Inputs of set k, rows s:e for every member."""
        if self.table and self.distinct:
            return ("tuples", self.tab, self.tuples, self.clips[k][s:e].expand(len(self.cand), -1, -1))
        if self.table:
            return ("table", self.tab, self.rows[k][s:e].expand(len(self.cand), -1, -1, -1))
        return self.x[k][self.cand, s:e]


@torch.no_grad()
def _logits(kind: str, p: dict, inp: _Inputs, k: int, n: int, chunk: int = 1024) -> torch.Tensor:
    """Logits of every member on set k (n clips): (M, n, K) or (M, n, T, K+1)."""
    return torch.cat([_forward(kind, p, inp.chunk(k, s, min(s + chunk, n))) for s in range(0, n, chunk)], dim=1)


def fit_heads(
    kind: str,
    train_q: list[torch.Tensor],
    train_labels: torch.Tensor,
    select_q: torch.Tensor,
    select_labels: torch.Tensor,
    idx_lists: list,
    members: list[Member],
    *,
    cfg,
    select_split: str,
    select_metric: str,
    device: torch.device,
    table: bool | None = None,
):
    """Train ``len(members)`` heads as one batched model; each picks its epoch on the selection split.

    train_q: the training codes (N, T, L, D), one tensor per draw (epoch e uses draw e % n_draws, as
    ``fit_head``); train_labels (N, T, K+1). select_q (Nv, T, L, D) and select_labels (Nv, T, K+1): the
    selection split. idx_lists[c]: candidate c's kept dims per level (``TOCSettings.select``) or None
    (all dims). Member.cand indexes idx_lists. cfg: ``FitConfig``. table: None chooses the table form
    of the first layer when the codes take fewer distinct values than a batch has rows (see
    ``_project``); True / False force it.
    Returns one ``protocol.FitResult`` per member (history: ``train/loss`` and
    ``<select_split>/<metric>`` per epoch; head: the chosen epoch's head, eval mode).
    """
    from hdcid.downstream.protocol import FitResult  # local: protocol imports this module

    if kind not in ("video", "segment"):
        raise ValueError(f"fit_heads: kind must be 'video' or 'segment', got {kind!r}")
    if not members:
        raise ValueError("fit_heads: no members to train")
    L, D = train_q[0].shape[2:]
    widths = [L * D if idx is None else sum(len(i) for i in idx) for idx in idx_lists]
    d_max, K1, M = max(widths), train_labels.shape[-1], len(members)
    n_draws, N, T = len(train_q), train_q[0].shape[0], train_q[0].shape[1]
    cand = torch.tensor([m.cand for m in members], device=device)  # (M,)
    inp = _Inputs(
        [q.float() for q in train_q] + [select_q.float()],
        idx_lists,
        cand,
        d_max,
        table,
        cfg.batch_size * T,
        device,
        distinct=kind == "video",
    )
    if kind == "video":
        target = torch.as_tensor(video_targets(train_labels)).to(device)  # (N,)
    else:
        target = train_labels.to(device, torch.float32)  # (N, T, K+1)
    p = {k: v.to(device).requires_grad_(True) for k, v in _init_params(kind, members, widths, K1, d_max).items()}
    head_keys = ["W1", "b1", "W2", "b2"]
    params = [p[k] for k in head_keys] + ([p["alpha"]] if kind == "segment" else [])
    clip_params = params if (kind == "segment" and cfg.clip_alphas) else [p[k] for k in head_keys]
    opt = _StackedAdam(params, cfg.lr, cfg.milestones, cfg.gamma)
    seg = (
        SegmentTuples(inp.rows, train_labels, select_labels, cfg.batch_size, device)
        if kind == "segment" and inp.table
        else None
    )
    vid = ClipTuples(inp.tuples, inp.clips[:-1], target, device) if kind == "video" and inp.table else None
    gens = [torch.Generator().manual_seed(m.seed) for m in members]
    member_widths = tuple(widths[m.cand] for m in members)
    best_val = torch.full((M,), -np.inf, dtype=torch.float64)
    best_epoch = torch.zeros(M, dtype=torch.int64)
    best = {k: p[k].detach().clone() for k in head_keys}
    rows = []
    for epoch in range(cfg.epochs):
        k = epoch % n_draws
        perm = torch.stack([torch.randperm(N, generator=g) for g in gens]).to(device)  # (M, N)
        total = torch.zeros(M, device=device)
        for s in range(0, N, cfg.batch_size):
            b = perm[:, s : s + cfg.batch_size]  # (M, B)
            if seg is not None:  # per-tuple counts and written-out gradients (hdcid.downstream.tuples)
                loss, grads = seg.loss_and_grads(p, inp.tab, k, b, member_widths)  # (M,), name -> (M, ...)
                for name, q in zip(head_keys + ["alpha"], params):
                    q.grad = grads[name]
            elif vid is not None:  # each clip's distinct tuples and written-out gradients
                loss, grads = vid.loss_and_grads(p, inp.tab, k, b, member_widths)
                for name in head_keys:
                    p[name].grad = grads[name]
            else:
                loss = _loss(kind, p, _forward(kind, p, inp.batch(k, b)), target[b])  # (M,)
                for q in params:
                    q.grad = None
                loss.sum().backward()  # members share no parameter: each gets its own gradient
            with torch.no_grad():
                _clip_(clip_params, cfg.clip)
            opt.step()
            total += loss.detach() * b.shape[1]
        opt.end_epoch()
        if seg is not None:
            m_sel = seg.headline(p, inp.tab)
        else:
            m_sel = _headline(kind, _logits(kind, p, inp, n_draws, select_q.shape[0]), select_labels, cfg.batch_size)
        rows.append(
            {
                "epoch": epoch + 1,
                "train/loss": (total.double().cpu() / N).numpy(),
                **{f"{select_split}/{k}": v.numpy() for k, v in m_sel.items()},
            }
        )
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
