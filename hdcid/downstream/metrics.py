"""Downstream metrics: the original's reference metrics and standard ones, under separate names.

Reference (what the published numbers mean, docs/method.md §5.5):

* ``video_top1``: top-1 accuracy in % over videos (AVE, UCF<->VGG; the papers call it "precision").
* ``reference_avvp_prf``: AVVP / AVE->AVVP. Per evaluation batch (``batch_size`` videos in order) on the
  (bs*T) x (K+1) binary matrix INCLUDING background: ``P = TP / #pred``, ``R = TP / #target``, both 0 when
  the batch predicts nothing; epoch P and R = batch values averaged with weights ``T * bs``;
  ``F1 = 2PR / (P + R)`` from the averaged P and R. In %.

Standard (reported beside them, never mixed up; accuracy and micro P/R/F1 as scikit-learn's
``accuracy_score`` and ``precision_recall_fscore_support(average="micro", zero_division=0)`` define
them, counted with NumPy: importing scikit-learn costs a notebook about a second; a test compares):

* ``micro_prf``: global micro P/R/F1 over all segments x foreground classes (background excluded).
* ``llp_segment_f1``: LLP segment-level F1: per video and class, F over the T segments for classes that
  are predicted or present; a video's score is the mean over those classes (1.0 when none); mean over
  videos, in %.
* ``llp_event_f1``: LLP event-level F1: events are contiguous runs of a class; a predicted event is a TP
  if it overlaps some true event with tIoU >= 0.5, else FP; a true event without such a match is FN;
  F per video and class, averaged like the segment-level score.

Predictions for multi-label metrics are ``sigmoid(logits) > 0.5``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "video_targets",
    "video_top1",
    "reference_batch_pr",
    "reference_avvp_prf",
    "micro_prf",
    "llp_segment_f1",
    "llp_event_f1",
    "contiguous_events",
    "segment_metrics",
]


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def video_targets(labels) -> np.ndarray:
    """Video class from per-segment labels (N, T, K+1): ``max_t argmax_c labels[t, :K]`` (docs/method.md §5.3)."""
    y = _np(labels)
    return y[..., :-1].argmax(-1).max(-1).astype(np.int64)  # (N,)


def video_top1(logits, y) -> float:
    """Top-1 accuracy in % of logits (N, K) against classes y (N,) (as ``sklearn.metrics.accuracy_score``)."""
    logits, y = _np(logits), _np(y)
    if logits.shape[0] != y.shape[0]:
        raise ValueError(f"video_top1: {logits.shape[0]} logits rows for {y.shape[0]} targets")
    return float(100.0 * np.mean(logits.argmax(-1) == y))


def reference_batch_pr(pred, Y) -> tuple[float, float]:
    """(precision, recall) of one batch: binary pred and Y of equal shape; (0, 0) with no prediction."""
    pred, Y = _np(pred).astype(bool), _np(Y).astype(bool)
    n_pred = pred.sum()
    if n_pred == 0:
        return 0.0, 0.0
    tp = (pred & Y).sum()
    return float(tp / n_pred), float(tp / max(Y.sum(), 1))


def reference_avvp_prf(logits, Y, batch_size: int = 80) -> dict:
    """Reference AVVP P/R/F1 in %, logits and Y (N, T, K+1) incl. background (see module docstring)."""
    logits, Y = _np(logits), _np(Y)
    if logits.shape != Y.shape:
        raise ValueError(f"reference_avvp_prf: logits {logits.shape} vs labels {Y.shape}")
    pred = logits > 0.0  # sigmoid(z) > 0.5
    N, T = Y.shape[:2]
    P = R = W = 0.0
    for s in range(0, N, batch_size):
        p, r = reference_batch_pr(pred[s : s + batch_size], Y[s : s + batch_size])
        w = T * min(batch_size, N - s)
        P, R, W = P + w * p, R + w * r, W + w
    P, R = P / W, R / W
    F1 = 2 * P * R / (P + R) if P + R > 0 else 0.0
    return {"ref_precision": 100 * P, "ref_recall": 100 * R, "ref_f1": 100 * F1}


def micro_prf(pred, Y, exclude_background: bool = True) -> dict:
    """Global micro P/R/F1 in % over all entries of pred / Y (N, T, K+1); background column dropped
    (as ``sklearn.metrics.precision_recall_fscore_support(average="micro")``, 0 where undefined)."""
    pred, Y = _np(pred).astype(bool), _np(Y).astype(bool)
    if exclude_background:
        pred, Y = pred[..., :-1], Y[..., :-1]
    tp = int((pred & Y).sum())
    n_pred, n_true = int(pred.sum()), int(Y.sum())
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_true if n_true else 0.0
    f = 2 * tp / (n_pred + n_true) if n_pred + n_true else 0.0  # 2 TP / (2 TP + FP + FN)
    return {"micro_precision": 100 * p, "micro_recall": 100 * r, "micro_f1": 100 * f}


def _per_video_f(tp, fp, fn) -> np.ndarray:
    """(N, K) counts -> (N,) mean F over classes with any prediction or target (1.0 if none)."""
    active = (tp + fp > 0) | (tp + fn > 0)  # (N, K)
    denom = np.where(active, 2 * tp + fp + fn, 1)
    f = np.where(active, 2 * tp / denom, 0.0)  # (N, K)
    n_active = active.sum(-1)  # (N,)
    return np.where(n_active > 0, f.sum(-1) / np.maximum(n_active, 1), 1.0)


def llp_segment_f1(pred, Y) -> float:
    """LLP segment-level F1 in %. pred, Y: (N, T, K) binary, foreground classes only."""
    pred, Y = _np(pred).astype(np.float64), _np(Y).astype(np.float64)
    tp = (pred * Y).sum(1)  # (N, K)
    fp = (pred * (1 - Y)).sum(1)
    fn = ((1 - pred) * Y).sum(1)
    return float(100 * _per_video_f(tp, fp, fn).mean())


def contiguous_events(seq) -> list[tuple[int, int]]:
    """Contiguous runs of a binary sequence (T,) as [start, end) pairs."""
    s = np.concatenate([[0], _np(seq).astype(np.int8), [0]])
    d = np.diff(s)
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _runs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Contiguous runs of x (N, K, T) bool along T: starts, ends (N, K, E) int64 ([start, end), in
    order, as ``contiguous_events``) and valid (N, K, E), E the most runs of any sequence."""
    N, K, T = x.shape
    pad = np.zeros((N, K, T + 2), np.int8)
    pad[..., 1:-1] = x
    d = np.diff(pad, axis=-1)  # (N, K, T+1)
    n_runs = (d == 1).sum(-1)  # (N, K)
    E = max(1, int(n_runs.max(initial=0)))
    out = []
    for edge in (d == 1, d == -1):
        pos = np.zeros((N, K, E), np.int64)
        n, k, t = np.nonzero(edge)
        pos[n, k, (np.cumsum(edge, -1) - 1)[n, k, t]] = t  # the r-th edge of (n, k) at slot r
        out.append(pos)
    return out[0], out[1], np.arange(E) < n_runs[..., None]


