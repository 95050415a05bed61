"""The folder of a pretraining run: its `epoch-{k}.pt` checkpoints, and whether one of them was
written with the configs asked for (resume: only `epochs` may differ, and only grow; load-or-train:
the same configs exactly). Used by `hdcid.train` (notebooks 01_pretraining, 04_hierarchical_alignment).
"""

from __future__ import annotations

import re
from pathlib import Path

from hdcid.config import ModelConfig, TrainConfig

__all__ = ["list_checkpoints", "config_differences", "resume_differences", "same_run"]

_CKPT = re.compile(r"^epoch-(\d+)\.pt$")


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """`epoch-{k}.pt` files in `out_dir`, sorted by k."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if (m := _CKPT.match(p.name))]
    return [p for _, p in sorted(found)]


def config_differences(stored: dict, wanted: dict, what: str) -> list[str]:
    """'<what>.<field>: <stored> -> <wanted>' for every field that differs (missing = <absent>)."""
    keys = list(wanted) + [k for k in stored if k not in wanted]
    fmt = lambda d, k: repr(d[k]) if k in d else "<absent>"  # noqa: E731
    return [
        f"{what}.{k}: {fmt(stored, k)} -> {fmt(wanted, k)}"
        for k in keys
        if stored.get(k, object) != wanted.get(k, object)
    ]


def _stored_model_config(ck: dict) -> dict:
    """A checkpoint's ModelConfig dict with fields added since it was written at their defaults
    (and retired ones dropped), so a switch added later does not make an old run look different."""
    return ModelConfig.from_dict(ck["model_config"]).to_dict()


def _stored_train_config(ck: dict) -> dict:
    """A checkpoint's TrainConfig dict, normalised as `_stored_model_config` (empty if none)."""
    stored = ck.get("train_config")
    return TrainConfig.from_dict(stored).to_dict() if stored else {}


def resume_differences(ck: dict, model_cfg: ModelConfig, train_cfg: TrainConfig) -> list[str]:
    """What forbids resuming from the loaded checkpoint `ck` with these configs, field by field
    (stored -> wanted); empty when it may resume. `epochs` may differ when it grows (extend a run)."""
    diff = config_differences(_stored_model_config(ck), model_cfg.to_dict(), "ModelConfig")
    stored_train = _stored_train_config(ck)
    wanted_train = train_cfg.to_dict()
    if stored_train.get("epochs", 0) <= wanted_train["epochs"]:  # more epochs: extend the run
        stored_train["epochs"] = wanted_train["epochs"]
    return diff + config_differences(stored_train, wanted_train, "TrainConfig")


def same_run(ck: dict, model_cfg: ModelConfig, train_cfg: TrainConfig) -> bool:
    """Whether the loaded checkpoint `ck` was written with exactly these configs."""
    return _stored_model_config(ck) == model_cfg.to_dict() and _stored_train_config(ck) == train_cfg.to_dict()
