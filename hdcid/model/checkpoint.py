"""hdcid's own resumable checkpoint format, and `load_model` for either layout.

* `save_checkpoint(...)` / `load_checkpoint(path)`: everything needed to rebuild the model from its
  stored `ModelConfig` and to resume training exactly (optimizers, RNG states, history).
* `load_model(path)`: a model from this format or the released one
  (hdcid.model.original_checkpoint: `load_original_checkpoint`, `export_original_checkpoint`).

Files are read with `torch.load(weights_only=True)` (no code runs on load) and written atomically.
hdcid's own files carry a sha256 of their content, verified on load (format version 2; version-1
files without it load with a warning, `add_content_hash` upgrades them). Non-finite weights,
non-integer counters and mis-shaped tensors are refused (checks: hdcid.model.integrity). Bad
files raise `CheckpointError` (a `DataFormatError`, hence a `ValueError`) naming the path and
what is wrong.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.model.integrity import (
    HASH_KEY,
    CheckpointError,
    check_finite_state,
    check_state_dict,
    checked_int,
    content_hash,
    read_checkpoint_file,
)
from hdcid.model.network import CrossModalModel
from hdcid.model.original_checkpoint import load_original_checkpoint
from hdcid.utils import atomic_torch_save

FORMAT = "hdcid-checkpoint"
FORMAT_VERSION = 2  # 2: adds the content hash (HASH_KEY); version-1 files still load


def _verify_hash(obj: dict, path: Path) -> None:
    """Check `HASH_KEY`; a file written before hashes existed (format version 1) loads with a warning."""
    stored = obj.get(HASH_KEY)
    if stored is None:
        warnings.warn(
            f"{path}: hdcid checkpoint format version {obj.get('version')} has no content hash, so "
            "silent corruption cannot be detected; it is loaded as is. Run "
            "hdcid.model.checkpoint.add_content_hash(path) once to add one.",
            UserWarning,
            stacklevel=3,
        )
        return
    found = content_hash(obj)
    if found != stored:
        raise CheckpointError(
            f"{path}: content hash mismatch (stored {stored[:12]}..., computed {found[:12]}...): "
            "the file was changed or corrupted after it was written; do not use it "
            "(re-train, or resume from an earlier epoch file)"
        )


def add_content_hash(path: str | Path) -> Path:
    """Rewrite an older hdcid checkpoint (format version 1, no hash) with its content hash (atomic).
    Trusts the file as it is now; a file that already has a hash is verified and left unchanged."""
    path = Path(path)
    obj = read_checkpoint_file(path, "cpu")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an hdcid checkpoint (format={FORMAT!r}); nothing to hash")
    if HASH_KEY in obj:
        _verify_hash(obj, path)
        return path
    obj["version"] = FORMAT_VERSION
    obj[HASH_KEY] = content_hash(obj)
    return atomic_torch_save(obj, path)


def _history_to_plain(history: Any) -> dict:
    if history is None:
        return {}
    df = history if isinstance(history, pd.DataFrame) else pd.DataFrame(history)
    return {str(c): df[c].tolist() for c in df.columns}


def save_checkpoint(
    path: str | Path,
    model: CrossModalModel,
    *,
    train_cfg: TrainConfig | None,
    optimizers: Mapping[str, Any],
    step: int,
    epoch: int,
    history: Any,
    rng_state: Mapping[str, Any] | None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically save model weights + `ModelConfig`, optimizers, RNG states and history.

    `optimizers`: name -> optimizer (its `state_dict()` is stored) or an already plain state dict.
    `history`: a DataFrame or a list of row dicts (stored as plain columns). `rng_state` and `extra`
    must hold only tensors / numbers / strings / lists / dicts (they are read with weights_only).
    """
    obj = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model_config": model.cfg.to_dict(),
        "train_config": train_cfg.to_dict() if train_cfg is not None else None,
        "dtype": str(model.dtype).replace("torch.", ""),
        "model_state": model.state_dict(),
        "optimizers": {k: (o.state_dict() if hasattr(o, "state_dict") else o) for k, o in optimizers.items()},
        "step": int(step),
        "epoch": int(epoch),
        "history": _history_to_plain(history),
        "rng_state": dict(rng_state) if rng_state is not None else None,
        "extra": dict(extra) if extra is not None else {},
        "source_epoch": model.source_epoch,
    }
    obj[HASH_KEY] = content_hash(obj)
    return atomic_torch_save(obj, path)


def load_checkpoint(path: str | Path, map_location: Any = None) -> dict:
    """Read a `save_checkpoint` file; returns its dict plus `model` (rebuilt, weights loaded, eval
    mode, stored dtype), `model_cfg` / `train_cfg` objects and `history` as a DataFrame.

    `map_location=None` loads to CPU. The stored content hash is verified (a mismatch raises
    `CheckpointError`); a version-1 file without one loads with a `UserWarning`
    (`add_content_hash(path)` upgrades it). `epoch` / `step` must be integers and every model
    tensor finite.
    """
    path = Path(path)
    obj = read_checkpoint_file(path, map_location if map_location is not None else "cpu")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = sorted(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
        hint = (
            " (this looks like an original release checkpoint: use load_original_checkpoint)"
            if isinstance(obj, dict) and "Encoder_parameters" in obj
            else ""
        )
        raise CheckpointError(f"{path}: expected an hdcid checkpoint dict with format={FORMAT!r}, found {found}{hint}")
    need = ("model_config", "model_state", "optimizers", "step", "epoch", "history", "dtype")
    missing = [k for k in need if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: hdcid checkpoint lacks keys {missing}; has {sorted(obj)}")
    _verify_hash(obj, path)
    obj["epoch"], obj["step"] = checked_int(obj["epoch"], "epoch", path), checked_int(obj["step"], "step", path)
    if not isinstance(obj["model_state"], Mapping):
        raise CheckpointError(f"{path}: 'model_state' must be a state_dict, found {type(obj['model_state']).__name__}")
    try:
        cfg = ModelConfig.from_dict(obj["model_config"])
        tcfg = TrainConfig.from_dict(obj["train_config"]) if obj.get("train_config") else None
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: stored config is invalid ({e})") from e
    dtype = getattr(torch, obj["dtype"], None)
    if not isinstance(dtype, torch.dtype):
        raise CheckpointError(f"{path}: unknown dtype {obj['dtype']!r}")
    model = CrossModalModel(cfg).to(dtype=dtype)
    if map_location is not None:
        model = model.to(map_location)
    state = obj["model_state"]
    check_state_dict(model, state, path, "'model_state'")
    check_finite_state(state, path, "'model_state'")
    model.load_state_dict(state, strict=True)
    model.source_epoch = obj.get("source_epoch")
    out = dict(obj)
    out.update(model=model.eval(), model_cfg=cfg, train_cfg=tcfg, history=pd.DataFrame(obj["history"]))
    return out


def load_model(path: str | Path, map_location: Any = "cpu") -> CrossModalModel:
    """A model from either checkpoint layout: the authors' release (`Encoder_parameters`) or
    hdcid's own (`save_checkpoint`). Read once, with `weights_only=True`."""
    obj = read_checkpoint_file(path, map_location)
    if isinstance(obj, Mapping) and "Encoder_parameters" in obj:
        return load_original_checkpoint(path, map_location)
    return load_checkpoint(path, map_location)["model"]
