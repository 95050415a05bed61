"""Encode a ClipSet once with a frozen encoder and cache the codes on disk.

A downstream head only ever sees the quantised code vectors of a frozen encoder, so they are
computed once per (model weights, dataset, modality, mode) and stored as an ``.npz`` under
``cache_dir``. The file name is a fingerprint of

* every tensor of ``model.state_dict()`` (parameters AND buffers, e.g. the codebook), hashed as bytes,
* the dataset: ``clipset.name``, its ids and a hash of the feature array of the modality,
* the modality and the mode (eval, or ``train_mode`` with its number of draws and seed).

so a changed checkpoint or codebook gives a new file and a present file is reused as is.

Train mode (the original protocol, docs/method.md §5.1): the original keeps the encoder in ``train()`` mode
while the head trains, so transformer dropout makes the codes differ from epoch to epoch. Encoding
every epoch would defeat the cache, so ``train_mode=True`` stores ``n_draws`` independent dropout
draws (seeded with ``seed``; in a second file beside the eval-mode codes, which are shared) and epoch
``e`` uses draw ``e % n_draws`` (``Codes.draw(e)``). This is an
APPROXIMATION of the original (K distinct stochastic encodings instead of a fresh one per epoch);
evaluation always uses eval-mode codes.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hdcid.utils import GLOBAL_STATE_LOCK, atomic_path

__all__ = ["Codes", "encode_cached", "encode_clipset", "model_fingerprint", "dataset_fingerprint"]

CACHE_VERSION = 1


@dataclass
class Codes:
    """Codes of one ClipSet in one modality.

    quantized: (N, T, L, D) float32 code vectors (eval mode, or draw 0 in train mode)
    indices:   (N, T, L) int64 code indices
    labels:    (N, T, K+1) float32, last column background
    ids:       N clip ids
    draws_quantized / draws_indices: (K, N, T, L, D) / (K, N, T, L) train-mode dropout draws, or None
    """

    quantized: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    ids: list
    draws_quantized: np.ndarray | None = None
    draws_indices: np.ndarray | None = None

    def __len__(self) -> int:
        return self.quantized.shape[0]

    @property
    def n_draws(self) -> int:
        return 0 if self.draws_quantized is None else self.draws_quantized.shape[0]

    def draw(self, epoch: int) -> Codes:
        """The codes the head sees in epoch ``epoch``: draw ``epoch % K`` (self without draws)."""
        if self.draws_quantized is None:
            return self
        k = epoch % self.n_draws
        return Codes(self.draws_quantized[k], self.draws_indices[k], self.labels, self.ids)

    def subset(self, idx) -> Codes:
        idx = np.asarray(idx)
        dq = None if self.draws_quantized is None else self.draws_quantized[:, idx]
        di = None if self.draws_indices is None else self.draws_indices[:, idx]
        return Codes(self.quantized[idx], self.indices[idx], self.labels[idx], [self.ids[i] for i in idx], dq, di)


def _hash_array(h, arr: np.ndarray) -> None:
    arr = np.ascontiguousarray(arr)
    h.update(str(arr.dtype).encode())
    h.update(str(arr.shape).encode())
    h.update(memoryview(arr.reshape(-1).view(np.uint8)))


def model_fingerprint(model: torch.nn.Module) -> str:
    """Hex digest of every parameter and buffer of ``model.state_dict()`` (names, dtypes, bytes)."""
    h = hashlib.blake2b(digest_size=16)
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            _hash_array(h, t.detach().cpu().contiguous().numpy())
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


def dataset_fingerprint(clipset, modality: str) -> str:
    """Hex digest of a ClipSet's name, ids, labels and the feature array of ``modality``."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(clipset.name).encode())
    h.update("\n".join(map(str, clipset.ids)).encode())
    h.update(modality.encode())
    _hash_array(h, np.asarray(clipset.labels))
    _hash_array(h, np.asarray(clipset.features(modality)))
    return h.hexdigest()


def _model_dtype_device(model: torch.nn.Module) -> tuple[torch.dtype, torch.device]:
    for p in model.parameters():
        return p.dtype, p.device
    return torch.float32, torch.device("cpu")


