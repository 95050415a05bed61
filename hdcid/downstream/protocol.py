"""Training a head on cached codes, and choosing the reported epoch under a named protocol.

Two protocols (every output row names the one it used):

* ``"original"``: the published papers' procedure. The reported epoch is the best one on the TEST
  data (``test_cross``); while the head trains, the encoder runs in train mode (dropout on; see
  ``hdcid.downstream.cache`` for the K-draws approximation); AVE is evaluated on its training split.
* ``"honest"``: train on train, choose the epoch (and any TOC setting) on a validation split, report
  the test metrics of that epoch once; several seeds.

The schedule is the original's for both: Adam(lr 4e-4), MultiStepLR([10, 20, 30], 0.5) stepped per
epoch, gradient-norm clipping 0.5 on the head, batch 80. Heads train in float32 (the original used
float64; with these affine heads the difference is far below seed-to-seed noise).
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from hdcid.downstream.heads import SegmentHead, VideoLevelHead
from hdcid.downstream.losses import SegmentLoss, video_loss
from hdcid.downstream.metrics import reference_avvp_prf, segment_metrics, video_targets, video_top1
from hdcid.utils import GLOBAL_STATE_LOCK, get_device, seed_everything

__all__ = [
    "PROTOCOLS",
    "FitConfig",
    "EvalSet",
    "FitResult",
    "selection_split",
    "choose_epoch",
    "fit_head",
    "predict",
    "evaluate_all",
]

PROTOCOLS = ("original", "honest")


@dataclass(frozen=True)
class FitConfig:
    """Head-training schedule (original values)."""

    epochs: int = 50
    lr: float = 4e-4
    batch_size: int = 80
    clip: float = 0.5
    milestones: tuple = (10, 20, 30)
    gamma: float = 0.5
    clip_alphas: bool = False  # AVE->AVVP clips the ExpLogLoss alphas with the head; AVVP does not
    cpu_threads: int | None = 1  # torch threads while a head trains on the CPU (tiny matmuls: 1 is
    # fastest, ~2.5x faster than 2 on a busy 2-core machine); None keeps torch's setting


@dataclass
class EvalSet:
    """Selected codes x (N, T, d) and labels (N, T, K+1) of one evaluation split."""

    x: torch.Tensor
    labels: torch.Tensor


@dataclass
class FitResult:
    history: pd.DataFrame  # one row per epoch (1-based), columns "<split>/<metric>"
    epoch: int  # chosen epoch (1-based)
    head: torch.nn.Module  # head weights of the chosen epoch (eval mode)
    select_column: str
    select_value: float
    extra: dict = field(default_factory=dict)


def selection_split(protocol: str) -> str:
    """The split whose curve picks the epoch: ``val`` (honest) or ``test_cross`` (original)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    return "val" if protocol == "honest" else "test_cross"


def choose_epoch(history: pd.DataFrame, protocol: str, metric: str) -> int:
    """Epoch (first maximum) of ``<selection split>/<metric>`` in ``history`` (index = epoch)."""
    col = f"{selection_split(protocol)}/{metric}"
    if col not in history.columns:
        raise KeyError(f"choose_epoch: history has no column {col!r}; columns: {list(history.columns)}")
    return int(history[col].idxmax())


