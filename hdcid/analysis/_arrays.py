"""Array plumbing shared by the analysis modules: numpy conversion and code-index shapes.

Shapes: `N` clips, `T` segments, `L` levels.
"""

from __future__ import annotations

import numpy as np


def as_numpy(x) -> np.ndarray:
    """numpy view of a numpy array or a (possibly grad-carrying, possibly CUDA) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


_np = as_numpy


def _as_levels(indices, what: str = "indices") -> np.ndarray:
    """(N, T) or (N, T, L) integer codes -> (N, T, L) int64."""
    idx = _np(indices)
    if idx.ndim == 2:
        idx = idx[..., None]
    if idx.ndim != 3:
        raise ValueError(f"{what}: expected shape (N, T) or (N, T, L), got {idx.shape}")
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"{what}: expected integer code indices, got dtype {idx.dtype}")
    return idx.astype(np.int64)


def _per_segment(y, N: int, T: int, what: str) -> np.ndarray:
    """Labels per clip (N,) or per segment (N, T) -> (N, T), each clip's label repeated over T."""
    y = _np(y)
    if y.shape == (N,):
        y = np.repeat(y[:, None], T, axis=1)
    if y.shape != (N, T):
        raise ValueError(f"{what}: expected shape ({N},) or ({N}, {T}), got {y.shape}")
    return y
