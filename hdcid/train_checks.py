"""What pretraining refuses before it changes anything: a dataset whose features have the wrong
shape or hold NaN/inf (before the first step), and a non-finite loss term or gradient norm (before
the optimizer step, `NonFiniteTrainingError`; no checkpoint is written from that state). Used by
`hdcid.train`; the full list of checks is in data/README.md ("What hdcid checks").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from hdcid.config import ModelConfig
from hdcid.modalities import MODALITIES

__all__ = ["NonFiniteTrainingError", "check_dataset", "stop_if_nonfinite", "module_names"]


class NonFiniteTrainingError(FloatingPointError):
    """A loss term or gradient became NaN/inf; training stopped before the optimizer step and no
    checkpoint was written from that state. The message names the step, the term and the clip ids."""


def check_dataset(dataset: Any, cfg: ModelConfig) -> None:
    """Raise ValueError unless `dataset` has video (N, T, G, G, Dv), audio (N, T, Da) and text
    (N, T, Dw) features of `cfg`'s sizes, at least one clip, and only finite values."""
    name = getattr(dataset, "name", "dataset")
    want = {
        "video": (cfg.n_segments, cfg.video_grid, cfg.video_grid, cfg.video_dim),
        "audio": (cfg.n_segments, cfg.audio_dim),
        "text": (cfg.n_segments, cfg.word_dim),
    }
    for m, shape in want.items():
        x = getattr(dataset, m, None)
        if x is None:
            raise ValueError(f"{name}: pretraining needs {m} features of shape (N, {shape}), found none")
        if tuple(x.shape[1:]) != shape:
            raise ValueError(
                f"{name}: {m} features must be (N, {', '.join(map(str, shape))}) for this "
                f"ModelConfig, got {tuple(x.shape)}"
            )
    if len(dataset) == 0:
        raise ValueError(f"{name}: empty dataset")
    _check_finite_features(dataset)


def _check_finite_features(dataset: Any) -> None:
    """Raise ValueError naming the modality and the first clip id whose features hold NaN/inf."""
    name = getattr(dataset, "name", "dataset")
    for m in MODALITIES:
        x = getattr(dataset, m)
        bad = np.concatenate(
            [
                ~np.isfinite(np.asarray(x[i : i + 256]).reshape(min(256, len(x) - i), -1)).all(axis=1)
                for i in range(0, len(x), 256)
            ]
        )  # (N,), 256 clips at a time
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            ids = getattr(dataset, "ids", None)
            cid = f"clip id {ids[i]!r} (row {i})" if ids is not None else f"row {i}"
            raise ValueError(
                f"{name}: {m} features hold NaN/inf in {int(bad.sum())} clip(s), first {cid}; "
                "pretraining on them would make every loss and the codebook NaN"
            )


def module_names(model: torch.nn.Module) -> list[str]:
    """Attribute names of `model.main_modules()` in order (text_lstm, encoder, cpc.0, .., decoder)."""
    names = {id(m): n for n, m in model.named_modules()}
    return [names.get(id(m), type(m).__name__) for m in model.main_modules()]


def stop_if_nonfinite(values: list[float], labels: list[str], step: int, epoch: int) -> None:
    """Raise NonFiniteTrainingError naming the first non-finite entry of `values` (loss terms come
    before gradient norms in `labels`, so a NaN loss is named rather than the NaN gradients it makes)."""
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        others = (
            f" (also non-finite: {', '.join(labels[i] for i in bad[1:6])}{' ...' if len(bad) > 6 else ''})"
            if len(bad) > 1
            else ""
        )
        raise NonFiniteTrainingError(
            f"step {step} (epoch {epoch}): non-finite {labels[bad[0]]} = {values[bad[0]]}{others}"
        )
