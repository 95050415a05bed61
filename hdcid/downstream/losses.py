"""Downstream losses (docs/method.md §5.3).

* video-level tasks: cross-entropy on (B, K) logits with the video class;
* segment-level tasks: ``BCEWithLogits`` over every (segment, class) entry, background included,
  plus ``ExpLogLoss``: ``-mean_rows( sum_c y[r,c] * log_softmax(z[r])[c] * exp(-alpha_c) )`` with a
  learnable ``alpha_c`` per class initialised to 0.1 (optimised by the same Adam; since every term
  is non-negative the alphas only grow, as in the original).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["video_loss", "ExpLogLoss", "SegmentLoss", "segment_loss"]


def video_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy. logits (B, K), target (B,) int64."""
    return F.cross_entropy(logits, target)


class ExpLogLoss(nn.Module):
    """Softmax log-likelihood of a multi-hot target, per-class weight exp(-alpha_c).

    forward(logits (R, K) or (B, T, K), target same shape in {0, 1}) -> scalar.
    """

    def __init__(self, n_cls: int, alpha_init: float = 0.1):
        super().__init__()
        self.alpha = nn.Parameter(torch.full((n_cls,), float(alpha_init)))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        z = logits.reshape(-1, logits.shape[-1])  # (R, K)
        y = target.reshape(-1, target.shape[-1]).to(z.dtype)  # (R, K)
        logp = F.log_softmax(z, dim=-1)  # (R, K)
        w = torch.exp(-self.alpha).to(z.dtype)  # (K,)
        return -(y * logp * w).sum(-1).mean()


class SegmentLoss(nn.Module):
    """BCEWithLogits (mean over all entries) + ExpLogLoss, weight 1 each."""

    def __init__(self, n_cls: int):
        super().__init__()
        self.exp_log = ExpLogLoss(n_cls)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        bce = F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype))
        return bce + self.exp_log(logits, target)


def segment_loss(logits: torch.Tensor, target: torch.Tensor, exp_log: ExpLogLoss) -> torch.Tensor:
    """Functional form: ``BCEWithLogits(logits, target) + exp_log(logits, target)``."""
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype)) + exp_log(logits, target)
