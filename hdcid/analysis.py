"""Pure statistics of discrete codes: usage, agreement, level structure, probes, projections.

Everything here takes plain arrays (numpy or torch; converted with `np.asarray`) and returns
numbers, arrays or DataFrames. Nothing trains or mutates a model. Notebooks 02 (usage), 03 (probe
and TOC sweep) and 04 (levels, projections) show these quantities; `hdcid.plots` draws them.

Shapes: `N` clips, `T` segments, `L` levels, `M` codes, `D` code width, `Mo` modalities.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from hdcid.utils import atomic_path, cache_dir as _default_cache_dir


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


# ----------------------------------------------------------------------------------------------
# usage, perplexity, dead and shared codes (notebook 02)
# ----------------------------------------------------------------------------------------------
def usage_counts(indices, n_codes: int) -> np.ndarray:
    """How often each code is chosen, per level.

    indices: (N, T) or (N, T, L) code indices of one modality. Returns (L, M) int64 counts.
    """
    idx = _as_levels(indices)
    if idx.size and (idx.min() < 0 or idx.max() >= n_codes):
        raise ValueError(
            f"indices must lie in [0, {n_codes}) for n_codes={n_codes}; found range "
            f"[{idx.min()}, {idx.max()}]"
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
            f"counts: expected shape ({len(modalities)}, M) for modalities {list(modalities)}, "
            f"got {c.shape}"
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
            rows.append(
                dict(modality=m, level=level + 1, used=int((cl > 0).sum()),
                     dead=int((cl == 0).sum()), perplexity=float(perplexity(cl)))
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# cross-modal agreement (notebooks 01, 02, 04)
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# levels: co-occurrence and information (notebook 04)
# ----------------------------------------------------------------------------------------------
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
        y = _np(y)
        if y.shape == (N,):
            y = np.repeat(y[:, None], T, axis=1)
        if y.shape != (N, T):
            raise ValueError(f"target {name!r}: expected shape ({N},) or ({N}, {T}), got {y.shape}")
        h = _entropy(np.unique(y, return_counts=True)[1] / y.size)
        for level in range(L):
            mi = mutual_information(idx[..., level], y)
            rows.append(dict(level=level + 1, target=name, mi=mi, nmi=mi / h if h > 0 else 0.0,
                             purity=code_purity(idx[..., level], y)))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# quick probes on cached codes (notebook 03 slider, TOC sweep)
# ----------------------------------------------------------------------------------------------
def pool_codes(quantized, dims: Sequence | None = None) -> np.ndarray:
    """Clip features for a probe: per-level selected dimensions, mean over segments, concatenated.

    quantized: (N, T, L, D) or (N, T, D); dims: one index array per level (TOC selection) or None
    for all dimensions. Returns (N, sum_l len(dims[l])) float64.
    """
    q = _np(quantized).astype(np.float64)
    if q.ndim == 3:
        q = q[:, :, None, :]
    if q.ndim != 4:
        raise ValueError(f"quantized: expected (N, T, L, D) or (N, T, D), got {q.shape}")
    pooled = q.mean(1)  # (N, L, D)
    if dims is None:
        return pooled.reshape(len(q), -1)
    if len(dims) != q.shape[2]:
        raise ValueError(f"dims: expected one index array per level ({q.shape[2]}), got {len(dims)}")
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
    from hdcid.toc import toc_scores  # lazy: analysis sits above toc

    import torch

    E = torch.as_tensor(_np(codebook), dtype=torch.float64)
    sim = -_np(toc_scores(E, w_sim=1.0, w_var=0.0))
    var = _np(toc_scores(E, w_sim=0.0, w_var=1.0))
    return sim, var, _np(toc_scores(E))


def toc_sweep(codebooks, q_train, y_train, q_test, y_test, budgets: Sequence[int],
              w_sim: float = 0.7, n_random: int = 3, seed: int = 0) -> pd.DataFrame:
    """Probe accuracy against the number of kept dimensions per level.

    codebooks (L, M, D). For each budget k: TOC's k best dims ("toc best"), TOC's k worst
    ("toc worst") and k random dims (mean over `n_random` draws, "random"). Returns a long
    DataFrame with columns kept, method, accuracy.
    """
    from hdcid.toc import toc_select  # lazy: analysis sits above toc

    import torch

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
        rows.append(dict(kept=k, method="toc worst", accuracy=cross_modal_probe(q_train, y_train, q_test, y_test, worst)))
        accs = [cross_modal_probe(q_train, y_train, q_test, y_test,
                                  [rng.choice(D, k, replace=False) for _ in range(L)]) for _ in range(n_random)]
        rows.append(dict(kept=k, method="random", accuracy=float(np.mean(accs))))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# code points and 2-D projections (notebook 04)
# ----------------------------------------------------------------------------------------------
def code_points(codebooks, indices_by_modality: Mapping[str, object], class_labels,
                class_names: Sequence[str] | None = None) -> tuple[np.ndarray, pd.DataFrame]:
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
        y = _np(class_labels)
        y = np.repeat(y[:, None], T, 1) if y.shape == (N,) else y
        if y.shape != (N, T):
            raise ValueError(f"class_labels: expected ({N},) or ({N}, {T}), got {y.shape}")
        for level in range(L):
            frames.append(pd.DataFrame(dict(
                modality=m, level=level + 1, code=idx[..., level].ravel(),
                label=y.ravel(), clip=np.repeat(np.arange(N), T), segment=np.tile(np.arange(T), N))))
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


def project_codes(vectors, method: str = "umap", cache_key: str | None = None,
                  cache_dir: str | Path | None = None, seed: int = 0, reason: str = "") -> Projection:
    """Project (n, D) vectors to 2-D with UMAP or PCA, cached on disk.

    The cache file is `<cache_dir>/projections/<method>-<cache_key>-<hash of vectors>.npy`
    (cache_dir defaults to `hdcid.utils.cache_dir()`), so a changed model never reuses a stale
    projection. UMAP's first call compiles numba code (tens of seconds); quick mode passes method="pca"
    and a `reason` such as "quick mode" that ends up in `Projection.note`.
    """
    x = _np(vectors).astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"vectors: expected (n, D), got shape {x.shape}")
    if method not in ("umap", "pca"):
        raise ValueError(f"method must be 'umap' or 'pca', got {method!r}")
    note = method.upper() + (f" ({reason})" if reason else "")
    digest = hashlib.sha1(np.ascontiguousarray(x).tobytes() + f"{seed}".encode()).hexdigest()[:16]
    path = Path(cache_dir or _default_cache_dir()) / "projections" / f"{method}-{cache_key or 'codes'}-{digest}.npy"
    if path.exists():
        xy = np.load(path)
        if xy.shape == (len(x), 2):
            return Projection(xy, method, note, cached=True)
    if method == "pca" or len(x) < 5:
        xy = _pca2(x)
    else:
        import umap  # lazy: slow import and numba compile

        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(x) - 1), random_state=seed, n_jobs=1,
                            init="random" if len(x) < 20 else "spectral")
        xy = reducer.fit_transform(x).astype(np.float64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, xy)
    return Projection(xy, method, note, cached=False)


# ----------------------------------------------------------------------------------------------
# training histories (notebooks 01, 02)
# ----------------------------------------------------------------------------------------------
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
                rows.append(dict(epoch=int(snap["epoch"]), level=level + 1, modality=m,
                                 used=int((c > 0).sum()), dead=int((c == 0).sum()),
                                 perplexity=float(perplexity(c)),
                                 resets=int(_np(resets[level]).sum()) if (m == "all" and resets is not None) else np.nan))
    if not rows:
        raise ValueError("usage_over_training: no snapshots (train at least one epoch)")
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# downstream predictions (notebooks 05-08)
# ----------------------------------------------------------------------------------------------
def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    t, p = _np(y_true).astype(np.int64).ravel(), _np(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape} vs {p.shape}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), found [{min(t.min(), p.min())}, {max(t.max(), p.max())}]")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(cm) -> np.ndarray:
    """Recall of each class in % from a confusion matrix (NaN for classes with no samples)."""
    c = _np(cm).astype(np.float64)
    n = c.sum(1)
    return np.where(n > 0, 100.0 * np.diag(c) / np.where(n > 0, n, 1), np.nan)


@dataclass
class TaskPredictions:
    """Predictions of one trained head on a task's cross-modal test split."""

    task: str
    direction: str
    kind: str  # "video" | "segment"
    class_names: list  # K foreground names (+ "background" for segment tasks)
    ids: list
    logits: np.ndarray  # (N, K) video tasks, (N, T, K+1) segment tasks
    labels: np.ndarray  # (N, T, K+1)
    eval_set: str
    epoch: int

    @property
    def y_true(self) -> np.ndarray:
        """(N,) video-level class (video tasks)."""
        K = self.labels.shape[-1] - 1
        return self.labels[:, :, :K].sum(1).argmax(1)

    @property
    def y_pred(self) -> np.ndarray:
        return self.logits.argmax(-1)

    @property
    def segments_pred(self) -> np.ndarray:
        """(N, T, K+1) bool: sigmoid(logit) > 0.5 (segment tasks)."""
        return self.logits > 0.0


