"""TOC: training-free selection of codebook dimensions (docs/method.md §4).

TOC scores every dimension ``d`` of a codebook ``E (M, D)`` from the codebook alone (no data, no
labels) and keeps a subset of the dimensions; a downstream head then sees only those coordinates
of each chosen code vector (the nearest-code search still uses all ``D`` dims).

Criterion (APE-style), per dimension ``d``::

    sim[d]  = mean over ordered pairs i != j of E[i,d] * E[j,d]
    var[d]  = unbiased variance of column d
    crit[d] = -w_sim * sim[d] + w_var * var[d]

Closed form (docs/method.md §4.1), O(M*D) instead of the O(M^2*D) double loop, computed in float64::

    sim[d] = mu[d]^2 - var[d] / M

Selection (docs/method.md §4.2): ``q = choose_channel // (toc_max_num + toc_min_num)``; keep the ``q*toc_max_num``
highest-scoring dims in descending score order, then the ``q*toc_min_num`` lowest in ascending
order. H-DCID applies the same setting to each level independently; the selected blocks are
concatenated level 0 first (``apply_toc``).

Notebook: the TOC notebook shows the scores, the selection slider and the cosine views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "toc_scores",
    "toc_scores_loop",
    "toc_select",
    "toc_select_levels",
    "apply_toc",
    "cosine_views",
    "cosine_summary",
    "TOCSettings",
    "settings_problem",
]


def _as_codebook(E, name: str = "codebook") -> torch.Tensor:
    """Return ``E`` as a float64 CPU tensor of shape (M, D), or raise a clear ValueError."""
    E = torch.as_tensor(E).detach().to("cpu", torch.float64)
    if E.dim() != 2:
        raise ValueError(f"{name}: expected a 2-D codebook (M, D), got shape {tuple(E.shape)}")
    if E.shape[0] < 2:
        raise ValueError(f"{name}: TOC needs at least 2 codes (M >= 2), got shape {tuple(E.shape)}")
    bad = ~torch.isfinite(E)
    if bad.any():
        rows = torch.nonzero(bad.any(dim=1)).flatten().tolist()
        raise ValueError(
            f"{name}: expected a finite codebook, found NaN/inf in {len(rows)} code row(s) "
            f"(first: code {rows[0]}); TOC would rank such dimensions arbitrarily"
        )
    return E


def toc_scores(E, w_sim: float = 0.7, w_var: float = 0.3) -> torch.Tensor:
    """TOC score of every dimension, closed form.

    E: (M, D) codebook (any float dtype, any device). Returns (D,) float64 on the CPU:
    ``-w_sim * (mu^2 - var/M) + w_var * var`` with ``var`` the unbiased column variance.
    """
    E = _as_codebook(E)
    M = E.shape[0]
    mu = E.mean(0)  # (D,)
    c = E - mu  # (M, D); two-pass variance (torch.var over dim 0 is ~8x slower here)
    var = (c * c).sum(0) / (M - 1)  # (D,) unbiased
    sim = mu * mu - var / M  # (D,) mean of E[i,d]E[j,d] over ordered pairs i != j
    return -w_sim * sim + w_var * var


def toc_scores_loop(E, w_sim: float = 0.7, w_var: float = 0.3) -> torch.Tensor:
    """The literal double loop of the original ``cal_criterion`` (reference for tests only; slow).

    E: (M, D). Returns (D,) float64. Accumulates in float64 (the original used a float32 buffer).
    """
    E = _as_codebook(E)
    M, D = E.shape
    sim_sum = torch.zeros(D, dtype=torch.float64)
    count = 0
    for i in range(M):
        for j in range(M):
            if i != j:
                sim_sum += E[i] * E[j]
                count += 1
    sim = sim_sum / count
    var = E.var(0, unbiased=True)
    return -w_sim * sim + w_var * var


def settings_problem(D: int, choose_channel, toc_max_num, toc_min_num, w_sim=0.7, w_var=0.3) -> str | None:
    """Why a TOC setting cannot select from a width-``D`` codebook (a sentence for the user), or None.

    The one place TOC settings are validated: `TOCSettings`, `toc_select` and the notebook 03 sliders
    (`hdcid.widgets.render_toc`) all use it.
    """
    for name, v in (("choose_channel", choose_channel), ("toc_max_num", toc_max_num), ("toc_min_num", toc_min_num)):
        if (
            isinstance(v, bool)
            or not isinstance(v, (int, np.integer, float, np.floating))
            or not np.isfinite(v)
            or int(v) != v
            or v < 0
        ):
            return f"{name} must be a non-negative integer, got {v!r}."
    for name, v in (("w_sim", w_sim), ("w_var", w_var)):
        if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v) or v < 0:
            return f"{name} must be a finite weight >= 0, got {v!r}."
    c, a, b = int(choose_channel), int(toc_max_num), int(toc_min_num)
    parts = a + b
    if parts == 0:
        return "toc_max_num + toc_min_num is 0: nothing would be kept. Raise one of them."
    if not 0 < c <= D:
        return f"choose_channel must lie in 1..{D} (the code width), got {c}."
    if c % parts:
        lo = c - c % parts
        near = [v for v in (lo, lo + parts) if 0 < v <= D]
        return (
            f"choose_channel = {c} is not divisible by toc_max_num + toc_min_num = {parts}; "
            f"the original code would crash here. Nearest valid budgets: {near}."
        )
    return None


def _check_counts(D: int, choose_channel: int, toc_max_num: int, toc_min_num: int) -> tuple[int, int]:
    """Validate a TOC setting against a code width ``D`` (`settings_problem`); return (k_max, k_min)."""
    problem = settings_problem(D, choose_channel, toc_max_num, toc_min_num)
    if problem:
        raise ValueError(f"TOC: {problem}")
    q = int(choose_channel) // (int(toc_max_num) + int(toc_min_num))
    return q * int(toc_max_num), q * int(toc_min_num)


def toc_select(
    E, choose_channel: int, toc_max_num: int, toc_min_num: int, w_sim: float = 0.7, w_var: float = 0.3
) -> torch.LongTensor:
    """Indices of the kept dimensions of ``E (M, D)``, in the order the head sees them.

    Returns a LongTensor (choose_channel,): the ``k_max`` best dims by descending score, then the
    ``k_min`` worst by ascending score. Raises ValueError for an impossible setting.
    """
    E = _as_codebook(E)
    k_max, k_min = _check_counts(E.shape[1], choose_channel, toc_max_num, toc_min_num)
    s = toc_scores(E, w_sim, w_var)  # (D,)
    top = torch.topk(s, k_max, largest=True, sorted=True).indices
    bot = torch.topk(s, k_min, largest=False, sorted=True).indices
    return torch.cat([top, bot]).long()


def toc_select_levels(
    codebooks, choose_channel: int, toc_max_num: int, toc_min_num: int, w_sim: float = 0.7, w_var: float = 0.3
) -> list[torch.LongTensor]:
    """Per-level selection for codebooks (L, M, D) (a 2-D (M, D) is taken as L = 1).

    Returns L LongTensors of length ``choose_channel``, level 0 first.
    """
    cb = torch.as_tensor(codebooks).detach()
    if cb.dim() == 2:
        cb = cb[None]
    if cb.dim() != 3:
        raise ValueError(f"codebooks: expected shape (L, M, D), got {tuple(cb.shape)}")
    return [
        toc_select(cb[level], choose_channel, toc_max_num, toc_min_num, w_sim, w_var) for level in range(cb.shape[0])
    ]


def apply_toc(codes, idx_list: list | None):
    """Restrict codes (N, T, L, D) to the selected dims per level, concatenated level 0 first.

    ``idx_list`` None keeps all dims in natural order. Works on torch tensors and numpy arrays.
    Returns (N, T, sum(len(idx))) (or (N, T, L*D) without TOC).
    """
    if codes.ndim != 4:
        raise ValueError(f"apply_toc: expected codes (N, T, L, D), got shape {tuple(codes.shape)}")
    N, T, L, D = codes.shape
    if idx_list is None:
        return codes.reshape(N, T, L * D)
    if len(idx_list) != L:
        raise ValueError(f"apply_toc: {len(idx_list)} index lists for {L} code levels")
    flat = []
    for level, idx in enumerate(idx_list):
        idx = np.asarray(torch.as_tensor(idx).cpu()).astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= D):
            raise ValueError(f"apply_toc: level {level} index out of range for code width D = {D}")
        flat.append(idx + level * D)  # offsets into the (L*D) flattened axis
    flat = np.concatenate(flat)
    x = codes.reshape(N, T, L * D)
    if isinstance(x, torch.Tensor):
        return x[..., torch.as_tensor(flat, device=x.device)]
    return x[..., flat]


def _cosine_matrix(E: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(M, M) cosine similarity between rows (PyTorch's cosine_similarity eps convention)."""
    norms = E.norm(dim=1).clamp_min(eps)  # (M,)
    return (E @ E.T) / (norms[:, None] * norms[None, :])


