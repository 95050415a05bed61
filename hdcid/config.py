"""Frozen configuration dataclasses with named presets.

`ModelConfig.paper(variant)` reproduces the published sizes (the released DCID / H-DCID
checkpoints load into it); `ModelConfig.tiny(variant)` trains in minutes on a 2-core CPU on the
AV-Digits demo corpus. Model code reads every size from here, never from literals.

Switches where the original code's behaviour changes numbers are fields with the sound behaviour
as default; `TrainConfig.faithful()` / `ModelConfig.faithful()` flip them to the original's.
See README, section "Faithful vs default behaviour".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

Variant = Literal["dcid", "hdcid"]
_VARIANTS = ("dcid", "hdcid")


class _Serializable:
    """replace / to_dict / from_dict shared by the frozen configs (checkpoints store the dict)."""

    def replace(self, **changes: Any):
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    # fields that earlier versions stored and nothing ever read; checkpoints holding them still load
    _RETIRED: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k not in cls._RETIRED}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**d)


def _check_types(cfg: Any, minimum: dict[str, int] | None = None) -> None:
    """Every field annotated int / float / bool holds that type (a float field accepts an int),
    floats are finite and ints are >= their minimum (default 1); the message names the field."""
    minimum = minimum or {}
    name = type(cfg).__name__
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        kind = str(f.type).replace(" | None", "")
        if v is None and "None" in str(f.type):
            continue
        if kind == "bool" and not isinstance(v, bool):
            raise ValueError(f"{name}.{f.name} must be True or False, got {v!r}")
        if kind == "int":
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"{name}.{f.name} must be an int, got {type(v).__name__} {v!r}")
            lo = minimum.get(f.name, 1)
            if v < lo:
                raise ValueError(f"{name}.{f.name} must be >= {lo}, got {v}")
        if kind == "float" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise ValueError(f"{name}.{f.name} must be a finite number, got {v!r}")


@dataclass(frozen=True)
class ModelConfig(_Serializable):
    """Sizes and codebook hyper-parameters of a DCID or H-DCID model."""

    _RETIRED = ("n_text_classes",)

    variant: str = "dcid"  # "dcid" (one codebook) or "hdcid" (two hierarchical levels)
    # inputs (per 1-s segment)
    n_segments: int = 10  # T
    video_dim: int = 512  # channels C of the (T, G, G, C) video grid
    video_grid: int = 7  # G
    audio_dim: int = 128
    word_dim: int = 768  # per-word text embedding width (BERT-base 768, MiniLM 384)
    # text BiLSTM (owned by the model): output width 2 * text_lstm_hidden
    text_lstm_hidden: int = 128
    text_lstm_layers: int = 2
    # modality-specific encoders
    video_conv_dim: int = 2048  # VE output channels; the first conv has video_conv_dim // 2
    video_club_dim: int = 512  # pooled video branch C_v (MLP conv_dim -> conv_dim/2 -> club_dim)
    audio_specific_dim: int = 256
    text_specific_dim: int = 256
    # semantic encoders (ITRM: Linear + post-norm transformer layers, no positional encoding)
    hidden_dim: int = 256  # D: latent and code width
    n_heads: int = 4
    ffn_dim: int = 1024
    n_layers: int = 2
    dropout: float = 0.1
    # hdcid extension (original: None = every second attends to the whole clip): each second's
    # self-attention sees only the seconds within this distance, so a second's semantic feature (and
    # code) describes that second rather than the clip's event (issue 8: AVVP background seconds)
    attention_window: int | None = None
    se_reduction: int = 8  # video channel-attention reduction
    # unified codebook (per level)
    n_codes: int = 400  # M
    commitment: float = 0.25  # beta
    # commitment of each modality to the OTHER modalities' codes at the same position, as a multiple
    # of beta (original 0.5; own codes: 2 beta)
    cross_commitment: float = 0.5
    # hdcid extension (original True): text is a same-position partner of audio and video in the
    # MM-EMA mass and the cross-modal commitment. Text positions are words, not seconds: on the demo
    # a clip's text takes its digit's code at every position, which pulls background seconds there
    text_partner: bool = True
    # share of each co-located partner's feature in a code's MM-EMA mass (original 0.25: 0.5 own +
    # 0.25 per partner with text a partner, 0.75 own + 0.25 without). A larger share draws the code
    # each modality uses at a second towards the other modality's feature at that second
    ema_partner_share: float = 0.25
    ema_decay: float = 0.99  # gamma
    ema_eps: float = 1e-5  # Laplace epsilon
    reset_after: int = 300  # a code unused for more than this many forward calls is reset
    donor_window: int = 100  # donors: codes used within this many forward calls
    reset_noise: float = 1.0 / 1024
    reset_updates_ema: bool = True  # original: False (reset overwritten by the next EMA step)
    reset_in_eval: bool = False  # original: True (eval-mode forwards tick reset counters and may reset codes)
    # hdcid extension (original: False): subtract a per-modality running mean from the semantic
    # features before quantisation, so that no modality sits in its own region of the codebook
    # (removes the audio/video offset seen on the demo corpus, issue 8). Adds encoder buffers
    # `semantic_centre.running_mean` (L, 3, D); off in `paper()` so released checkpoints load.
    semantic_centering: bool = False
    semantic_scaling: bool = False  # with centring: also divide by the modality's RMS deviation
    centering_momentum: float = 0.1
    # hdcid extension (original: False): H-DCID keeps DCID's CMCM at both levels instead of the
    # original H-DCID's zero (issue 8: without it level-1 audio-video agreement varied 0.40-0.70
    # with the seed on the demo)
    hdcid_cmcm: bool = False
    # CPC and CLUB
    cpc_hidden: int = 256
    cpc_layers: int = 2
    club_hidden: int = 128
    # dead modules of the original, kept so released checkpoints load with strict key matching
    keep_dead_modules: bool = True

    def __post_init__(self) -> None:
        _check_types(self, minimum={"attention_window": 0})
        if not 0 <= self.dropout < 1 or not 0 <= self.ema_decay <= 1 or self.ema_eps <= 0:
            raise ValueError(
                f"ModelConfig: need 0 <= dropout < 1, 0 <= ema_decay <= 1, ema_eps > 0; got "
                f"{self.dropout}, {self.ema_decay}, {self.ema_eps}"
            )
        if self.variant not in _VARIANTS:
            raise ValueError(f"ModelConfig.variant must be one of {_VARIANTS}, got {self.variant!r}")
        if self.hidden_dim % self.n_heads:
            raise ValueError(f"hidden_dim ({self.hidden_dim}) must be divisible by n_heads ({self.n_heads})")
        if self.attention_window is not None and self.attention_window < 0:
            raise ValueError(f"attention_window must be None or >= 0, got {self.attention_window}")
        if self.n_segments < 3:
            raise ValueError(f"n_segments must be >= 3 for CPC, got {self.n_segments}")

    @property
    def n_levels(self) -> int:
        return 1 if self.variant == "dcid" else 2

    @property
    def use_cmcm(self) -> bool:
        """CMCM is part of DCID; the original H-DCID replaces it by zero (docs/method.md §3.1)
        unless `hdcid_cmcm`."""
        return self.variant == "dcid" or self.hdcid_cmcm

    @property
    def text_dim(self) -> int:
        """Width of the BiLSTM text feature X_t."""
        return 2 * self.text_lstm_hidden

    @property
    def cpc_max_offset(self) -> int:
        """CPC draws t* in 1..cpc_max_offset (8 for T = 10)."""
        return self.n_segments - 2

    @classmethod
    def paper(cls, variant: str = "dcid", **overrides: Any) -> ModelConfig:
        """The published sizes (video 10x7x7x512, audio 10x128, text 10x768, D=256, 400 codes)."""
        return cls(variant=variant, **overrides)

    @classmethod
    def tiny(cls, variant: str = "dcid", **overrides: Any) -> ModelConfig:
        """A model for the AV-Digits demo corpus that trains in minutes on a 2-core CPU."""
        sizes = dict(
            video_dim=32,
            video_grid=7,
            audio_dim=128,
            word_dim=384,
            text_lstm_hidden=32,
            video_conv_dim=64,
            video_club_dim=32,
            audio_specific_dim=64,
            text_specific_dim=64,
            hidden_dim=64,
            n_heads=4,
            ffn_dim=128,
            n_codes=11,  # issue 8: 10 digits + background; 64 (and 16) codes gave each modality its own codes
            semantic_centering=True,  # issue 8: audio/video offset ~ the within-digit spread
            semantic_scaling=True,  # issue 8: equal spread per modality (H-DCID level 2 collapsed)
            attention_window=1,  # issue 8: with full attention background seconds took the event's code
            hdcid_cmcm=variant == "hdcid",  # issue 8: H-DCID level 1 shared codes on some seeds only
            text_partner=False,  # issue 8: text positions are words; a clip's text pulled background to its digit
            cross_commitment=2.0,  # issue 8: audio and video background seconds took codes of their own
            # issue 8: H-DCID's AVVP V->A failed on some seeds (audio background on audio-only codes);
            # DCID keeps 0.25 (with 0.5 its A->V fell under 40 %)
            ema_partner_share=0.5 if variant == "hdcid" else 0.25,
            cpc_hidden=64,
            club_hidden=32,
            reset_after=300,
            donor_window=100,
        )
        sizes.update(overrides)
        return cls(variant=variant, **sizes)

    def faithful(self) -> ModelConfig:
        """The original code's behaviour where it differs from our default."""
        return dataclasses.replace(
            self,
            reset_updates_ema=False,
            reset_in_eval=True,
            semantic_centering=False,
            semantic_scaling=False,
            attention_window=None,
            hdcid_cmcm=False,
            text_partner=True,
            cross_commitment=0.5,
            ema_partner_share=0.25,
        )


