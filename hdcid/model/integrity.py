"""Integrity of stored tensors: a content hash of a nested checkpoint object and a finiteness scan.

Used by `hdcid.model.checkpoint` (hdcid's own format stores `content_hash` under `HASH_KEY` and
verifies it on load; every loaded state_dict is scanned with `nonfinite_tensors`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch

HASH_KEY = "content_sha256"


def content_hash(obj: Any) -> str:
    """sha256 (hex) of everything in a checkpoint dict except `HASH_KEY`: every tensor's key path,
    dtype, shape and bytes, and the repr of every other leaf, in sorted key order. Catches a
    tensor silently changed on disk (e.g. bytes zeroed in the middle of the file)."""
    h = hashlib.sha256()

    def walk(x: Any, where: str) -> None:
        if torch.is_tensor(x):
            t = x.detach().cpu().contiguous().reshape(-1)
            h.update(f"{where}|T|{x.dtype}|{tuple(x.shape)}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, Mapping):
            keys = sorted((k for k in x if not (where == "" and k == HASH_KEY)), key=repr)
            h.update(f"{where}|D{len(keys)}|".encode())
            for k in keys:
                walk(x[k], f"{where}/{k!r}")
        elif isinstance(x, (list, tuple)):
            h.update(f"{where}|{type(x).__name__}{len(x)}|".encode())
            for i, v in enumerate(x):
                walk(v, f"{where}[{i}]")
        else:
            h.update(f"{where}|{type(x).__name__}|{x!r}|".encode())

    walk(obj, "")
    return h.hexdigest()


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """One line per floating tensor of `state` holding NaN/inf: its key, how many values and, for
    2-D and larger tensors (e.g. the codebook (M, D) / (L, M, D)), how many rows and the first."""
    bad = []
    for k, t in state.items():
        if torch.is_tensor(t) and (t.is_floating_point() or t.is_complex()):
            nf = ~torch.isfinite(t)
            if nf.any():
                where = ""
                if t.ndim >= 2:
                    rows = torch.nonzero(nf.reshape(-1, t.shape[-1]).any(dim=1)).flatten()
                    where = f" in {rows.numel()} row(s) of the last axis (first flat row {int(rows[0])})"
                bad.append(f"{k} has {int(nf.sum())} NaN/inf values{where}")
    return bad
