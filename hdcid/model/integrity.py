"""Integrity of stored checkpoints, shared by both layouts (the released one:
`hdcid.model.original_checkpoint`; hdcid's own: `hdcid.model.checkpoint`).

`read_checkpoint_file` reads with `torch.load(weights_only=True)` (no code runs on load) and turns
any failure into `CheckpointError` (a `DataFormatError`, hence a `ValueError`) naming the path.
`check_state_dict` (missing / unknown / mis-shaped keys), `check_finite_state` (NaN/inf, via
`nonfinite_tensors`) and `checked_int` (stored counters) refuse what would load wrongly.
`content_hash`: the sha256 hdcid's own format stores under `HASH_KEY` and verifies on load.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdcid.data.formats import DataFormatError

HASH_KEY = "content_sha256"
_SHOW = 5  # how many offending keys of each kind an error message lists


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


class CheckpointError(DataFormatError):
    """A checkpoint file that cannot be read or does not match the model it must load into."""


def read_checkpoint_file(path: str | Path, map_location: Any) -> Any:
    """`torch.load(path, weights_only=True)`; a missing, truncated, corrupt or unsafe file raises
    `CheckpointError` naming the path."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (expected an existing file)")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - truncated / not a torch file / unsafe pickle
        raise CheckpointError(
            f"{path}: cannot be read as a torch checkpoint ({type(e).__name__}: {e}); "
            "the file may be truncated, corrupt or not written by torch.save"
        ) from e


def check_state_dict(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    path: str | Path,
    what: str,
    note: str = "",
) -> None:
    """Raise `CheckpointError` listing missing, unknown and mis-shaped keys of `state` vs `module`."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    missing = [k for k in expected if k not in found]
    unknown = [k for k in found if k not in expected]
    wrong = [k for k in expected if k in found and expected[k] != found[k]]
    if not (missing or unknown or wrong):
        return
    lines = [f"{path}: {what} does not match the model ({len(expected)} keys expected, {len(found)} found){note}"]
    if missing:
        lines.append(
            f"  {len(missing)} missing keys: " + ", ".join(missing[:_SHOW]) + (" ..." if len(missing) > _SHOW else "")
        )
    if unknown:
        lines.append(
            f"  {len(unknown)} unknown keys: " + ", ".join(unknown[:_SHOW]) + (" ..." if len(unknown) > _SHOW else "")
        )
    if wrong:
        lines.append(
            f"  {len(wrong)} keys with the wrong shape: "
            + ", ".join(f"{k} expected {list(expected[k])} found {list(found[k])}" for k in wrong[:_SHOW])
            + (" ..." if len(wrong) > _SHOW else "")
        )
    raise CheckpointError("\n".join(lines))


def check_finite_state(state: Mapping[str, torch.Tensor], path: str | Path, what: str) -> None:
    """Raise `CheckpointError` naming every floating tensor of `state` holding NaN/inf (for the
    codebook: which code rows), e.g. a NaN code row that would otherwise load and be used."""
    bad = nonfinite_tensors(state)
    if bad:
        raise CheckpointError(
            f"{path}: {what} holds non-finite values; the model would compute NaN:\n  "
            + "\n  ".join(bad[:_SHOW])
            + (" ..." if len(bad) > _SHOW else "")
        )


def checked_int(value: Any, key: str, path: Path, allow_none: bool = False) -> int | None:
    """A stored counter (`epoch`, `step`) as int; a 0-d integer tensor or an integral float is
    fine, "five" or 2.5 raises CheckpointError naming the key."""
    if value is None and allow_none:
        return None
    if torch.is_tensor(value) and value.ndim == 0:
        value = value.item()
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or int(value) != value
    ):
        raise CheckpointError(f"{path}: key {key!r} must be an integer, found {type(value).__name__} {value!r}")
    return int(value)
