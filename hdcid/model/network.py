"""`CrossModalModel`: the DCID / H-DCID network (encoder, text BiLSTM, decoders, CPC, CLUB).

Method: docs/method.md §2.1-2.9 (DCID) and §3.1-3.2 (H-DCID). `model.encoder.state_dict()` has exactly
the keys of the released `Encoder_parameters` (DCID 142 / H-DCID 262 with `ModelConfig.paper`),
`model.text_lstm.state_dict()` those of `Text_ar_lstm_parameters`.

    model = CrossModalModel(ModelConfig.tiny("hdcid"))
    enc = model.encode(video, "video")   # lists per level: semantic/quantized (B,T,D), indices (B,T)
    out = model.forward_train(video, audio, words)   # used by hdcid.train

Shown in notebooks 01_pretraining (DCID) and 04_hierarchical_alignment (H-DCID).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hdcid.config import ModelConfig
from hdcid.distributed import batch_mean
from hdcid.modalities import ENCODER_ORDER, MODALITIES
from hdcid.model.blocks import ITRM, VSE, LinearReLU, VideoEncoder
from hdcid.model.club import CLUBSample
from hdcid.model.cpc import CrossCPC
from hdcid.model.decoders import Decoder
from hdcid.model.quantizer import UnifiedCodebook


@dataclass
class Encoded:
    """`encode` output, one entry per level: semantic (B,T,D), quantized (B,T,D), indices (B,T)."""

    semantic: list[torch.Tensor]
    quantized: list[torch.Tensor]
    indices: list[torch.Tensor]


@dataclass
class LevelOutputs:
    """One level of a training forward. Dicts are keyed 'audio'/'video'/'text'.

    semantic  Z_m (B,T,D) continuous, grad-carrying; quantized: straight-through codes (B,T,D);
    indices (B,T); specific: the CLUB `y` of this level (level 1: S_a, C_v, S_t; level 2: S2_m);
    quant: the quantizer's full output (commitment, cmcm, agreement, equal_num, perplexity).
    """

    semantic: dict[str, torch.Tensor]
    quantized: dict[str, torch.Tensor]
    indices: dict[str, torch.Tensor]
    specific: dict[str, torch.Tensor]
    quant: Any


@dataclass
class EncoderOutputs:
    """All levels of one encoder forward plus the spatial video feature S_v (B,T,S,S,Cc)."""

    levels: list[LevelOutputs]
    video_spatial: torch.Tensor


@dataclass
class TrainOutputs:
    """`forward_train` output: encoder outputs, reconstructions and their losses, CPC per level."""

    text_features: torch.Tensor  # X_t (B,T,2H), grad-carrying (also the text recon target)
    enc: EncoderOutputs
    reconstructions: list[dict[str, torch.Tensor]]
    rec_loss: list[dict[str, torch.Tensor]]  # MSE per level and modality (scalars)
    cpc: list[Any]  # CPCOutput per level (loss, accuracies)


class ModalityCentre(nn.Module):
    """Per-modality, per-level centring (and optional scaling) of semantic features
    (`ModelConfig.semantic_centering` / `semantic_scaling`).

    Buffers running_mean (L, 3, D) and running_scale (L, 3), MODALITIES order. Train mode: z minus
    the mean of the batch over (B, T) (gradient flows through the mean, as in batch norm), divided
    (scale=True) by the batch's root-mean-square deviation per dimension (one scalar per modality,
    so each modality spreads equally over the codebook); the running statistics move by
    `momentum` towards the batch's. Eval mode (or update=False): the running statistics, no buffer
    changes.
    """

    def __init__(self, levels: int, dim: int, momentum: float = 0.1, scale: bool = False) -> None:
        super().__init__()
        self.momentum, self.scale = momentum, scale
        self.register_buffer("running_mean", torch.zeros(levels, len(MODALITIES), dim))
        self.register_buffer("running_scale", torch.ones(levels, len(MODALITIES)))

    def forward(self, z: torch.Tensor, modality: str, level: int, update: bool = True) -> torch.Tensor:
        """z (B, T, D) -> centred (and scaled) (B, T, D); update=False always uses the running stats."""
        m = MODALITIES.index(modality)
        if not (self.training and update):
            out = z - self.running_mean[level, m].to(z.dtype)
            return out / self.running_scale[level, m].to(z.dtype) if self.scale else out
        mean = batch_mean(z.mean(dim=(0, 1)))  # (D,) (data-parallel: over the global batch)
        out = z - mean
        with torch.no_grad():
            self.running_mean[level, m].lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
        if not self.scale:
            return out
        rms = batch_mean(out.pow(2).mean()).clamp_min(1e-12).sqrt()  # scalar
        with torch.no_grad():
            self.running_scale[level, m].lerp_(rms.detach().to(self.running_scale.dtype), self.momentum)
        return out / rms


class Encoder(nn.Module):
    """The original `AVT_VQVAE_Encoder` (DCID) / `AVT_MLVQVAE_Encoder` (H-DCID) with its key names."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.Video_encoder = VideoEncoder(cfg)
        self.Audio_encoder = LinearReLU(cfg.audio_dim, cfg.audio_specific_dim, "audio_linear")
        self.Text_encoder = LinearReLU(cfg.text_dim, cfg.text_specific_dim, "text_linear")
        if cfg.n_levels > 1:
            self.Video_encoder_2 = LinearReLU(cfg.video_club_dim, cfg.video_club_dim, "input_linear")
            self.Audio_encoder_2 = LinearReLU(cfg.audio_specific_dim, cfg.audio_specific_dim, "input_linear")
            self.Text_encoder_2 = LinearReLU(cfg.text_specific_dim, cfg.text_specific_dim, "input_linear")
        self.Cross_quantizer = UnifiedCodebook.from_config(cfg)
        if cfg.semantic_centering:  # hdcid extension (issue 8); absent in the original layout
            self.semantic_centre = ModalityCentre(
                cfg.n_levels, cfg.hidden_dim, cfg.centering_momentum, scale=cfg.semantic_scaling
            )
        self.video_semantic_encoder = VSE(cfg)
        self.video_self_att = ITRM(cfg.video_dim, cfg)
        self.text_self_att = ITRM(cfg.text_dim, cfg)
        self.audio_self_att = ITRM(cfg.audio_dim, cfg)
        if cfg.n_levels > 1:
            self.video_self_att_2 = ITRM(cfg.video_club_dim, cfg)
            self.text_self_att_2 = ITRM(cfg.text_specific_dim, cfg)
            self.audio_self_att_2 = ITRM(cfg.audio_specific_dim, cfg)

    def shared_features(self, video: torch.Tensor, audio: torch.Tensor, text: torch.Tensor) -> dict:
        """The deterministic part of `forward` (no dropout, no buffer): video conv encoder S_v / C_v,
        VSE, the specific branches of both levels. Equal for every forward of one batch with the same
        weights, so a step with several encoder forwards computes it once (`forward(shared=...)`).

        Returns {"video_spatial" (B,T,S,S,Cc), "video_sem" (B,T,C), "specific": m -> (B,T,.),
        "specific2": m -> (B,T,.) (H-DCID only), "audio", "text"}.
        """
        s_v, c_v = self.Video_encoder(video)  # (B,T,S,S,Cc), (B,T,Cv)
        s_a = self.Audio_encoder(audio)  # (B,T,Da)
        s_t = self.Text_encoder(text)  # (B,T,Dt)
        out = {
            "video_spatial": s_v,
            "video_sem": self.video_semantic_encoder(video),
            "specific": {"audio": s_a, "video": c_v, "text": s_t},
            "audio": audio,
            "text": text,
        }
        if self.cfg.n_levels > 1:
            out["specific2"] = {
                "video": self.Video_encoder_2(c_v),
                "text": self.Text_encoder_2(s_t),
                "audio": self.Audio_encoder_2(s_a),
            }
        return out

    def forward(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        text: torch.Tensor,
        *,
        shared: dict | None = None,
        diagnostics: bool = True,
    ) -> EncoderOutputs:
        """video (B,T,G,G,C), audio (B,T,A), text X_t (B,T,2H) -> EncoderOutputs.

        Runs the quantizer's stateful forward (MM-EMA in train mode, reset counters) per level.
        shared: `shared_features` of these inputs, reused instead of recomputed (the self-attention
        layers, which carry the dropout, and the quantizer always run). diagnostics: False skips the
        quantizer's loss and diagnostic terms (for forwards whose losses are not used).
        """
        sh = self.shared_features(video, audio, text) if shared is None else shared
        # per level: the self-attention inputs (level 2 reads level 1's specific features) and the
        # specific features that level hands to CLUB and its decoders
        att_in = [{"video": sh["video_sem"], "text": sh["text"], "audio": sh["audio"]}, sh["specific"]]
        specific = [sh["specific"], sh.get("specific2")]
        levels = []
        for lv in range(self.cfg.n_levels):
            z = {m: self._self_att(m, lv)(att_in[lv][m]) for m in ENCODER_ORDER}  # m -> (B,T,D)
            levels.append(self._quantize(z, specific[lv], lv, diagnostics))
        return EncoderOutputs(levels=levels, video_spatial=sh["video_spatial"])

    def _specific(self, x: torch.Tensor, modality: str) -> torch.Tensor:
        """Level-1 specific feature of one modality: C_v (B,T,Cv), S_a (B,T,Da) or S_t (B,T,Dt)."""
        if modality == "video":
            return self.Video_encoder(x)[1]
        return self.Audio_encoder(x) if modality == "audio" else self.Text_encoder(x)

    def _self_att(self, modality: str, level: int) -> ITRM:
        """The semantic encoder (ITRM) of one modality and level (original names `video_self_att`,
        `video_self_att_2`, ...)."""
        return getattr(self, f"{modality}_self_att" + ("_2" if level else ""))

    def _centre(self, z: torch.Tensor, modality: str, level: int, update: bool = True) -> torch.Tensor:
        """The semantic feature handed to the codebook: centred per modality when switched on."""
        return self.semantic_centre(z, modality, level, update) if self.cfg.semantic_centering else z

    def _quantize(self, z: dict, specific: dict, level: int, diagnostics: bool = True) -> LevelOutputs:
        z = {m: self._centre(v, m, level) for m, v in z.items()}
        q = self.Cross_quantizer(z["audio"], z["video"], z["text"], level=level, diagnostics=diagnostics)
        return LevelOutputs(semantic=z, quantized=q.quantized, indices=q.indices, specific=specific, quant=q)

    def raw_semantic(self, x: torch.Tensor, modality: str) -> list[torch.Tensor]:
        """Semantic features per level BEFORE any centring, (B,T,D) each (text: x is X_t)."""
        zs = [self._self_att(modality, 0)(self.video_semantic_encoder(x) if modality == "video" else x)]
        if self.cfg.n_levels > 1:  # level 2 reads the level-1 specific feature
            zs.append(self._self_att(modality, 1)(self._specific(x, modality)))
        return zs

    def semantic_chain(self, x: torch.Tensor, modality: str) -> list[torch.Tensor]:
        """Semantic features Z per level for one modality (text: x is X_t). No quantizer call."""
        return [self._centre(z, modality, lv, update=False) for lv, z in enumerate(self.raw_semantic(x, modality))]

    @torch.no_grad()
    def recalibrate_centre(self, inputs: dict[str, torch.Tensor]) -> None:
        """Set the centring running mean (`semantic_centre.running_mean`, every level and modality)
        to the mean over (B, T) of the raw semantic features of `inputs` (m -> (B, T, ...) model
        inputs, text as X_t), computed in eval mode (no dropout, no random draw); the running
        scale is kept. `TrainConfig.recalibrate_centring`: the running mean trails the batch means
        by about 1/momentum steps, and while the features still move fast (H-DCID level 2 in epoch 0)
        that lag put every held-out video second on one code."""
        if not self.cfg.semantic_centering:
            return
        was = self.training
        self.eval()
        try:
            for m, x in inputs.items():
                i = MODALITIES.index(m)
                for lv, z in enumerate(self.raw_semantic(x, m)):
                    rm = self.semantic_centre.running_mean
                    rm[lv, i] = z.mean(dim=(0, 1)).to(rm.dtype)
        finally:
            self.train(was)


