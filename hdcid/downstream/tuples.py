"""Code tuples: a second's codebook rows, one per level; batched heads work on the few distinct ones.

``SegmentTuples``: batched segment heads' loss, gradients and selection metrics from per-tuple
counts; ``clip_tuples``, ``TableMax`` and ``ClipTuples``: the video heads' max over each clip's
distinct tuples (``ClipTuples``: their training step, gradients written out); ``unique_rows``: a
fast ``torch.unique(dim=0)``.

A segment head is affine, so its logits at a (clip, second) depend only on that second's input,
and quantized codes take few distinct inputs: a second's input is the tuple of its codebook rows,
one per level (at most ``n_codes ** L`` tuples, e.g. 11 for DCID and 121 for H-DCID on the demo).
The training loss of ``hdcid.downstream.batched`` (``BCEWithLogits + ExpLog``) is linear in the
labels, so for member m and a batch of B clips x T seconds

    BCE_m    = sum_{g,c} (n_mg softplus(z_mgc) - S_mgc z_mgc) / (B T (K+1))
    ExpLog_m = -sum_g (sum_c w_mc S_mgc z_mgc - (sum_c w_mc S_mgc) logsumexp_c z_mgc) / (B T)

with z_mg the logits of tuple g, n_mg how many of the batch's seconds have tuple g, S_mgc how many of
them are labelled c and w_mc = exp(-alpha_mc). The counts come from one ``bincount`` of the batch's
(tuple, label row) pair ids, so a step works on (M, G, K+1) instead of (M, B, T, K+1): the same
loss up to float32 rounding (the sums are re-associated). The selection split's reference P/R/F1
(``protocol._headline``) counts predictions per evaluation batch, which are the same products of
per-tuple predictions and fixed per-batch counts (exact: integer counts in float64). Training takes
the loss's gradients in closed form (``SegmentTuples.loss_and_grads``), not through autograd: a step
is a few dozen small operators, and the engine's bookkeeping cost more than the arithmetic. The
step keeps the logits class-major, (M, K+1, G): the sums over the classes (softmax, logsumexp)
then run across rows, several times faster than over a last dim of 11 on the CPU.

Shapes: M members, G tuples, L levels, U table rows, K1 = K+1 classes (background last).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["SegmentTuples", "ClipTuples", "TableMax", "unique_rows", "clip_tuples"]


class _KeptBlocks:
    """What a written-out training step keeps from step to step of one fit: the runs of members of
    one input width (``_width_spans``), zero buffers the d x d products write into (zero outside
    each run's leading block), per-run views of those buffers and of the operands (W1, W2 and the
    table are the same tensors at every step: Adam updates them in place), and each member's
    offset into flat ids."""

    def __init__(self):
        self._spans: dict = {}
        self._bufs: dict = {}
        self._views: dict = {}
        self._offsets: dict = {}

    def _blocks(self, widths, M: int, d: int, rows: int, operands: dict, buffers: dict, square=("W1", "dW1")):
        """(buffers, per-run views) for the members' ``widths`` (None: one run at width d).
        operands: name -> (M, ., d) tensor; buffers: name -> the tensor whose shape a kept zero
        buffer takes. Each run's view of a tensor is [s:e, :w, :w] for the names in ``square``
        ((M, d, d) weights and their gradients), else [s:e, :, :w]. ``rows``: the rows of the
        products, which the cost estimate of splitting weighs."""
        like = next(iter(buffers.values()))
        plan = (None if widths is None else tuple(widths), M, d, rows, like.device, like.dtype, tuple(buffers))
        if plan not in self._spans:  # the same every step of a fit: worked out once
            self._spans[plan] = _width_spans(widths, M, d, rows, like.device)
            self._bufs[plan] = {n: t.new_zeros(t.shape) for n, t in buffers.items()}
        out = self._bufs[plan]
        key = (plan, *(t.data_ptr() for t in operands.values()))  # a view keeps its storage alive
        if key not in self._views:
            self._views[key] = [
                {n: t[s:e, :w, :w] if n in square else t[s:e, :, :w] for n, t in (*operands.items(), *out.items())}
                for s, e, w in self._spans[plan]
            ]
        return out, self._views[key]

    def _member_offsets(self, M: int, stride: int, device) -> torch.Tensor:
        """(M, 1): member m's first flat id, m * stride."""
        key = (M, stride, device)
        if key not in self._offsets:
            self._offsets[key] = torch.arange(M, device=device).unsqueeze(1) * stride
        return self._offsets[key]


