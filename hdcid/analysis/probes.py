"""Quick probes on cached codes: pooled clip features, a nearest-centroid cross-modal probe, TOC's
per-dimension terms and the probe accuracy against kept dimensions (notebook 03 slider, TOC sweep).

Shapes: `N` clips, `T` segments, `L` levels, `M` codes, `D` code width.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hdcid.analysis._arrays import _np


def pool_levels(quantized, what: str = "quantized") -> np.ndarray:
    """(N, T, L, D) or (N, T, D) codes -> (N, L, D) mean over segments, float64."""
    q = _np(quantized).astype(np.float64)
    if q.ndim == 3:
        q = q[:, :, None, :]
    if q.ndim != 4:
        raise ValueError(f"{what}: expected (N, T, L, D) or (N, T, D), got {q.shape}")
    return q.mean(1)


def pool_codes(quantized, dims: Sequence | None = None) -> np.ndarray:
    """Clip features for a probe: per-level selected dimensions, mean over segments, concatenated.

    quantized: (N, T, L, D) or (N, T, D); dims: one index array per level (TOC selection) or None
    for all dimensions. Returns (N, sum_l len(dims[l])) float64.
    """
    pooled = pool_levels(quantized)  # (N, L, D)
    if dims is None:
        return pooled.reshape(len(pooled), -1)
    if len(dims) != pooled.shape[1]:
        raise ValueError(f"dims: expected one index array per level ({pooled.shape[1]}), got {len(dims)}")
    return np.concatenate([pooled[:, l, _np(d).astype(np.int64)] for l, d in enumerate(dims)], axis=1)


def centroid_probe(train_x, train_y, test_x, test_y, n_classes: int | None = None) -> tuple[float, np.ndarray]:
    """Nearest-class-centroid classifier (Euclidean), fitted on train, scored on test.

    train_x (N, F), train_y (N,) int, test_x (N', F), test_y (N',). Returns (accuracy in %,
    predictions (N',)). Classes absent from train never win.
    """
    xtr, xte = _np(train_x).astype(np.float64), _np(test_x).astype(np.float64)
    ytr, yte = _np(train_y).astype(np.int64), _np(test_y).astype(np.int64)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"probe features must be (N, F) with equal F, got {xtr.shape} and {xte.shape}")
    K = n_classes or int(max(ytr.max(), yte.max())) + 1
    onehot = np.eye(K)[ytr]  # (N, K)
    n = onehot.sum(0)  # (K,)
    cent = (onehot.T @ xtr) / np.maximum(n, 1)[:, None]  # (K, F)
    d = (xte**2).sum(1)[:, None] - 2 * xte @ cent.T + (cent**2).sum(1)[None]  # (N', K)
    d[:, n == 0] = np.inf
    pred = d.argmin(1)
    return float(100.0 * (pred == yte).mean()), pred


def cross_modal_probe(q_train, y_train, q_test, y_test, dims: Sequence | None = None) -> float:
    """Accuracy (%) of a centroid probe trained on one modality's codes, tested on the other's.

    q_train (N, T, L, D), q_test (N', T, L, D); dims per level or None. Fast (< 0.1 s on the demo).
    """
    return centroid_probe(pool_codes(q_train, dims), y_train, pool_codes(q_test, dims), y_test)[0]


def toc_terms(codebook) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TOC's two ingredients per dimension of one (M, D) codebook, from `hdcid.toc.toc_scores`:
    (similarity (D,), variance (D,), score at the default weights (D,)). Score = -0.7 sim + 0.3 var."""
    import torch

    from hdcid.toc import toc_scores  # lazy: analysis sits above toc

    E = torch.as_tensor(_np(codebook), dtype=torch.float64)
    sim = -_np(toc_scores(E, w_sim=1.0, w_var=0.0))
    var = _np(toc_scores(E, w_sim=0.0, w_var=1.0))
    return sim, var, _np(toc_scores(E))


def toc_sweep(
    codebooks,
    q_train,
    y_train,
    q_test,
    y_test,
    budgets: Sequence[int],
    w_sim: float = 0.7,
    n_random: int = 3,
    seed: int = 0,
) -> pd.DataFrame:
    """Probe accuracy against the number of kept dimensions per level.

    codebooks (L, M, D). For each budget k: TOC's k best dims ("toc best"), TOC's k worst
    ("toc worst") and k random dims (mean over `n_random` draws, "random"). Returns a long
    DataFrame with columns kept, method, accuracy.
    """
    import torch

    from hdcid.toc import toc_select  # lazy: analysis sits above toc

    cb = torch.as_tensor(_np(codebooks))
    if cb.ndim == 2:
        cb = cb[None]
    L, _, D = cb.shape
    rng = np.random.default_rng(seed)
    rows = []
    for k in budgets:
        if not 0 < k <= D:
            raise ValueError(f"budget {k} outside 1..{D}")
        best = [toc_select(cb[l], k, 1, 0, w_sim=w_sim, w_var=1 - w_sim) for l in range(L)]
        worst = [toc_select(cb[l], k, 0, 1, w_sim=w_sim, w_var=1 - w_sim) for l in range(L)]
        rows.append(dict(kept=k, method="toc best", accuracy=cross_modal_probe(q_train, y_train, q_test, y_test, best)))
        rows.append(
            dict(kept=k, method="toc worst", accuracy=cross_modal_probe(q_train, y_train, q_test, y_test, worst))
        )
        accs = [
            cross_modal_probe(q_train, y_train, q_test, y_test, [rng.choice(D, k, replace=False) for _ in range(L)])
            for _ in range(n_random)
        ]
        rows.append(dict(kept=k, method="random", accuracy=float(np.mean(accs))))
    return pd.DataFrame(rows)