def llp_event_f1(pred, Y, tiou: float = 0.5) -> float:
    """LLP event-level F1 in %. pred, Y: (N, T, K) binary, foreground classes only.

    Every (video, class) at once: the events' tIoU matrices (N, K, E_pred, E_true) give the matched
    predicted events (TP), the rest (FP) and the unmatched true events (FN)."""
    pred, Y = _np(pred).astype(bool), _np(Y).astype(bool)
    ps, pe, pv = _runs(pred.transpose(0, 2, 1))  # (N, K, Ep)
    gs, ge, gv = _runs(Y.transpose(0, 2, 1))  # (N, K, Eg)
    ps, pe, pv = ps[..., :, None], pe[..., :, None], pv[..., :, None]
    gs, ge, gv = gs[..., None, :], ge[..., None, :], gv[..., None, :]
    inter = np.maximum(0, np.minimum(pe, ge) - np.maximum(ps, gs))
    union = np.maximum(pe, ge) - np.minimum(ps, gs)
    iou = np.where(
        union > 0, inter / np.where(union > 0, union, 1), 0.0
    )  # (N, K, Ep, Eg): intersection over union of [start, end)
    match = (iou >= tiou) & pv & gv
    tp = match.any(-1).sum(-1).astype(np.float64)  # (N, K)
    fp = pv[..., 0].sum(-1) - tp
    fn = (gv[..., 0, :] & ~match.any(-2)).sum(-1).astype(np.float64)
    return float(100 * _per_video_f(tp, fp, fn).mean())


def segment_metrics(logits, Y, batch_size: int = 80) -> dict:
    """Every multi-label metric for logits and labels (N, T, K+1), background last."""
    logits, Y = _np(logits), _np(Y)
    pred = logits > 0.0
    out = reference_avvp_prf(logits, Y, batch_size)
    out.update(micro_prf(pred, Y))
    out["seg_f1"] = llp_segment_f1(pred[..., :-1], Y[..., :-1])
    out["event_f1"] = llp_event_f1(pred[..., :-1], Y[..., :-1])
    return out
