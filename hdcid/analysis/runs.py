"""A pretrained model and its run: loss terms of the training history, parameter counts, and the
codes it gives the same clips in several modalities (notebooks 00, 01, 02, 04).

Shapes: `N` clips, `T` segments, `L` levels, `D` code width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hdcid.downstream.cache import encode_clipset

_TERM_PREFIX = {"reconstruction": "rec", "commitment": "commit", "CLUB (MI)": "mi"}


def loss_terms(history: pd.DataFrame) -> pd.DataFrame:
    """Group a pretraining history (one row per step, per-modality columns such as `rec_a`,
    `commit_v`, `mi_t`, `cpc`, `cmcm`; level 2 with suffix 2: `rec2_a`, `cpc2`) into one column
    per loss term and level: reconstruction, commitment, CPC, CLUB (MI), CMCM, (same + " L2"),
    total. Keeps `step` and `epoch`."""
    out = pd.DataFrame({c: history[c] for c in ("step", "epoch") if c in history.columns})
    for sfx, tag in (("", ""), ("2", " L2")):
        for term, prefix in _TERM_PREFIX.items():
            cols = [c for c in history.columns if c.startswith(f"{prefix}{sfx}_")]
            if cols:
                out[term + tag] = history[cols].sum(axis=1)
        for term, col in (("CPC", "cpc"), ("CMCM", "cmcm")):
            if col + sfx in history.columns:
                out[term + tag] = history[col + sfx]
    if "total" in history.columns:
        out["total"] = history["total"]
    if len(out.columns) <= 2:
        raise ValueError(f"loss_terms: no loss columns (rec_*, commit_*, mi_*, cpc, cmcm) in {list(history.columns)}")
    return out


def model_sizes(configs: Mapping[str, object]) -> pd.DataFrame:
    """Parameter counts (millions) per part for named ModelConfigs, built on the `meta` device
    (no memory, no init cost). Columns: encoder, text_lstm, decoder, cpc, club, total, codebook
    (L x M x D) and encoder state-dict keys."""
    import torch

    from hdcid.model import CrossModalModel

    rows = []
    for name, cfg in configs.items():
        with torch.device("meta"):
            model = CrossModalModel(cfg)
        count = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
        rows.append(
            dict(
                model=name,
                encoder=count(model.encoder),
                text_lstm=count(model.text_lstm),
                decoder=count(model.decoder),
                cpc=count(model.cpc),
                club=count(model.club),
                total=count(model),
                codebook=" x ".join(map(str, model.codebooks().shape)),
                encoder_keys=len(model.encoder.state_dict()),
            )
        )
    return pd.DataFrame(rows).set_index("model")


def encode_modalities(
    model,
    clipset,
    modalities: Sequence[str] = ("video", "audio", "text"),
    max_clips: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
) -> dict:
    """Codes of the same clips in several modalities (eval mode; buffers untouched).

    Returns {"rows": (n,) clip rows used, m: {"quantized": (n, T, L, D) float32, "indices":
    (n, T, L) int64}}; `max_clips` draws a seeded subset.
    """
    n = len(clipset)
    rows = np.arange(n)
    if max_clips is not None and max_clips < n:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_clips, replace=False))
    out: dict = {"rows": rows}
    for m in modalities:  # encode_clipset runs in eval mode and restores the model's mode
        q, i = encode_clipset(model, clipset.features(m)[rows], m, batch_size=batch_size)
        out[m] = {"quantized": q, "indices": i}
    return out