@dataclass(frozen=True)
class TrainConfig(_Serializable):
    """Pretraining schedule and the switches where the original's choices change numbers.

    `variant` is the model this schedule is for, so `faithful()` knows whether the original ran 6
    encoder forwards per step (H-DCID) or 1 (DCID)."""

    _RETIRED = ("num_workers",)

    variant: str = "dcid"  # "dcid" or "hdcid", as ModelConfig.variant
    epochs: int = 6  # DCID 6 (epochs 0..5), H-DCID 5
    batch_size: int = 80
    lr: float = 4e-4  # main Adam (text LSTM + encoder + CPC + decoder)
    mi_lr: float = 1e-3  # one Adam per CLUB estimator
    club_steps: int = 5  # inner CLUB likelihood steps per batch
    grad_clip: float = 0.5  # clip_grad_norm_ per module
    level2_weight: float = 0.3  # H-DCID: weight of the level-2 loss ...
    level2_start_epoch: int = 3  # ... from this (0-based) epoch on
    # hdcid extension (original: 1): weight of the CMCM term in each level's loss
    cmcm_weight: float = 1.0
    # hdcid extension (with ModelConfig.semantic_centering; 0 = off): after every epoch, set the
    # centring running mean to the eval-mode mean over the first this-many pretraining clips
    recalibrate_centring: int = 0
    # hdcid extension (None = off: ModelConfig.ema_decay throughout): EMA decay of every level's
    # codebook during the first epoch in which that level trains (level 1: epoch 0; H-DCID level 2:
    # level2_start_epoch), so the codes follow the fast-moving features of the first steps
    warmup_decay: float | None = None
    # hdcid extension (None = as warmup_decay): the same for the level-2 codebook only
    level2_warmup_decay: float | None = None
    # hdcid extension (original: False, codebooks start at U(-1/M, 1/M)): at the first training
    # step, set every level's codebook to k-means centres of that batch's audio and video features
    data_init: bool = False
    encoder_forwards_per_step: int = 1  # original H-DCID: 6 (5 for CLUB steps + 1)
    dtype: str = "float32"  # original: "float64"
    seed: int = 43
    max_steps_per_epoch: int | None = None  # cap for quick runs; None = full epoch

    def __post_init__(self) -> None:
        _check_types(self, minimum={"club_steps": 0, "level2_start_epoch": 0, "seed": 0, "recalibrate_centring": 0})
        if self.variant not in _VARIANTS:
            raise ValueError(f"TrainConfig.variant must be one of {_VARIANTS}, got {self.variant!r}")
        if self.seed >= 2**32:
            raise ValueError(f"TrainConfig.seed must be < 2**32 (numpy's seed range), got {self.seed}")
        for f in ("lr", "mi_lr", "grad_clip"):
            if getattr(self, f) <= 0:
                raise ValueError(f"TrainConfig.{f} must be > 0, got {getattr(self, f)}")
        if self.level2_weight < 0:
            raise ValueError(f"TrainConfig.level2_weight must be >= 0, got {self.level2_weight}")
        for f in ("warmup_decay", "level2_warmup_decay"):
            v = getattr(self, f)
            if v is not None and not 0 <= v <= 1:
                raise ValueError(f"TrainConfig.{f} must be None or in [0, 1], got {v}")
        if self.cmcm_weight < 0:
            raise ValueError(f"TrainConfig.cmcm_weight must be >= 0, got {self.cmcm_weight}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"TrainConfig.dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.encoder_forwards_per_step < 1:
            raise ValueError("encoder_forwards_per_step must be >= 1")

    @property
    def torch_dtype(self) -> torch.dtype:
        return torch.float64 if self.dtype == "float64" else torch.float32

    @classmethod
    def paper(cls, variant: str = "dcid", **overrides: Any) -> TrainConfig:
        """Published schedule: DCID 6 epochs, H-DCID 5 epochs with level 2 from epoch 3."""
        base = dict(variant=variant, epochs=6 if variant == "dcid" else 5)
        base.update(overrides)
        return cls(**base)

    @classmethod
    def tiny(cls, variant: str = "dcid", **overrides: Any) -> TrainConfig:
        """Minutes on a 2-core CPU on the demo corpus: 8 epochs for both models (published: DCID 6,
        H-DCID 5; with those H-DCID's level 1 and the AVVP heads varied with the seed, issue 8).
        H-DCID's level 2 trains from epoch 0
        (published: 3, `TrainConfig.paper`): before its loss starts, level 2 is untrained and in
        eval mode all video seconds fell on one code (issue 8). After every epoch the centring
        running mean is recalibrated on 512 pretraining clips (`recalibrate_centring`, hdcid
        extension): after epoch 0 the trailing running mean put held-out seconds on one code.
        Every codebook starts from k-means centres of the first batch (`data_init`, hdcid
        extension): from U(-1/M, 1/M) DCID's audio and H-DCID's level 2 still sat on one code
        after epoch 0."""
        base = dict(
            variant=variant,
            epochs=8,
            batch_size=32,
            lr=1e-3,
            level2_start_epoch=0,
            recalibrate_centring=512,  # issue 8: the lagging running mean put held-out seconds on one code
            # issue 8: from U(-1/M, 1/M) DCID's audio and H-DCID's level 2 took >= 0.5 of the held-out
            # seconds on one code after epoch 0 (docs/unified-codes.md)
            data_init=True,
        )
        base.update(overrides)
        return cls(**base)

    def faithful(self) -> TrainConfig:
        """The original's precision and, for H-DCID, its 6 encoder forwards per step (and no
        hdcid extension: CMCM weight 1, no centring recalibration)."""
        return dataclasses.replace(
            self,
            dtype="float64",
            encoder_forwards_per_step=6 if self.variant == "hdcid" else 1,
            cmcm_weight=1.0,
            recalibrate_centring=0,
            warmup_decay=None,
            level2_warmup_decay=None,
            data_init=False,
        )
