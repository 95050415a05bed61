"""Code points and their 2-D projections (UMAP or PCA), cached on disk (notebook 04).

Shapes: `N` clips, `T` segments, `L` levels, `M` codes, `D` code width.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hdcid.analysis._arrays import _as_levels, _np, _per_segment
from hdcid.utils import cache_dir as _default_cache_dir


def code_points(
    codebooks, indices_by_modality: Mapping[str, object], class_labels, class_names: Sequence[str] | None = None
) -> tuple[np.ndarray, pd.DataFrame]:
    """The code vector each segment maps to, as (unique vectors, one row per segment).

    codebooks (L, M, D); indices_by_modality {m: (N, T, L)}; class_labels (N,) or (N, T).
    Returns `vectors` (U, D): the distinct (level, code) vectors used, and `points`: a DataFrame
    with columns modality, level (1-based), code, class, clip, segment, point (row of `vectors`).
    Projecting the U distinct vectors instead of every segment keeps UMAP fast.
    """
    cb = _np(codebooks)
    if cb.ndim == 2:
        cb = cb[None]
    frames = []
    for m, idx in indices_by_modality.items():
        idx = _as_levels(idx, f"indices[{m!r}]")
        N, T, L = idx.shape
        if L > cb.shape[0]:
            raise ValueError(f"indices[{m!r}] has {L} levels but codebooks has {cb.shape[0]}")
        y = _per_segment(class_labels, N, T, "class_labels")
        for level in range(L):
            frames.append(
                pd.DataFrame(
                    dict(
                        modality=m,
                        level=level + 1,
                        code=idx[..., level].ravel(),
                        label=y.ravel(),
                        clip=np.repeat(np.arange(N), T),
                        segment=np.tile(np.arange(T), N),
                    )
                )
            )
    points = pd.concat(frames, ignore_index=True)
    points["class"] = [class_names[i] for i in points["label"]] if class_names is not None else points["label"]
    keys = points["level"].to_numpy() * cb.shape[1] + points["code"].to_numpy()
    uniq, inv = np.unique(keys, return_inverse=True)
    points["point"] = inv
    vectors = cb[uniq // cb.shape[1] - 1, uniq % cb.shape[1]]  # (U, D)
    return vectors.astype(np.float64), points


@dataclass
class Projection:
    """2-D coordinates of vectors and how they were obtained (say so in the plot title)."""

    xy: np.ndarray  # (n, 2)
    method: str  # "umap" or "pca"
    note: str  # e.g. "PCA (quick mode)"
    cached: bool  # loaded from the on-disk cache


def _pca2(x: np.ndarray) -> np.ndarray:
    """First two principal components via SVD, sign fixed so the largest loading is positive."""
    xc = x - x.mean(0)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    vt = vt[:2] * np.sign(vt[:2][np.arange(min(2, len(vt))), np.abs(vt[:2]).argmax(1)])[:, None]
    out = xc @ vt.T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


def _project(x: np.ndarray, method: str, seed: int, n_neighbors: int, min_dist: float, metric: str) -> np.ndarray:
    """(n, D) -> (n, 2) by PCA or UMAP; pure, so `joblib.Memory` can key its cache on every argument."""
    if method == "pca" or len(x) < 5:
        return _pca2(x)
    import umap  # lazy: slow import and numba compile

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, len(x) - 1),
        min_dist=min_dist,
        metric=metric,
        random_state=seed,
        n_jobs=1,
        init="random" if len(x) < 20 else "spectral",
    )
    return reducer.fit_transform(x).astype(np.float64)


def project_codes(
    vectors,
    method: str = "umap",
    cache_dir: str | Path | None = None,
    seed: int = 0,
    reason: str = "",
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "euclidean",
) -> Projection:
    """Project (n, D) vectors to 2-D with UMAP or PCA, cached on disk.

    The cache (`joblib.Memory` under `<cache_dir>/projections`, cache_dir defaulting to
    `hdcid.utils.cache_dir()`) is keyed on the vectors AND every parameter (method, seed, UMAP's
    n_neighbors / min_dist / metric), so neither a changed model nor changed settings reuse a stale
    picture. UMAP's first call compiles numba code (tens of seconds); quick mode passes method="pca"
    and a `reason` such as "quick mode" that ends up in `Projection.note`.
    """
    from joblib import Memory

    x = _np(vectors).astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"vectors: expected (n, D), got shape {x.shape}")
    if method not in ("umap", "pca"):
        raise ValueError(f"method must be 'umap' or 'pca', got {method!r}")
    note = method.upper() + (f" ({reason})" if reason else "")
    project = Memory(Path(cache_dir or _default_cache_dir()) / "projections", verbose=0).cache(_project)
    args = (x, method, int(seed), int(n_neighbors), float(min_dist), str(metric))
    cached = project.check_call_in_cache(*args)
    return Projection(project(*args), method, note, cached=cached)
