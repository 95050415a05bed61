"""Downstream classifier heads (docs/method.md §5.2). Both are purely affine, as in the original.

``d_in`` is the width of the selected codes: ``sum(len(idx))`` over levels with TOC (DCID
``choose_channel``, H-DCID ``2 * choose_channel``), ``L * D`` without.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["VideoLevelHead", "SegmentHead"]


class VideoLevelHead(nn.Module):
    """AVE / UCF<->VGG head (original ``Semantic_Decoder``).

    x (B, T, d_in) -> Linear(d_in, d_in) per segment -> max over T -> Linear(d_in, n_cls) -> (B, n_cls).
    """

    def __init__(self, d_in: int, n_cls: int):
        super().__init__()
        self.proj = nn.Linear(d_in, d_in)
        self.out = nn.Linear(d_in, n_cls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)  # (B, T, d_in)
        h = h.max(dim=1).values  # (B, d_in)
        return self.out(h)  # (B, n_cls)


class SegmentHead(nn.Module):
    """AVVP / AVE->AVVP head (original ``Semantic_Decoder_AVVP``).

    x (B, T, d_in) -> Linear(d_in, d_in) -> Linear(d_in, n_cls) per segment -> (B, T, n_cls) logits.
    """

    def __init__(self, d_in: int, n_cls: int):
        super().__init__()
        self.proj = nn.Linear(d_in, d_in)
        self.out = nn.Linear(d_in, n_cls)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.proj(x))  # (B, T, n_cls)