def task_predictions(task: str, direction: str, model, data: dict, toc=None, protocol: str = "honest",
                     seed: int = 0, epochs: int | None = None, quick: bool | None = None,
                     cache_dir=None) -> TaskPredictions:
    """Train one head exactly as `hdcid.downstream.run_task` does for one seed and one TOC
    setting, and return its predictions on the cross-modal test split (for confusion matrices,
    per-class accuracy and AVVP timelines). data: `load_task_data(task, root)`."""
    import torch

    from hdcid.downstream import cache as dcache
    from hdcid.downstream import protocol as dprot
    from hdcid.downstream import tasks as dtasks
    from hdcid.toc import apply_toc, select_or_all
    from hdcid.utils import cache_dir as default_cache, is_quick

    spec = dtasks.TASKS[task]
    quick = is_quick() if quick is None else quick
    splits = dtasks.build_splits(task, direction, data, protocol)
    cdir = Path(cache_dir) if cache_dir is not None else default_cache() / "codes"
    idx = select_or_all(toc, model.codebooks().detach().cpu())
    dropout = protocol == "original"
    tr = splits["train"]
    train_codes = dcache.encode_cached(model, tr.clipset, tr.modality, cdir, train_mode=dropout)
    draws = [train_codes.draw(e) for e in range(train_codes.n_draws)] if dropout else [train_codes]
    sel = lambda c: apply_toc(torch.from_numpy(c.quantized), idx).float()  # noqa: E731  (N, T, d)
    ev_codes = {k: dcache.encode_cached(model, s.clipset, s.modality, cdir) for k, s in splits.items() if k != "train"}
    evals = {k: dprot.EvalSet(sel(c), torch.from_numpy(c.labels)) for k, c in ev_codes.items()}
    cfg = dprot.FitConfig(epochs=epochs or (dtasks.QUICK_EPOCHS if quick else spec.epochs), clip_alphas=spec.clip_alphas)
    fit = dprot.fit_head(spec.kind, [sel(c) for c in draws], torch.from_numpy(train_codes.labels), evals,
                         cfg=cfg, protocol=protocol, select_metric=spec.metric, seed=seed)
    test = ev_codes["test_cross"]
    logits = dprot.predict(fit.head, evals["test_cross"].x).numpy()
    names = list(splits["test_cross"].clipset.classes)
    if spec.kind == "segment":
        names = names + ["background"]
    return TaskPredictions(task, direction, spec.kind, names, list(test.ids), logits, test.labels,
                           splits["test_cross"].name, fit.epoch)