def cosine_views(E, idx) -> tuple[torch.Tensor, torch.Tensor]:
    """Code-to-code cosine similarity before and after TOC (docs/method.md §4.3; the original's ``ave_cosine.py``).

    E: (M, D); idx: selected dims (k,). Returns (before (M, M), after (M, M)) float64.
    """
    E = _as_codebook(E)
    idx = torch.as_tensor(idx).long().cpu()
    return _cosine_matrix(E), _cosine_matrix(E[:, idx])


def cosine_summary(before: torch.Tensor, after: torch.Tensor) -> dict:
    """Mean / mean-absolute off-diagonal cosine of the two views, as plain floats."""
    M = before.shape[0]
    off = ~torch.eye(M, dtype=torch.bool)
    b, a = before[off], after[off]
    return {
        "mean_cos_before": float(b.mean()),
        "mean_cos_after": float(a.mean()),
        "mean_abs_cos_before": float(b.abs().mean()),
        "mean_abs_cos_after": float(a.abs().mean()),
    }


@dataclass(frozen=True)
class TOCSettings:
    """One TOC configuration: keep ``choose_channel`` dims per level in ratio max:min."""

    choose_channel: int
    toc_max_num: int
    toc_min_num: int
    w_sim: float = 0.7
    w_var: float = 0.3

    def __post_init__(self) -> None:
        # everything that does not depend on D is checked here (D is checked in select)
        problem = settings_problem(
            10**9, self.choose_channel, self.toc_max_num, self.toc_min_num, self.w_sim, self.w_var
        )
        if problem:
            raise ValueError(f"TOC: {problem}")

    def select(self, codebooks) -> list[torch.LongTensor]:
        """Per-level index lists for codebooks (L, M, D)."""
        return toc_select_levels(
            codebooks, self.choose_channel, self.toc_max_num, self.toc_min_num, self.w_sim, self.w_var
        )

    @property
    def label(self) -> str:
        """Short name used in result tables, e.g. ``C224/1:1``."""
        w = "" if (self.w_sim, self.w_var) == (0.7, 0.3) else f"/w{self.w_sim:g},{self.w_var:g}"
        return f"C{self.choose_channel}/{self.toc_max_num}:{self.toc_min_num}{w}"


def select_or_all(toc: TOCSettings | None, codebooks) -> list[torch.LongTensor] | None:
    """``toc.select(codebooks)``, or None (all dims, natural order) when ``toc`` is None."""
    return None if toc is None else toc.select(codebooks)
