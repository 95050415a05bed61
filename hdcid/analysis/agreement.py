"""How codes relate: cross-modal agreement, level-1 x level-2 co-occurrence, and what codes tell
about labels (entropy, mutual information, purity, per-level information).

Shown in notebooks 01, 02 (agreement) and 04 (levels). Shapes: `N` clips, `T` segments, `L`
levels, `M` codes, `Mo` modalities.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hdcid.analysis._arrays import _as_levels, _np, _per_segment


def agreement_matrix(indices_by_modality: Mapping[str, object], level: int = 0) -> np.ndarray:
    """Fraction of co-located segments (same clip, same second) given the same code.

    indices_by_modality: {m: (N, T) or (N, T, L)} over the same clips. Returns (Mo, Mo), ones on
    the diagonal, symmetric.
    """
    names = list(indices_by_modality)
    idx = [_as_levels(indices_by_modality[m], f"indices[{m!r}]") for m in names]
    ref = idx[0].shape
    for m, i in zip(names, idx):
        if i.shape != ref:
            raise ValueError(
                f"agreement needs co-located segments: indices[{m!r}] has shape {i.shape}, "
                f"indices[{names[0]!r}] has {ref}"
            )
    if not 0 <= level < ref[2]:
        raise ValueError(f"level {level} out of range for {ref[2]} level(s)")
    codes = np.stack([i[..., level].ravel() for i in idx])  # (Mo, N*T)
    return (codes[:, None, :] == codes[None, :, :]).mean(-1)


def level_cooccurrence(idx_level1, idx_level2, n_codes: int, n_codes2: int | None = None) -> np.ndarray:
    """Joint counts of (level-1 code, level-2 code) over segments.

    idx_level1, idx_level2: (N, T) codes of the same segments. Returns (M1, M2) int64.
    """
    a, b = _np(idx_level1).astype(np.int64).ravel(), _np(idx_level2).astype(np.int64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"level indices must cover the same segments, got {a.shape} and {b.shape}")
    m2 = n_codes2 or n_codes
    return np.bincount(a * m2 + b, minlength=n_codes * m2).reshape(n_codes, m2)


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def conditional_entropy(joint) -> float:
    """H(B | A) in nats from a joint count table (M_A, M_B)."""
    j = _np(joint).astype(np.float64)
    if j.sum() == 0:
        return 0.0
    p = j / j.sum()
    return _entropy(p.ravel()) - _entropy(p.sum(1))


def _contingency(a, b) -> np.ndarray:
    a, b = _np(a).ravel(), _np(b).ravel()
    if a.shape != b.shape:
        raise ValueError(f"codes and labels must have the same number of entries, got {a.shape} vs {b.shape}")
    _, ai = np.unique(a, return_inverse=True)
    _, bi = np.unique(b, return_inverse=True)
    table = np.zeros((ai.max() + 1, bi.max() + 1)) if a.size else np.zeros((0, 0))
    np.add.at(table, (ai, bi), 1)
    return table


def mutual_information(a, b) -> float:
    """I(A; B) in nats from paired samples (any hashable values)."""
    table = _contingency(a, b)
    if table.size == 0:
        return 0.0
    p = table / table.sum()
    return _entropy(p.sum(1)) + _entropy(p.sum(0)) - _entropy(p.ravel())


def code_purity(codes, labels) -> float:
    """Share of segments whose code's majority label equals their own label (1 = pure codes)."""
    table = _contingency(codes, labels)
    return float(table.max(1).sum() / table.sum()) if table.size else 0.0


def level_information(indices, targets: Mapping[str, object]) -> pd.DataFrame:
    """What each level's codes tell about each target (class, within-class attribute, ...).

    indices: (N, T, L) codes of one modality; targets: {name: (N,) per clip or (N, T) per
    segment}. Returns rows (level, target) with `mi` (nats), `nmi` = I(code; y) / H(y) (share
    of the target's entropy the code explains, 0..1) and `purity`.
    """
    idx = _as_levels(indices)
    N, T, L = idx.shape
    rows = []
    for name, y in targets.items():
        y = _per_segment(y, N, T, f"target {name!r}")
        h = _entropy(np.unique(y, return_counts=True)[1] / y.size)
        for level in range(L):
            mi = mutual_information(idx[..., level], y)
            rows.append(
                dict(
                    level=level + 1,
                    target=name,
                    mi=mi,
                    nmi=mi / h if h > 0 else 0.0,
                    purity=code_purity(idx[..., level], y),
                )
            )
    return pd.DataFrame(rows)
