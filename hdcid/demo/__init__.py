"""The AV-Digits demo corpus: handwritten-digit video, spoken-digit audio, prompt text, written in
the original release formats (`python -m hdcid.demo.build`); Gaussian stand-ins for unit tests.

Names are imported lazily so `python -m hdcid.demo.build` does not import the module twice.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "audio_features": "hdcid.demo.audio",
    "build_demo": "hdcid.demo.build",
    "gaussian_bank": "hdcid.demo.synthetic",
    "gaussian_clipset": "hdcid.demo.synthetic",
    "write_synthetic_corpus": "hdcid.demo.synthetic",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hdcid.demo' has no attribute {name!r}")