def _check_finite_input(x: torch.Tensor, modality: str) -> None:
    """Raise ValueError naming the first (clip, segment) of `x` (B, T, ...) holding NaN/inf: a
    non-finite input would otherwise come back as code 0 with NaN features. A finite sum is the
    common case and ~3x cheaper to check than every element (a NaN or inf anywhere makes the sum
    non-finite; an overflowing sum of finite values falls through to the element-wise check)."""
    if x.numel() == 0 or bool(torch.isfinite(x.sum())):
        return
    bad = ~torch.isfinite(x.flatten(2)).all(dim=2)  # (B, T)
    if bad.any():
        b, t = (int(i) for i in torch.nonzero(bad)[0])
        raise ValueError(
            f"encode: {modality} features hold NaN/inf in {int(bad.sum())} segment(s) "
            f"(first: clip {b}, segment {t}); expected finite inputs"
        )


class CrossModalModel(nn.Module):
    """Encoder + text BiLSTM + decoders + Cross-CPC (per level) + CLUB (per level and modality)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.source_epoch: int | None = None
        self.encoder = Encoder(cfg)
        self.text_lstm = nn.LSTM(
            cfg.word_dim,
            cfg.text_lstm_hidden,
            num_layers=cfg.text_lstm_layers,
            batch_first=True,
            bidirectional=True,
        )
        self.decoder = Decoder(cfg)
        self.cpc = nn.ModuleList(
            CrossCPC(cfg.hidden_dim, cfg.cpc_hidden, cfg.cpc_layers, cfg.cpc_max_offset) for _ in range(cfg.n_levels)
        )
        y_dims = [
            {"video": cfg.video_club_dim, "text": cfg.text_specific_dim, "audio": cfg.audio_specific_dim}
        ] * cfg.n_levels  # level 2: S2 widths equal the level-1 specific widths
        self.club = nn.ModuleList(
            nn.ModuleDict({m: CLUBSample(cfg.hidden_dim, dims[m], cfg.club_hidden) for m in MODALITIES})
            for dims in y_dims
        )

    # ------------------------------------------------------------------ helpers
    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.audio_self_att.affine_matrix.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.encoder.audio_self_att.affine_matrix.weight.device

    def expected_shape(self, modality: str) -> tuple:
        """Per-clip input shape of `modality` (without B)."""
        c = self.cfg
        return {
            "video": (c.n_segments, c.video_grid, c.video_grid, c.video_dim),
            "audio": (c.n_segments, c.audio_dim),
            "text": (c.n_segments, c.word_dim),
        }[modality]

    def _as_input(self, x: Any, modality: str) -> torch.Tensor:
        """Check the shape of `x` (B, *expected_shape) and cast to the model's dtype and device."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
        want = self.expected_shape(modality)
        if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
            what = "text word features" if modality == "text" else f"{modality} features"
            raise ValueError(f"{what} must be (B, {', '.join(map(str, want))}) for this config, got {tuple(x.shape)}")
        return x.to(device=self.device, dtype=self.dtype)

    def text_features(self, words: torch.Tensor) -> torch.Tensor:
        """Word embeddings (B,T,word_dim) -> BiLSTM text feature X_t (B,T,2H), zero initial states."""
        return self.text_lstm(words)[0]

    def codebooks(self) -> torch.Tensor:
        """A detached copy of the codebook(s), (L, M, D) (as `UnifiedCodebook.codebooks()`)."""
        return self.encoder.Cross_quantizer.codebooks()

    # ------------------------------------------------------------------ inference
    def encode(self, features: Any, modality: str, *, grad: bool = False, batch_size: int | None = None) -> Encoded:
        """Semantic features, codes and code indices per level for ONE modality.

        features: video (B,T,G,G,C) | audio (B,T,A) | text words (B,T,word_dim) (run through the
        BiLSTM); numpy or torch, cast to the model's dtype/device. Returns lists (one entry per
        level) of semantic (B,T,D), quantized (B,T,D) and indices (B,T) int64. Never changes a
        buffer (`quantizer.lookup`); runs under `no_grad` unless `grad=True`; respects the current
        train/eval mode (dropout). `batch_size` splits large inputs into chunks.
        """
        if batch_size is not None and (
            isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1
        ):
            raise ValueError(f"encode: batch_size must be a positive int or None, got {batch_size!r}")
        x = self._as_input(features, modality)
        _check_finite_input(x, modality)
        if batch_size is not None and x.shape[0] > batch_size:
            parts = [self.encode(x[i : i + batch_size], modality, grad=grad) for i in range(0, x.shape[0], batch_size)]
            return Encoded(
                *[
                    [torch.cat([getattr(p, f)[lv] for p in parts]) for lv in range(self.cfg.n_levels)]
                    for f in ("semantic", "quantized", "indices")
                ]
            )
        with torch.set_grad_enabled(grad):
            if modality == "text":
                x = self.text_features(x)
            zs = self.encoder.semantic_chain(x, modality)
            qs, idx = [], []
            for level, z in enumerate(zs):
                q, k = self.encoder.Cross_quantizer.lookup(z, level)
                qs.append(q)
                idx.append(k)
        return Encoded(semantic=zs, quantized=qs, indices=idx)

    # ------------------------------------------------------------------ training
    def forward_train(
        self,
        video: Any,
        audio: Any,
        text_words: Any,
        text_features: torch.Tensor | None = None,
        shared: dict | None = None,
    ) -> TrainOutputs:
        """One training forward: BiLSTM, encoder (stateful quantizer), decoders and CPC per level.

        video (B,T,G,G,C), audio (B,T,A), text_words (B,T,word_dim). `text_features` (B,T,2H)
        reuses an already computed X_t. Level-2 terms of H-DCID are always computed (the level-2
        codebook gets its EMA ticks as in the original); whether they join the loss is the loop's
        choice (`TrainConfig.level2_start_epoch`). CLUB MI terms are computed by the loop (after its
        inner CLUB steps) with `mi_terms`. `shared`: the encoder's `shared_features` of these inputs,
        if already computed.
        """
        video = self._as_input(video, "video")
        audio = self._as_input(audio, "audio")
        if text_features is None:
            text_features = self.text_features(self._as_input(text_words, "text"))
        enc = self.encoder(video, audio, text_features, shared=shared)
        l1 = enc.levels[0]
        recs = [
            self.decoder(
                0,
                l1.quantized,
                {"audio": l1.specific["audio"], "video": enc.video_spatial, "text": l1.specific["text"]},
            )
        ]
        targets = [{"audio": audio, "video": video, "text": text_features}]
        if self.cfg.n_levels > 1:
            l2 = enc.levels[1]
            recs.append(self.decoder(1, l2.quantized, l2.specific))
            targets.append(l1.specific)  # live level-1 features C_v, S_a, S_t (not detached)
        # MSE: mean over all elements (the original's F.mse_loss default; data-parallel: global batch)
        rec_loss = [{m: batch_mean(F.mse_loss(r[m], t[m])) for m in MODALITIES} for r, t in zip(recs, targets)]
        cpc = [
            self.cpc[lv](lo.semantic["audio"], lo.semantic["video"], lo.semantic["text"])
            for lv, lo in enumerate(enc.levels)
        ]
        return TrainOutputs(text_features, enc, recs, rec_loss, cpc)

    def club_pairs(self, enc: EncoderOutputs, level: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """CLUB (x, y) per modality: x = quantized (B,T,D), y = specific of that level."""
        lo = enc.levels[level]
        return {m: (lo.quantized[m], lo.specific[m]) for m in MODALITIES}

    def mi_terms(self, enc: EncoderOutputs, level: int) -> dict[str, torch.Tensor]:
        """CLUB MI upper bound per modality on the NON-detached pairs (gradients reach x and y)."""
        return {m: self.club[level][m].mi_est(x, y) for m, (x, y) in self.club_pairs(enc, level).items()}

    def main_modules(self) -> list[nn.Module]:
        """Modules of the main optimizer, each clipped separately: text LSTM, encoder, CPCs, decoder."""
        return [self.text_lstm, self.encoder, *self.cpc, self.decoder]

    def buffers_snapshot(self) -> dict[str, torch.Tensor]:
        """A clone of every buffer (for tests that assert a path leaves them unchanged)."""
        return {k: v.detach().clone() for k, v in self.named_buffers()}
