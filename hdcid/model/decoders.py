"""Reconstruction decoders of DCID / H-DCID (docs/method.md §2.7, §3.2).

Each decoder concatenates a projection of the quantized code with the modality-specific feature
(`[proj(q) ; S]`) and maps it back to the input (level 1) or to the level-1 specific feature
(level 2, `SimpleDecoder`). The DCID decoder's three dead `Semantic_Decoder` classifier heads are
omitted: they are not in released checkpoints and their logits are never used (docs/method.md §2.7).
"""

from __future__ import annotations

import torch
from torch import nn

from hdcid.config import ModelConfig
from hdcid.modalities import MODALITIES
from hdcid.model.blocks import ResidualStack
from hdcid.model.conv import ConvTranspose2d


class VideoDecoder(nn.Module):
    """q_v (B,T,D) and S_v (B,T,S,S,Cc) -> reconstructed video (B,T,G,G,C).

    `Linear(D->D)(q)` tiled over the S x S grid, concatenated BEFORE S_v on channels,
    ConvT3x3(D+Cc -> Cc/2) -> ResidualStack(Cc/2) -> ConvT3x3(Cc/2 -> C) -> ReLU -> ConvT1x1(C -> C).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d, cc, c = cfg.hidden_dim, cfg.video_conv_dim, cfg.video_dim
        self.video_linear = nn.Linear(d, d)
        self.inverse_conv_block = nn.Sequential(
            ConvTranspose2d(d + cc, cc // 2, 3),
            ResidualStack(cc // 2, cc // 2, 1),
            ConvTranspose2d(cc // 2, c, 3),
            nn.ReLU(),
            ConvTranspose2d(c, c, 1),
        )

    def forward(self, q: torch.Tensor, s_v: torch.Tensor) -> torch.Tensor:
        b, t, s, _, cc = s_v.shape
        proj = self.video_linear(q).reshape(b * t, -1, 1, 1).expand(-1, -1, s, s)  # (BT, D, S, S)
        spec = s_v.reshape(b * t, s, s, cc).permute(0, 3, 1, 2)  # (BT, Cc, S, S)
        out = self.inverse_conv_block(torch.cat([proj, spec], dim=1))  # (BT, C, G, G)
        return out.permute(0, 2, 3, 1).reshape(b, t, out.shape[2], out.shape[3], out.shape[1])


class ConcatDecoder(nn.Module):
    """`Linear(in+spec -> out)([Linear(D -> in)(q) ; S])` per time step: (B,T,D),(B,T,spec) -> (B,T,out).

    Level 1 audio/text decoders (proj width D) and H-DCID's level-2 `Simple_Decoder` (proj width = in).
    """

    def __init__(self, code_dim: int, proj_dim: int, spec_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(code_dim, proj_dim)
        self.out = nn.Linear(proj_dim + spec_dim, out_dim)

    def forward(self, q: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.proj(q), spec], dim=-1))


class Decoder(nn.Module):
    """All decoders of one model: `level1[m]` for m in audio/video/text; H-DCID adds `level2[m]`.

    Level-2 targets (docs/method.md §3.2): video C_v (width Cv), audio S_a, text S_t; level-2 specific inputs are
    S2_m of the same width.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.hidden_dim
        self.level1 = nn.ModuleDict(
            {
                "audio": ConcatDecoder(d, d, cfg.audio_specific_dim, cfg.audio_dim),
                "video": VideoDecoder(cfg),
                "text": ConcatDecoder(d, d, cfg.text_specific_dim, cfg.text_dim),
            }
        )
        if cfg.n_levels > 1:
            widths = {
                "audio": cfg.audio_specific_dim,
                "video": cfg.video_club_dim,
                "text": cfg.text_specific_dim,
            }
            self.level2 = nn.ModuleDict({m: ConcatDecoder(d, w, w, w) for m, w in widths.items()})

    def forward(
        self, level: int, quantized: dict[str, torch.Tensor], specific: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Reconstructions per modality for `level` (0 or 1) from quantized and specific features."""
        heads = self.level1 if level == 0 else self.level2
        return {m: heads[m](quantized[m], specific[m]) for m in MODALITIES}