def per_class_segment_f1(pred, true) -> np.ndarray:
    """Segment-level F1 (%) per class over all clips and seconds: pred, true (N, T, K) {0,1}.
    NaN for classes that are neither predicted nor present."""
    p, y = _np(pred).astype(bool), _np(true).astype(bool)
    if p.shape != y.shape:
        raise ValueError(f"pred and true must have the same shape, got {p.shape} and {y.shape}")
    tp = (p & y).sum((0, 1)).astype(np.float64)
    denom = p.sum((0, 1)) + y.sum((0, 1))
    return np.where(denom > 0, 200.0 * tp / np.where(denom > 0, denom, 1), np.nan)


# ----------------------------------------------------------------------------------------------
# models and codes (notebooks 00, 02, 04)
# ----------------------------------------------------------------------------------------------
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
        rows.append(dict(model=name, encoder=count(model.encoder), text_lstm=count(model.text_lstm),
                         decoder=count(model.decoder), cpc=count(model.cpc), club=count(model.club),
                         total=count(model), codebook=" x ".join(map(str, model.codebooks().shape)),
                         encoder_keys=len(model.encoder.state_dict())))
    return pd.DataFrame(rows).set_index("model")


def encode_modalities(model, clipset, modalities: Sequence[str] = ("video", "audio", "text"),
                      max_clips: int | None = None, seed: int = 0, batch_size: int = 256) -> dict:
    """Codes of the same clips in several modalities (eval mode; buffers untouched).

    Returns {"rows": (n,) clip rows used, m: {"quantized": (n, T, L, D) float32, "indices":
    (n, T, L) int64}}; `max_clips` draws a seeded subset.
    """
    n = len(clipset)
    rows = np.arange(n)
    if max_clips is not None and max_clips < n:
        rows = np.sort(np.random.default_rng(seed).choice(n, max_clips, replace=False))
    was_training = model.training
    model.eval()
    out: dict = {"rows": rows}
    try:
        for m in modalities:
            enc = model.encode(clipset.features(m)[rows], m, batch_size=batch_size)
            out[m] = {"quantized": np.stack([_np(q).astype(np.float32) for q in enc.quantized], axis=2),
                      "indices": np.stack([_np(i).astype(np.int64) for i in enc.indices], axis=2)}
    finally:
        model.train(was_training)
    return out