@torch.no_grad()
def predict(head: torch.nn.Module, x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Logits of ``head`` on x (N, T, d) in chunks, eval mode: (N, K) or (N, T, K), on the CPU."""
    head.eval()
    dev = next(head.parameters()).device
    return torch.cat([head(x[s : s + chunk].to(dev, torch.float32)).float().cpu() for s in range(0, x.shape[0], chunk)])


def _headline(kind: str, logits: torch.Tensor, labels: torch.Tensor, batch_size: int) -> dict:
    """Cheap per-epoch metrics: top-1 (video) or the reference P/R/F1 (segment)."""
    if kind == "video":
        return {"top1": video_top1(logits, video_targets(labels))}
    return reference_avvp_prf(logits, labels, batch_size)


def evaluate_all(kind: str, head, ev: EvalSet, batch_size: int = 80) -> dict:
    """Every metric of ``head`` on ``ev``: top-1 for video tasks, reference + standard for segments."""
    logits = predict(head, ev.x)
    if kind == "video":
        return _headline(kind, logits, ev.labels, batch_size)
    return segment_metrics(logits, ev.labels.cpu(), batch_size)


@contextlib.contextmanager
def _threads(n: int | None, device: torch.device):
    """Temporarily set the calling thread's torch CPU thread count (restored afterwards); no-op on
    GPU or n None.

    torch keeps the count per thread (OpenMP's setting, once a thread has run torch code; a new
    thread starts from the last count set anywhere), so heads fitting in several threads at once
    (``TaskOptions.workers``) each set and restore their own.
    """
    if n is None or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_head(
    kind: str,
    train_x: list[torch.Tensor],
    train_labels: torch.Tensor,
    evals: dict[str, EvalSet],
    *,
    cfg: FitConfig,
    protocol: str,
    select_metric: str,
    seed: int = 0,
    device=None,
    progress=None,
) -> FitResult:
    """Train a fresh head on codes and pick the epoch by ``protocol``.

    kind: "video" (VideoLevelHead + CE) or "segment" (SegmentHead + BCE + ExpLogLoss).
    train_x: one or more (N, T, d) code tensors; epoch e (0-based) trains on train_x[e % len].
    train_labels: (N, T, K+1). evals: name -> EvalSet, must contain the selection split.
    Returns FitResult with the per-epoch history and the head of the chosen epoch.
    """
    device = get_device(device)
    with _threads(cfg.cpu_threads, device):
        return _fit(kind, train_x, train_labels, evals, cfg, protocol, select_metric, seed, device, progress)


def _fit(kind, train_x, train_labels, evals, cfg, protocol, select_metric, seed, device, progress):
    sel = f"{selection_split(protocol)}/{select_metric}"
    if selection_split(protocol) not in evals:
        raise ValueError(
            f"fit_head: protocol {protocol!r} selects on {selection_split(protocol)!r}, "
            f"which is not among the evaluation splits {sorted(evals)}"
        )
    if kind not in ("video", "segment"):
        raise ValueError(f"fit_head: kind must be 'video' or 'segment', got {kind!r}")
    d_in = train_x[0].shape[-1]
    K1 = train_labels.shape[-1]
    xs = [x.to(device, torch.float32) for x in train_x]
    with GLOBAL_STATE_LOCK:  # the seeded initialisation, whole, whatever other threads draw
        seed_everything(seed)
        head = (VideoLevelHead(d_in, K1 - 1) if kind == "video" else SegmentHead(d_in, K1)).to(device)
        loss_mod = None if kind == "video" else SegmentLoss(K1).to(device)
    if kind == "video":
        target = torch.as_tensor(video_targets(train_labels)).to(device)  # (N,)
        params = list(head.parameters())
    else:
        target = train_labels.to(device, torch.float32)  # (N, T, K+1)
        params = list(head.parameters()) + list(loss_mod.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), cfg.gamma)
    clip_params = params if (loss_mod is not None and cfg.clip_alphas) else list(head.parameters())
    evals_dev = {k: EvalSet(v.x.to(device, torch.float32), v.labels.cpu()) for k, v in evals.items()}
    gen = torch.Generator().manual_seed(seed)
    N = xs[0].shape[0]
    rows, best_val, best_state, best_epoch = [], -np.inf, None, 0
    for epoch in range(cfg.epochs):
        x = xs[epoch % len(xs)]
        head.train()
        perm = torch.randperm(N, generator=gen).to(device)
        total = torch.zeros((), device=device)
        for s in range(0, N, cfg.batch_size):
            b = perm[s : s + cfg.batch_size]
            logits = head(x[b])  # (B, K) or (B, T, K+1)
            loss = video_loss(logits, target[b]) if loss_mod is None else loss_mod(logits, target[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(clip_params, cfg.clip)
            opt.step()
            total += loss.detach() * len(b)
        sched.step()
        row = {"epoch": epoch + 1, "train/loss": float(total) / N}
        for name, ev in evals_dev.items():
            m = _headline(kind, predict(head, ev.x), ev.labels, cfg.batch_size)
            row.update({f"{name}/{k}": v for k, v in m.items()})
        rows.append(row)
        if row[sel] > best_val:  # first maximum wins
            best_val, best_epoch = row[sel], epoch + 1
            best_state = copy.deepcopy(head.state_dict())
        if progress is not None:
            progress(row)
    history = pd.DataFrame(rows).set_index("epoch")
    head.load_state_dict(best_state)
    head.eval()
    assert best_epoch == choose_epoch(history, protocol, select_metric)
    return FitResult(history, best_epoch, head, sel, float(best_val))