@torch.no_grad()
def encode_clipset(
    model, features: np.ndarray, modality: str, *, batch_size: int = 256, train_mode: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Encode features (N, T, ...) -> (quantized (N, T, L, D) float32, indices (N, T, L) int64).

    Runs on the model's own device and dtype; the model's train/eval mode is restored afterwards.
    """
    dtype, device = _model_dtype_device(model)
    q_out, i_out = [], []
    with GLOBAL_STATE_LOCK:  # the model's mode is shared by every thread that encodes with it
        was_training = model.training
        model.train(train_mode)
        try:
            for start in range(0, features.shape[0], batch_size):
                x = torch.as_tensor(features[start : start + batch_size]).to(device, dtype)
                enc = model.encode(x, modality)
                q = torch.stack([lv.float() for lv in enc.quantized], dim=2)  # (B, T, L, D)
                i = torch.stack([lv.long() for lv in enc.indices], dim=2)  # (B, T, L)
                q_out.append(q.cpu().numpy())
                i_out.append(i.cpu().numpy())
        finally:
            model.train(was_training)
    return np.concatenate(q_out).astype(np.float32), np.concatenate(i_out).astype(np.int64)


def _cache_file(base: str, clipset, modality, cache_dir, train_mode, n_draws, seed) -> Path:
    """Cache path from ``base`` (model + dataset fingerprints), the modality and the mode."""
    mode = f"train{n_draws}s{seed}" if train_mode else "eval"
    h = hashlib.blake2b(digest_size=12)
    h.update(f"v{CACHE_VERSION}|{base}|{modality}|{mode}".encode())
    safe = "".join(c if c.isalnum() else "-" for c in str(clipset.name))
    return Path(cache_dir) / f"codes_{safe}_{modality}_{mode}_{h.hexdigest()}.npz"


def _load(path: Path) -> Codes:
    try:
        with np.load(path, allow_pickle=False) as z:
            return Codes(z["quantized"], z["indices"], z["labels"], [str(s) for s in z["ids"]])
    except (KeyError, ValueError, OSError) as err:
        raise ValueError(
            f"{path}: not a valid code cache (expected keys quantized, indices, labels, ids): {err}"
        ) from err


def encode_cached(
    model,
    clipset,
    modality: str,
    cache_dir,
    *,
    train_mode: bool = False,
    batch_size: int = 256,
    n_draws: int = 5,
    seed: int = 0,
    model_fp: str | None = None,
    dataset_fp: str | None = None,
) -> Codes:
    """Codes of ``clipset`` in ``modality``, read from ``cache_dir`` or computed and stored.

    model: has ``encode(x, modality) -> Encoded`` (lists per level of (B,T,D) / (B,T)).
    train_mode=False (default, honest): encoder in eval mode, deterministic codes.
    train_mode=True (original protocol): also ``n_draws`` dropout draws, ``Codes.draw(epoch)``.
    model_fp / dataset_fp: ``model_fingerprint(model)`` / ``dataset_fingerprint(clipset, modality)``
    when the caller already has them (hashing the weights once for several ClipSets, a ClipSet's
    features once for several models).
    Returns Codes with quantized (N, T, L, D) float32, indices (N, T, L), labels (N, T, K+1).
    """
    feats = clipset.features(modality)
    if n_draws < 1:
        raise ValueError(f"encode_cached: n_draws must be >= 1, got {n_draws}")
    base = f"{model_fp or model_fingerprint(model)}|{dataset_fp or dataset_fingerprint(clipset, modality)}"
    path = _cache_file(base, clipset, modality, cache_dir, False, n_draws, seed)
    with _file_lock(path):  # grid cells in threads that need the same codes encode them once
        if not path.exists():
            q, idx = encode_clipset(model, feats, modality, batch_size=batch_size)
            _save(
                path,
                quantized=q,
                indices=idx,
                labels=np.asarray(clipset.labels, np.float32),
                ids=np.asarray([str(i) for i in clipset.ids]),
            )
    codes = _load(path)
    if not train_mode:
        return codes
    # train mode: the dropout draws live in their own file; the eval codes above are shared
    dpath = _cache_file(base, clipset, modality, cache_dir, True, n_draws, seed)
    with _file_lock(dpath):
        _draws_to(dpath, model, feats, modality, batch_size, n_draws, seed)
    try:
        with np.load(dpath, allow_pickle=False) as z:
            codes.draws_quantized, codes.draws_indices = z["draws_quantized"], z["draws_indices"]
    except (KeyError, ValueError, OSError) as err:
        raise ValueError(
            f"{dpath}: not a valid dropout-draw cache (expected keys draws_quantized, draws_indices): {err}"
        ) from err
    return codes


_FILE_LOCKS: dict[str, threading.Lock] = {}
_FILE_LOCKS_GUARD = threading.Lock()


def _new_file_locks() -> None:
    """Fresh file locks in a forked child (a lock another thread of the parent held at the fork
    would never be released there; ``hdcid.workers``)."""
    global _FILE_LOCKS, _FILE_LOCKS_GUARD
    _FILE_LOCKS, _FILE_LOCKS_GUARD = {}, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_file_locks)


def _file_lock(path: Path) -> threading.Lock:
    """One lock per cache file, for the threads of this process."""
    with _FILE_LOCKS_GUARD:
        return _FILE_LOCKS.setdefault(str(Path(path).resolve()), threading.Lock())


def _draws_to(dpath: Path, model, feats, modality: str, batch_size: int, n_draws: int, seed: int) -> None:
    """Write the ``n_draws`` seeded train-mode encodings of ``feats`` to ``dpath`` unless it exists."""
    if dpath.exists():
        return
    cb_before = model.codebooks()  # a copy
    draws = []
    with GLOBAL_STATE_LOCK:  # seeded dropout masks, whatever other threads draw
        cpu_state = torch.get_rng_state()
        for k in range(n_draws):
            torch.manual_seed(seed * 1000 + k)
            draws.append(encode_clipset(model, feats, modality, batch_size=batch_size, train_mode=True))
        torch.set_rng_state(cpu_state)
    if not torch.equal(cb_before, model.codebooks()):
        raise RuntimeError("encode_cached: a train-mode encode changed the codebook buffers")
    _save(
        dpath,
        draws_quantized=np.stack([d[0] for d in draws]),  # (K, N, T, L, D)
        draws_indices=np.stack([d[1] for d in draws]),
    )  # (K, N, T, L)


def _save(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
