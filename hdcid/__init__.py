"""hdcid: DCID, H-DCID and TOC for multimodal unified discrete representations.

The public names below are imported lazily, so `import hdcid` stays fast and a notebook that only
needs the TOC does not pay for the model or the data readers.
"""

from __future__ import annotations

import importlib
from typing import Any

from hdcid.config import ModelConfig, TrainConfig
from hdcid.utils import get_device, is_quick, seed_everything

__version__ = "0.1.0"

_LAZY = {
    # model and checkpoints
    "CrossModalModel": "hdcid.model",
    "load_original_checkpoint": "hdcid.model",
    "save_checkpoint": "hdcid.model",
    "load_checkpoint": "hdcid.model",
    "load_model": "hdcid.model",
    # pretraining
    "Pretrainer": "hdcid.train",
    "load_or_pretrain": "hdcid.train",
    # TOC
    "toc_scores": "hdcid.toc",
    "toc_select": "hdcid.toc",
    "TOCSettings": "hdcid.toc",
    # downstream
    "encode_cached": "hdcid.downstream",
    "run_task": "hdcid.downstream",
    "TaskOptions": "hdcid.downstream",
    "run_grid": "hdcid.downstream",
    # data
    "ClipSet": "hdcid.data",
    "DataFormatError": "hdcid.data",
    "build_demo": "hdcid.demo",
}

__all__ = ["ModelConfig", "TrainConfig", "get_device", "is_quick", "seed_everything", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hdcid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
