"""Code usage: counts, perplexity, dead codes, which modality owns which code, usage over training.

Shown in notebook 02 (`hdcid.plots.usage_histograms`, `ownership_bars`, `usage_over_training`).
Shapes: `N` clips, `T` segments, `L` levels, `M` codes, `Mo` modalities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hdcid.analysis._arrays import _as_levels, _np


def usage_counts(indices, n_codes: int) -> np.ndarray:
    """How often each code is chosen, per level.

    indices: (N, T) or (N, T, L) code indices of one modality. Returns (L, M) int64 counts.
    """
    idx = _as_levels(indices)
    if idx.size and (idx.min() < 0 or idx.max() >= n_codes):
        raise ValueError(
            f"indices must lie in [0, {n_codes}) for n_codes={n_codes}; found range [{idx.min()}, {idx.max()}]"
        )
    L = idx.shape[2]
    flat = idx.transpose(2, 0, 1).reshape(L, -1) + np.arange(L)[:, None] * n_codes  # (L, N*T)
    return np.bincount(flat.ravel(), minlength=L * n_codes).reshape(L, n_codes)


def usage_matrix(indices_by_modality: Mapping[str, object], n_codes: int) -> np.ndarray:
    """Stack `usage_counts` over modalities: {m: (N_m, T, L)} -> (Mo, L, M) counts."""
    if not indices_by_modality:
        raise ValueError("indices_by_modality is empty; expected e.g. {'video': (N,T,L), 'audio': ...}")
    counts = [usage_counts(v, n_codes) for v in indices_by_modality.values()]
    levels = {c.shape[0] for c in counts}
    if len(levels) != 1:
        raise ValueError(f"all modalities need the same number of levels, got {sorted(levels)}")
    return np.stack(counts)


def perplexity(counts) -> np.ndarray:
    """exp(entropy) of the usage distribution along the last axis; 0 where nothing was counted.

    counts: (..., M) -> (...) float. Uniform use of k codes gives exactly k.
    """
    c = _np(counts).astype(np.float64)
    total = c.sum(-1, keepdims=True)
    p = np.divide(c, total, out=np.zeros_like(c), where=total > 0)
    plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    ppl = np.exp(-plogp.sum(-1))
    return np.where(total[..., 0] > 0, ppl, 0.0)


def _usage_stats(counts) -> dict:
    """used, dead and perplexity of one (M,) usage count vector."""
    return dict(used=int((counts > 0).sum()), dead=int((counts == 0).sum()), perplexity=float(perplexity(counts)))


def dead_codes(counts) -> np.ndarray:
    """Boolean mask of codes never chosen. counts: (..., M); sum over leading modality axes first
    if a code counts as alive when any modality uses it."""
    return _np(counts) == 0


def code_ownership(counts, modalities: Sequence[str]) -> pd.DataFrame:
    """Which codes are shared by every modality and which are owned by one.

    counts: (Mo, M) usage of one level. Returns one row per code with columns `code`, one count
    column per modality, and `owner`: "shared" (used by all), the modality name (used only by it),
    "partial" (some but not all of >2 modalities) or "unused".
    """
    c = _np(counts)
    if c.ndim != 2 or c.shape[0] != len(modalities):
        raise ValueError(
            f"counts: expected shape ({len(modalities)}, M) for modalities {list(modalities)}, got {c.shape}"
        )
    used = c > 0  # (Mo, M)
    n_used = used.sum(0)  # (M,)
    owner = np.full(c.shape[1], "partial", dtype=object)
    owner[n_used == len(modalities)] = "shared"
    owner[n_used == 0] = "unused"
    single = n_used == 1
    owner[single] = np.asarray(modalities, dtype=object)[used[:, single].argmax(0)]
    df = pd.DataFrame({"code": np.arange(c.shape[1])})
    for m, row in zip(modalities, c):
        df[m] = row
    df["owner"] = owner
    return df


def ownership_summary(ownership: pd.DataFrame) -> pd.Series:
    """Number of codes per owner category (from `code_ownership`)."""
    return ownership["owner"].value_counts().sort_index()


def usage_summary(indices_by_modality: Mapping[str, object], n_codes: int) -> pd.DataFrame:
    """One row per (modality, level): codes used, dead codes, perplexity.

    Plus one row per level for modality "all" (a code is alive if any modality uses it).
    """
    counts = usage_matrix(indices_by_modality, n_codes)  # (Mo, L, M)
    rows = []
    names = list(indices_by_modality) + ["all"]
    per = np.concatenate([counts, counts.sum(0, keepdims=True)])  # (Mo+1, L, M)
    for m, c in zip(names, per):
        for level, cl in enumerate(c):
            rows.append(dict(modality=m, level=level + 1, **_usage_stats(cl)))
    return pd.DataFrame(rows)


def usage_over_training(usage: Sequence[Mapping]) -> pd.DataFrame:
    """Per-epoch usage snapshots (`PretrainResult.usage`: {'epoch', 'counts': [{m: (M,)} per
    level], 'resets': [(M,) per level]}) -> rows (epoch, level, modality) with used, dead,
    perplexity and, for modality "all", `resets` (code resets during that epoch)."""
    rows = []
    for snap in usage:
        for level, per_mod in enumerate(snap["counts"]):
            counts = {m: _np(c) for m, c in per_mod.items()}
            counts["all"] = np.sum(list(counts.values()), axis=0)
            resets = snap.get("resets")
            for m, c in counts.items():
                rows.append(
                    dict(
                        epoch=int(snap["epoch"]),
                        level=level + 1,
                        modality=m,
                        **_usage_stats(c),
                        resets=int(_np(resets[level]).sum()) if (m == "all" and resets is not None) else np.nan,
                    )
                )
    if not rows:
        raise ValueError("usage_over_training: no snapshots (train at least one epoch)")
    return pd.DataFrame(rows)
