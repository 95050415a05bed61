"""Encoder building blocks of DCID / H-DCID (docs/method.md §2.1, §3.2), with the original key names.

* `ITRM`           temporal self-attention: Linear + post-norm transformer layers (no positions).
* `VSE`            video semantic pre-encoder: SE channel attention + residual + SUM over G*G positions.
* `VideoEncoder`   modality-specific video conv stack -> `S_v` (B,T,S,S,Cc) and pooled `C_v` (B,T,Cv).
* `LinearReLU`     the 1-layer specific encoders (`audio_linear`, `text_linear`, `input_linear`).
* `ResidualStack`  the VQ-VAE residual block used by the video encoder and decoder.

Every size comes from `hdcid.config.ModelConfig`; module attribute names equal the original ones so
`state_dict()` keys equal the released checkpoints (see `hdcid/model/network.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hdcid.config import ModelConfig
from hdcid.model.conv import Conv2d


class ITRM(nn.Module):
    """InternalTemporalRelationModule: `Linear(in -> D)` then `n_layers` post-norm encoder layers.

    Input (B, T, in_dim) -> output (B, T, D). Internally sequence-first (T, B, D) like the original;
    4 heads, FFN `ffn_dim`, dropout everywhere, LayerNorm eps 1e-5, no positional encoding, no
    final norm, no mask unless `cfg.attention_window` (hdcid extension: a second attends only to
    seconds within that distance). `encoder_layer` is the original's never-executed prototype layer, registered only
    when `keep_dead_modules` so released checkpoints load with strict key matching.
    """

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            cfg.hidden_dim, cfg.n_heads, cfg.ffn_dim, cfg.dropout, activation="relu", batch_first=False
        )
        if cfg.keep_dead_modules:
            self.encoder_layer = layer  # dead prototype (docs/method.md §2.1), never called
        self.encoder = nn.TransformerEncoder(
            layer, cfg.n_layers, enable_nested_tensor=False
        )  # deep copies of the prototype
        self.affine_matrix = nn.Linear(in_dim, cfg.hidden_dim)
        self.window = cfg.attention_window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, in_dim) -> (B, T, D)."""
        h = self.affine_matrix(x).transpose(0, 1)  # (T, B, D)
        h = self.encoder(h, mask=self._mask(h.shape[0], h.device))  # (T, B, D)
        return h.transpose(0, 1)  # (B, T, D)

    def _mask(self, T: int, device: torch.device) -> torch.Tensor | None:
        """None (full attention, the original) or (T, T) bool, True where |i - j| > window."""
        if self.window is None:
            return None
        t = torch.arange(T, device=device)
        return (t[:, None] - t[None, :]).abs() > self.window


class VSE(nn.Module):
    """Video_Semantic_Encoder: effective op = channel attention + residual + sum over positions.

    x (B, T, G, G, C) -> (B, T, C): `s = sigmoid(W2 relu(W1 mean_p x_p))`, `x'_p = x_p * s + x_p`,
    output `sum_p x'_p`. The original's "spatial attention" ends in a softmax over a length-1 axis
    (all weights exactly 1, docs/method.md §2.1), so it is implemented as the sum; its three layers
    (`affine_video_ave`, `affine_video_self`, `ave_v_att`) are kept only for key compatibility.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.video_dim
        r = c // cfg.se_reduction
        if r < 1:
            raise ValueError(f"video_dim {c} // se_reduction {cfg.se_reduction} must be >= 1")
        self.se_layer = nn.Sequential(nn.Linear(c, r, bias=False), nn.ReLU(), nn.Linear(r, c, bias=False), nn.Sigmoid())
        if cfg.keep_dead_modules:  # dead branch (zero gradient in the original)
            self.affine_video_ave = nn.Linear(c, cfg.hidden_dim)
            self.affine_video_self = nn.Linear(c, cfg.hidden_dim)
            self.ave_v_att = nn.Linear(cfg.hidden_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, G, G, C) -> (B, T, C)."""
        flat = x.flatten(2, 3)  # (B, T, P, C), P = G*G
        s = self.se_layer(flat.mean(dim=2))  # (B, T, C) channel weights in (0, 1)
        return (flat * (s.unsqueeze(2) + 1.0)).sum(dim=2)  # (B, T, C) = sum_p (x_p * s + x_p)


class _ResidualLayer(nn.Module):
    """`x + Conv1x1(ReLU(Conv3x3_pad1(ReLU(x))))`, both convs without bias (keys res_block.{1,3})."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.res_block = nn.Sequential(
            nn.ReLU(),
            Conv2d(channels, hidden, 3, padding=1, bias=False),
            nn.ReLU(),
            Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_block(x)


class ResidualStack(nn.Module):
    """`n_layers` residual layers (distinct weights; the original ties them, harmless at 1) then ReLU."""

    def __init__(self, channels: int, hidden: int, n_layers: int = 1) -> None:
        super().__init__()
        self.stack = nn.ModuleList([_ResidualLayer(channels, hidden) for _ in range(n_layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.stack:  # 1 layer in every config
            x = layer(x)
        return F.relu(x)


class VideoEncoder(nn.Module):
    """Video_Encoder: per frame (C, G, G) -> `S_v` (Cc, G-4, G-4) and pooled branch `C_v` (Cv,).

    conv_stack: Conv3x3(C -> Cc/2) ReLU Conv3x3(Cc/2 -> Cc) ReLU Conv1x1(Cc -> Cc) ResidualStack;
    feed_forward (on the spatial mean of S_v): Linear(Cc -> Cc/2) ReLU Linear(Cc/2 -> Cv).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.video_grid < 5:
            raise ValueError(f"video_grid must be >= 5 (two valid 3x3 convs), got {cfg.video_grid}")
        c, cc = cfg.video_dim, cfg.video_conv_dim
        self.conv_stack = nn.Sequential(
            Conv2d(c, cc // 2, 3),
            nn.ReLU(),
            Conv2d(cc // 2, cc, 3),
            nn.ReLU(),
            Conv2d(cc, cc, 1),
            ResidualStack(cc, cc, 1),
        )
        self.feed_forward = nn.Sequential(nn.Linear(cc, cc // 2), nn.ReLU(), nn.Linear(cc // 2, cfg.video_club_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, G, G, C) -> (S_v (B, T, S, S, Cc) non-negative, C_v (B, T, Cv)), S = G - 4."""
        b, t, g, _, c = x.shape
        frames = x.reshape(b * t, g, g, c).permute(0, 3, 1, 2)  # (BT, C, G, G)
        s = self.conv_stack(frames)  # (BT, Cc, S, S)
        pooled = s.mean(dim=(2, 3))  # (BT, Cc): AvgPool2d(S, stride 1) on the S x S map
        c_v = self.feed_forward(pooled).reshape(b, t, -1)  # (B, T, Cv)
        s_v = s.permute(0, 2, 3, 1).reshape(b, t, s.shape[2], s.shape[3], s.shape[1])  # (B, T, S, S, Cc)
        return s_v, c_v


class LinearReLU(nn.Module):
    """`ReLU(Linear(in -> out))` per time step; `name` is the original attribute name of the Linear."""

    def __init__(self, in_dim: int, out_dim: int, name: str) -> None:
        super().__init__()
        self._name = name
        self.add_module(name, nn.Linear(in_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, in) -> (B, T, out)."""
        return F.relu(getattr(self, self._name)(x))