class SegmentTuples(_KeptBlocks):
    """The tuples of every set's seconds, the training pairs and the selection split's batch counts.

    rows: per set (training draws first, the selection split last) the table row of each level,
    (N, T, L) int64 (``batched._Inputs.rows``); train_labels (N, T, K1) and select_labels
    (Nv, T, K1) in {0, 1}; batch_size: the evaluation batch of the reference metrics.
    """

    def __init__(self, rows: list, train_labels: torch.Tensor, select_labels: torch.Tensor, batch_size: int, device):
        super().__init__()
        L = rows[0].shape[-1]
        flat = torch.cat([r.reshape(-1, L).cpu() for r in rows])
        tuples, inv = unique_rows(flat)  # (G, L), (rows,)
        self.levels = [tuples[:, lv].contiguous().to(device) for lv in range(L)]  # per level the tuples' table rows
        self.G = G = tuples.shape[0]
        gids = [g.reshape(r.shape[:2]) for g, r in zip(inv.split([r.shape[0] * r.shape[1] for r in rows]), rows)]
        K1 = train_labels.shape[-1]
        ylab, lid = unique_rows(train_labels.reshape(-1, K1).float())
        self.label_rows = ylab.to(device)  # (Ly, K1) distinct label rows of the training seconds
        self.Ly = ylab.shape[0]
        # (K1 + 1, Ly): the label rows, class-major, and a row of ones (a pair's seconds whatever the label)
        self._label_sums = {torch.float32: torch.cat([ylab.t(), torch.ones(1, self.Ly)]).contiguous().to(device)}
        lid = lid.reshape(train_labels.shape[:2])
        self.pairs = [(lid * G + g).to(device) for g in gids[:-1]]  # per training set (N, T): label row, tuple
        # selection split: per evaluation batch j, tuple counts (J, G), label counts (J, G, K1)
        g_sel, y_sel = gids[-1], select_labels.cpu().double()
        Nv, T = g_sel.shape
        j = torch.arange(Nv).repeat_interleave(T) // batch_size  # (Nv*T,) evaluation batch of each second
        J = int(j.max()) + 1
        key = j * G + g_sel.reshape(-1)
        self.sel_count = torch.bincount(key, minlength=J * G).double().reshape(J, G)
        self.sel_label = torch.zeros(J * G, K1, dtype=torch.float64).index_add_(0, key, y_sel.reshape(-1, K1))
        self.sel_label = self.sel_label.reshape(J, G * K1)  # (J, G*K1)
        self.sel_pos = [float(y_sel[s : s + batch_size].sum()) for s in range(0, Nv, batch_size)]  # (J,)
        self.sel_weight = [T * min(batch_size, Nv - s) for s in range(0, Nv, batch_size)]
        self._selections: dict = {}  # (U, dtype, device) -> ``_selection``

    def logits(self, p: dict, tab: torch.Tensor) -> torch.Tensor:
        """Logits of every member on every tuple: (M, G, K1). tab (M, U, d) the members' tables.

        The two affine layers fold into one (``x (W2 W1)^T + (W2 b1 + b2)``), as ``batched._forward``
        does, and the tuple's levels are summed in level order (the same values as its gather)."""
        Wc = torch.bmm(p["W2"], p["W1"])  # (M, K1, d)
        bc = torch.baddbmm(p["b2"].unsqueeze(-1), p["W2"], p["b1"].unsqueeze(-1)).squeeze(-1)  # (M, K1)
        proj = torch.bmm(tab, Wc.transpose(1, 2))  # (M, U, K1)
        z = proj.index_select(1, self.levels[0])
        for ix in self.levels[1:]:
            z = z + proj.index_select(1, ix)
        return z + bc[:, None, :]  # (M, G, K1)

    def loss(self, p: dict, tab: torch.Tensor, k: int, b: torch.Tensor) -> torch.Tensor:
        """Per-member mean loss (M,) of training set k at clips b (M, B): BCE + ExpLog over the
        batch's seconds one by one (``losses.SegmentLoss`` per member), differentiable: the reference
        of ``loss_and_grads``, which works on per-tuple counts instead."""
        M = b.shape[0]
        pairs = self.pairs[k].index_select(0, b.reshape(-1)).reshape(M, -1)  # (M, B T)
        z = self.logits(p, tab)  # (M, G, K1)
        zs = torch.gather(z, 1, (pairs % self.G).unsqueeze(-1).expand(-1, -1, z.shape[-1]))  # (M, B T, K1)
        y = self.label_rows.to(z.dtype)[pairs // self.G]  # (M, B T, K1)
        bce = F.binary_cross_entropy_with_logits(zs, y, reduction="none").mean((1, 2))
        w = torch.exp(-p["alpha"])[:, None, :]  # (M, 1, K1)
        return bce - (y * w * F.log_softmax(zs, -1)).sum(-1).mean(1)

    def _selection(self, U: int, dtype: torch.dtype, device) -> torch.Tensor | None:
        """(U, G) in {0, 1, ..}: how many of tuple g's levels use table row u, so that ``proj @ sel``
        sums each tuple's rows (exact: the same two or three terms added) and ``dz @ sel^T`` adds
        each tuple's gradient back onto its rows, each one matrix product instead of a gather per
        level (gathers along the last dim are slow). None where that matrix is the identity (one
        level whose every table row is a tuple: DCID)."""
        key = (U, dtype, device)
        if key not in self._selections:
            sel = torch.zeros(U, self.G, dtype=dtype, device=device)
            for ix in self.levels:
                sel.index_put_((ix, torch.arange(self.G, device=device)), torch.ones((), dtype=dtype), accumulate=True)
            identity = U == self.G and bool((sel == torch.eye(U, dtype=dtype, device=device)).all())
            self._selections[key] = None if identity else sel
        return self._selections[key]

    def _counts(self, k: int, b: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's seconds per tuple and class S (M, K1, G) and per tuple n (M, 1, G), class-major:
        one ``bincount`` of the members' (label row, tuple) pair ids, then the label rows' sums
        (counts, exact in any order)."""
        M = b.shape[0]
        off = self._member_offsets(M, self.Ly * self.G, b.device)  # (M, 1)
        ids = self.pairs[k].index_select(0, b.reshape(-1)).reshape(M, -1) + off  # (M, B T)
        cnt = torch.bincount(ids.reshape(-1), minlength=M * self.Ly * self.G).reshape(M, self.Ly, self.G)
        if dtype not in self._label_sums:
            self._label_sums[dtype] = self._label_sums[torch.float32].to(dtype)
        Sn = torch.matmul(self._label_sums[dtype], cnt.to(dtype))  # (M, K1 + 1, G)
        return Sn[:, :-1], Sn[:, -1:]

    @torch.no_grad()
    def loss_and_grads(
        self,
        p: dict,
        tab: torch.Tensor,
        k: int,
        b: torch.Tensor,
        widths: list[int] | None = None,
        unfolded: bool | None = None,
    ) -> tuple[torch.Tensor, dict]:
        """``loss`` (M,) and its gradients with respect to W1, b1, W2, b2 and alpha, written out
        instead of taken by autograd (the same values up to float rounding; a step has ~10 small
        products, so the engine's bookkeeping cost more than the arithmetic).

        Per member, with z (K1, G) the logits of the tuples (class-major, so the sums over classes
        run across rows), n_g and S_cg the batch's seconds per tuple and per tuple and class, R = B T
        the batch's seconds and w_c = exp(-alpha_c):

            loss    = sum_cg (n_g softplus(z_cg) - S_cg z_cg) / (R K1) - sum_c w_c D_c / R,
                      D_c = sum_g S_cg (z_cg - lse_g),  lse_g = logsumexp_c z_cg
            dz_cg   = (n_g sigmoid(z_cg) - S_cg) / (R K1) - (w_c S_cg - sw_g softmax_c(z_g)) / R,
                      sw_g = sum_c w_c S_cg
            d alpha = w D / R

        dz is gathered back onto the U table rows (dproj) and, with the head
        ``z = (x W1^T + b1) W2^T + b2``: dW1 = W2^T dproj tab, dW2 = dproj (tab W1^T) + dbc b1^T,
        db1 = W2^T dbc, db2 = dbc with dbc = sum_g dz. The products run through ``tab W1^T``
        (U x d x d per member) when the table has fewer rows than 1.5 (K+1), else through the
        folded ``W2 W1`` (K1 x d x d); ``unfolded`` True / False forces one. ``widths``: each
        member's input width (TOC candidates are narrower than d and zero-padded): the d x d
        products of a run of members of one width w use only their leading w x w block, the
        padding's gradient being zero anyway."""
        M = b.shape[0]
        W1, b1, W2, b2, alpha = p["W1"], p["b1"], p["W2"], p["b2"], p["alpha"]
        K1, U = W2.shape[1], tab.shape[1]
        unfolded = (2 * U < 3 * K1) if unfolded is None else unfolded
        # the d x d products, per width run, into the leading blocks of buffers kept from step to step
        bufs = {"h": tab, "dh": tab, "dW1": W1} if unfolded else {"Wc": W2, "dWc": W2, "dW2": W2, "dW1": W1}
        ops = {"W1": W1, "W2": W2, "tab": tab}
        out, views = self._blocks(widths, M, W1.shape[-1], U if unfolded else K1, ops, bufs)
        bc = (W2 * b1.unsqueeze(1)).sum(2, keepdim=True).add_(b2.unsqueeze(-1))  # (M, K1, 1) = W2 b1 + b2
        if unfolded:
            for v in views:
                torch.bmm(v["tab"], v["W1"].transpose(1, 2), out=v["h"])
            h = out["h"]  # (M, U, d)
            proj = torch.bmm(W2, h.transpose(1, 2))  # (M, K1, U)
        else:
            for v in views:
                torch.bmm(v["W2"], v["W1"], out=v["Wc"])
            proj = torch.bmm(out["Wc"], tab.transpose(1, 2))  # (M, K1, U)
        sel = self._selection(U, proj.dtype, proj.device)  # (U, G), None: the tuples are the rows
        z = (proj if sel is None else torch.matmul(proj, sel)).add_(bc)  # (M, K1, G): each tuple's rows summed
        S, n = self._counts(k, b, z.dtype)  # (M, K1, G), (M, 1, G)
        R = b.shape[1] * self.pairs[k].shape[1]  # the batch's seconds
        w = torch.exp(-alpha)  # (M, K1)
        mx = z.amax(1, keepdim=True)  # (M, 1, G)
        e = (z - mx).exp_()
        se = e.sum(1, keepdim=True)
        lse = se.log().add_(mx)  # (M, 1, G)
        sw = torch.bmm(w.unsqueeze(1), S)  # (M, 1, G)
        Sz = (S * z).sum(2)  # (M, K1)
        D = Sz - torch.bmm(S, lse.transpose(1, 2)).squeeze(-1)  # (M, K1)
        d_alpha = w * D / R
        bce = ((F.softplus(z).sum(1, keepdim=True) * n).sum((1, 2)) - Sz.sum(1)) / (R * K1)
        loss = bce - d_alpha.sum(1)
        dz = torch.sigmoid(z).mul_(n / (R * K1))
        dz -= S * w.unsqueeze(-1).div(R).add_(1.0 / (R * K1))
        dz.addcmul_(e, sw.div_(se).div_(R))  # softmax_c sw_g / R
        dbc = dz.sum(2)  # (M, K1)
        dproj = dz if sel is None else torch.matmul(dz, sel.t())  # (M, K1, U): dz back onto the table rows
        if unfolded:
            dW2 = torch.bmm(dproj, h)  # (M, K1, d)
            torch.bmm(dproj.transpose(1, 2), W2, out=out["dh"])  # (M, U, d)
            for v in views:
                torch.bmm(v["dh"].transpose(1, 2), v["tab"], out=v["dW1"])
        else:
            torch.bmm(dproj, tab, out=out["dWc"])  # (M, K1, d)
            for v in views:
                torch.bmm(v["dWc"], v["W1"].transpose(1, 2), out=v["dW2"])
                torch.bmm(v["W2"].transpose(1, 2), v["dWc"], out=v["dW1"])
            dW2 = out["dW2"]
        dW1 = out["dW1"]
        dW2 = dW2 + dbc[:, :, None] * b1[:, None, :]
        db1 = torch.bmm(dbc.unsqueeze(1), W2).squeeze(1)  # (M, d)
        grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": dbc, "alpha": d_alpha}
        return loss, grads

    @torch.no_grad()
    def headline(self, p: dict, tab: torch.Tensor) -> dict:
        """The selection split's reference P/R/F1 % per member, as ``batched._headline`` (float64, (M,))."""
        pred = (self.logits(p, tab) > 0.0).double().cpu()  # (M, G, K1)
        M = pred.shape[0]
        n_pred = self.sel_count @ pred.sum(-1).t()  # (J, M) predicted entries per batch
        tp = self.sel_label @ pred.reshape(M, -1).t()  # (J, M) true positives per batch
        P = torch.zeros(M, dtype=torch.float64)
        R = torch.zeros(M, dtype=torch.float64)
        W = 0.0
        for j, (pos, w) in enumerate(zip(self.sel_pos, self.sel_weight)):
            pj = torch.where(n_pred[j] > 0, tp[j] / n_pred[j].clamp(min=1), 0.0)
            rj = torch.where(n_pred[j] > 0, tp[j] / max(int(pos), 1), 0.0)
            P, R, W = P + w * pj, R + w * rj, W + w
        P, R = P / W, R / W
        F1 = torch.where(P + R > 0, 2 * P * R / (P + R).clamp(min=1e-300), 0.0)
        return {"ref_precision": 100 * P, "ref_recall": 100 * R, "ref_f1": 100 * F1}


class ClipTuples(_KeptBlocks):
    """Video heads' training step over each clip's distinct tuples, with its gradients written out.

    tuples (G, L): every tuple's table row per level; clips: per training set (N, E) each clip's
    distinct tuples (``clip_tuples``); targets (N,) the clips' classes. A video head is
    ``logits = max_t (x_t W1^T + b1) W2^T + b2`` with a cross-entropy loss, and a second's input
    x_t is the sum of its tuple's table rows, so the first layer runs on the U table rows once,
    the tuples' projections are sums of those, and each clip takes, per hidden unit, the max over
    its distinct tuples (``TableMax``'s forward, the same first maximising tuple on ties).
    """

    def __init__(self, tuples: torch.Tensor, clips: list, targets: torch.Tensor, device):
        super().__init__()
        self.levels = [tuples[:, lv].contiguous().to(device) for lv in range(tuples.shape[1])]
        self.G = tuples.shape[0]
        self.clips = [c.to(device) for c in clips]  # per training set (N, E)
        self.targets = targets.to(device)  # (N,)

    @torch.no_grad()
    def loss_and_grads(
        self, p: dict, tab: torch.Tensor, k: int, b: torch.Tensor, widths: list[int] | None = None
    ) -> tuple[torch.Tensor, dict]:
        """Per-member mean cross-entropy (M,) of training set k at clips b (M, B) and its gradients
        with respect to W1, b1, W2, b2 (``batched._loss`` of ``batched._forward``'s logits, the
        same values up to float rounding). tab (M, U, d) the members' table rows; widths: each
        member's input width, as in ``SegmentTuples.loss_and_grads`` (the U x d x d products of a
        run of members of one width use their leading w x w block).

        With h (M, B, d) the clips' maxima (plus b1) and dlogits = (softmax - onehot) / B (kept
        class-major, (M, K, B), so that the softmax runs across rows): dW2 = dlogits h,
        db2 = sum_b dlogits, dh = dlogits^T W2, db1 = sum_b dh; dh goes to the tuple that gave each
        maximum, from the tuples to their table rows (dproj), and dW1 = dproj^T tab."""
        W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"], p["b2"]
        M, B = b.shape
        U, d, G = tab.shape[1], W1.shape[-1], self.G
        rows = tab.new_empty(M, U, d)  # the shape of the table rows' projections and their gradients
        out, views = self._blocks(widths, M, d, U, {"W1": W1, "tab": tab}, {"proj": rows, "dproj": rows, "dW1": W1})
        off = self._member_offsets(M, G, b.device)  # (M, 1)
        for v in views:
            torch.bmm(v["tab"], v["W1"].transpose(1, 2), out=v["proj"])
        proj = out["proj"]  # (M, U, d) every table row's projection
        projT = proj.index_select(1, self.levels[0])  # (M, G, d) every tuple's
        for ix in self.levels[1:]:
            projT += proj.index_select(1, ix)
        E = self.clips[k].shape[1]
        ids = (self.clips[k].index_select(0, b.reshape(-1)).reshape(M, B * E) + off).reshape(-1, E)
        hE = projT.reshape(M * G, d).index_select(0, ids.t().reshape(-1)).reshape(E, M * B, d)  # tuple-major
        best = hE.amax(0)  # (M B, d)
        if E < 256:  # the first maximising tuple: amax of (E - e) over the maxima (as TableMax)
            w = torch.arange(E, 0, -1, dtype=torch.uint8, device=b.device).reshape(E, 1, 1)
            arg = E - ((hE == best).to(torch.uint8) * w).amax(0).long()  # (M B, d)
        else:
            arg = hE.max(0).indices
        h = best.reshape(M, B, d) + b1.unsqueeze(1)  # (M, B, d)
        logp = torch.log_softmax(torch.baddbmm(b2.unsqueeze(-1), W2, h.transpose(1, 2)), 1)  # (M, K, B)
        y = self.targets.index_select(0, b.reshape(-1)).reshape(M, 1, B)
        loss = -logp.gather(1, y).squeeze(1).mean(1)  # (M,)
        dlogits = logp.exp_()
        dlogits.scatter_add_(1, y, torch.full((M, 1, B), -1.0, dtype=dlogits.dtype, device=b.device))
        dlogits /= B
        dW2 = torch.bmm(dlogits, h)  # (M, K, d)
        db2 = dlogits.sum(2)
        dh = torch.bmm(dlogits.transpose(1, 2), W2)  # (M, B, d)
        db1 = dh.sum(1)
        src = ids.gather(1, arg)  # (M B, d) the flat tuple that gave each maximum
        dprojT = torch.zeros(M * G, d, dtype=dh.dtype, device=b.device).scatter_add_(0, src, dh.reshape(M * B, d))
        dprojT = dprojT.reshape(M, G, d)
        dproj = out["dproj"].zero_()  # (M, U, d)
        for ix in self.levels:
            dproj.index_add_(1, ix, dprojT)
        for v in views:
            torch.bmm(v["dproj"].transpose(1, 2), v["tab"], out=v["dW1"])
        return loss, {"W1": out["dW1"], "b1": db1, "W2": dW2, "b2": db2}


def _width_spans(widths, M: int, d: int, rows: int, device: torch.device) -> list[tuple[int, int, int]]:
    """Runs (start, end, width) of consecutive members of one input width, or one run of every
    member at width d when splitting does not pay: on a GPU, or where the multiply-adds saved by
    the narrower blocks of the two (rows x d x d) products, at ~40 GFLOP/s on one CPU core, take
    less time than the extra product calls (~20 us each)."""
    whole = [(0, M, d)]
    if widths is None or device.type != "cpu":
        return whole
    spans = []
    for i, w in enumerate(widths):
        if spans and spans[-1][2] == w:
            spans[-1] = (spans[-1][0], i + 1, w)
        else:
            spans.append((i, i + 1, w))
    saved_flops = 4 * rows * (M * d * d - sum((e - s) * w * w for s, e, w in spans))
    return spans if saved_flops > 2 * (len(spans) - 1) * 0.8e6 else whole


def unique_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.unique(x, dim=0, return_inverse=True)`` of a 2-D tensor (R, C): the distinct rows in
    lexicographic order (U, C) and each row's index (R,), on the CPU by one numpy lexsort (torch's
    ``unique_dim`` compares rows one by one and takes ~0.1 s for 10^4 rows)."""
    a = x.detach().cpu().numpy()
    if a.shape[0] == 0:
        return x[:0].cpu(), torch.zeros(0, dtype=torch.int64)
    order = np.lexsort(a.T[::-1])  # column 0 is the primary key
    s = a[order]
    new = np.ones(len(s), bool)
    new[1:] = (s[1:] != s[:-1]).any(1)
    inv = np.empty(len(a), np.int64)
    inv[order] = np.cumsum(new) - 1
    return torch.from_numpy(np.ascontiguousarray(s[new])), torch.from_numpy(inv)


def clip_tuples(rows: list) -> tuple[torch.Tensor, list]:
    """Each clip's distinct code tuples, for heads that take a max over seconds (video heads).

    rows: per set the table row of each level (N, T, L). Returns tuples (G, L) (``unique_rows`` of
    every set's seconds) and per set (N, E) tuple ids: a clip's distinct tuples in order of first
    appearance, padded with its first tuple (E the most distinct tuples of any clip, often T/2 or
    less). A max over these equals the max over the T seconds, and the first maximising entry is
    the tuple of the first maximising second, so ``TableMax`` sends the gradient to the
    same table rows.
    """
    L = rows[0].shape[-1]
    tuples, inv = unique_rows(torch.cat([r.reshape(-1, L).cpu() for r in rows]))
    out = []
    for g in inv.split([r.shape[0] * r.shape[1] for r in rows]):
        g = g.reshape(-1, rows[0].shape[1])  # (N, T)
        T = g.shape[1]
        seen = ((g[:, :, None] == g[:, None, :]) & torch.ones(T, T, dtype=torch.bool).tril(-1)).any(-1)  # (N, T)
        order = torch.sort(seen.to(torch.int8), dim=1, stable=True).indices  # first appearances first
        n = (~seen).sum(1, keepdim=True)  # (N, 1) distinct tuples per clip
        E = int(n.max())
        first = g.gather(1, order[:, :E])  # (N, E)
        out.append(torch.where(torch.arange(E) < n, first, g[:, :1]))
    return tuples, out


class TableMax(torch.autograd.Function):
    """``max_t sum_l proj[rows[:, t, l]]`` -> (R, d), with the gradient sent straight to ``proj``.

    proj (P, d) projected table rows; rows (R, T, L) int64 row numbers. Equals
    ``embedding_bag(rows.reshape(-1, L), proj, mode="sum").reshape(R, T, d).max(1).values``; the
    backward adds each output's gradient to the table rows of the (first) maximising t only, so no
    (R, T, d) gradient is ever built.
    """

    @staticmethod
    def forward(ctx, proj: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        R, T, L = rows.shape
        rows_t = rows.transpose(0, 1).reshape(T * R, L)  # t-major: h[t] is contiguous
        h = F.embedding_bag(rows_t, proj, mode="sum").reshape(T, R, -1)  # (T, R, d)
        best = h.amax(0)  # (R, d)  (no-grad calls stop here)
        ctx.n_rows = proj.shape[0]
        if ctx.needs_input_grad[0]:
            if T < 256:  # first maximising t: amax of (T - t) over the maxima (3x faster than max(0))
                w = torch.arange(T, 0, -1, dtype=torch.uint8, device=h.device).reshape(T, 1, 1)
                arg = T - ((h == best).to(torch.uint8) * w).amax(0).long()  # (R, d)
            else:
                best, arg = h.max(0)
            ctx.save_for_backward(torch.stack([rows[..., lv].gather(1, arg) for lv in range(L)]))  # (L, R, d)
        return best

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        (idx,) = ctx.saved_tensors
        d_proj = torch.zeros(ctx.n_rows, g.shape[-1], dtype=g.dtype, device=g.device)
        for lv in range(idx.shape[0]):
            d_proj.scatter_add_(0, idx[lv], g)  # d_proj[idx[r, j], j] += g[r, j]
        return d_proj, None
