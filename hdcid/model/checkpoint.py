"""Checkpoints: the released DCID / H-DCID format and hdcid's own resumable training format.

* `load_original_checkpoint(path)`: a `torch.save`d dict with `Encoder_parameters` (142 DCID / 262
  H-DCID keys with the paper sizes), optional `Text_ar_lstm_parameters` and `epoch` (docs/method.md
  §2.11). Variant and sizes are inferred from the tensor shapes; loading is strict.
* `export_original_checkpoint(path, model)`: writes that layout (round trips are testable).
* `save_checkpoint(...)` / `load_checkpoint(path)`: everything needed to rebuild the model from its
  stored `ModelConfig` and to resume training exactly (optimizers, RNG states, history).

Files are read with `torch.load(weights_only=True)` (no code runs on load) and written atomically.
hdcid's own files carry a sha256 of their content, verified on load (format version 2; version-1
files without it load with a warning, `add_content_hash` upgrades them). Non-finite weights,
non-integer counters and mis-shaped tensors are refused. Bad files raise `CheckpointError` (a
`DataFormatError`, hence a `ValueError`) naming the path and what is wrong.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.data.formats import DataFormatError
from hdcid.model.integrity import HASH_KEY, content_hash, nonfinite_tensors
from hdcid.model.network import CrossModalModel
from hdcid.utils import atomic_torch_save

FORMAT = "hdcid-checkpoint"
FORMAT_VERSION = 2  # 2: adds the content hash (HASH_KEY); version-1 files still load
_SHOW = 5  # how many offending keys of each kind an error message lists


class CheckpointError(DataFormatError):
    """A checkpoint file that cannot be read or does not match the model it must load into."""


# ----------------------------------------------------------------------------- reading
def _torch_load(path: str | Path, map_location: Any) -> Any:
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


def _require_state(obj: Any, key: str, path: Path) -> Mapping[str, torch.Tensor]:
    sd = obj.get(key)
    if not isinstance(sd, Mapping) or not all(torch.is_tensor(v) for v in sd.values()):
        raise CheckpointError(
            f"{path}: {key!r} must be a state_dict (a mapping of names to tensors), found {type(sd).__name__}"
        )
    return sd


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


def _dim(sd: Mapping[str, torch.Tensor], key: str, axis: int) -> int | None:
    t = sd.get(key)
    if t is None or not torch.is_tensor(t) or t.ndim < (-axis if axis < 0 else axis + 1):
        return None
    return int(t.shape[axis])


_VA, _AA, _TA = "video_self_att.", "audio_self_att.", "text_self_att."
_FF = "encoder.layers.0.linear1."
# Each size the encoder stores, with every (key, axis) that carries it: the size is the majority
# of the keys present, so ONE mis-shaped tensor is out-voted and reported by name (not blamed on
# every other key). Axes may be negative (the codebook is (M, D) or (L, M, D)).
_SIZE_SOURCES: dict[str, list[tuple[str, int]]] = {
    "video_dim": [
        ("Video_encoder.conv_stack.0.weight", 1),
        ("video_semantic_encoder.se_layer.0.weight", 1),
        ("video_semantic_encoder.se_layer.2.weight", 0),
        ("video_semantic_encoder.affine_video_ave.weight", 1),
        (_VA + "affine_matrix.weight", 1),
    ],
    "video_conv_dim": [
        ("Video_encoder.conv_stack.2.weight", 0),
        ("Video_encoder.conv_stack.2.bias", 0),
        ("Video_encoder.conv_stack.4.weight", 0),
        ("Video_encoder.conv_stack.4.bias", 0),
    ],
    "video_club_dim": [("Video_encoder.feed_forward.2.weight", 0), ("Video_encoder.feed_forward.2.bias", 0)],
    "audio_dim": [(_AA + "affine_matrix.weight", 1), ("Audio_encoder.audio_linear.weight", 1)],
    "audio_specific_dim": [("Audio_encoder.audio_linear.weight", 0), ("Audio_encoder.audio_linear.bias", 0)],
    "text_specific_dim": [("Text_encoder.text_linear.weight", 0), ("Text_encoder.text_linear.bias", 0)],
    "hidden_dim": [
        (_AA + "affine_matrix.weight", 0),
        (_AA + "affine_matrix.bias", 0),
        (_VA + "affine_matrix.weight", 0),
        (_TA + "affine_matrix.weight", 0),
        ("Cross_quantizer.embedding", -1),
        ("Cross_quantizer.ema_weight", -1),
    ],
    "ffn_dim": [
        (_AA + _FF + "weight", 0),
        (_AA + _FF + "bias", 0),
        (_VA + _FF + "weight", 0),
        (_TA + _FF + "weight", 0),
    ],
    "n_codes": [
        ("Cross_quantizer.embedding", -2),
        ("Cross_quantizer.ema_weight", -2),
        ("Cross_quantizer.ema_count", -1),
        ("Cross_quantizer.unactivated_count", -1),
    ],
    "text_dim": [(_TA + "affine_matrix.weight", 1), ("Text_encoder.text_linear.weight", 1)],
}


def _vote(enc: Mapping[str, torch.Tensor], sources: list[tuple[str, int]]) -> tuple[int | None, list[str]]:
    """(majority size among the present sources (ties: the first listed), the dissenting keys)."""
    seen = [(k, a, _dim(enc, k, a)) for k, a in sources]
    seen = [(k, a, v) for k, a, v in seen if v is not None]
    if not seen:
        return None, []
    values = [v for _, _, v in seen]
    best = max(values, key=lambda v: (values.count(v), -values.index(v)))
    return best, [f"{k} axis {a} says {v}" for k, a, v in seen if v != best]


def _infer(enc: Mapping[str, torch.Tensor], lstm: Mapping[str, torch.Tensor] | None) -> tuple[ModelConfig, list[str]]:
    """`infer_config` plus the notes on sizes whose keys disagree (each names the odd key)."""
    emb = enc.get("Cross_quantizer.embedding")
    hdcid = any(k.startswith("Video_encoder_2.") for k in enc) or (torch.is_tensor(emb) and emb.ndim == 3)
    base = ModelConfig.paper("hdcid" if hdcid else "dcid")
    got: dict[str, int | bool | None] = {}
    notes: list[str] = []
    for name, sources in _SIZE_SOURCES.items():
        got[name], odd = _vote(enc, sources)
        if odd:
            notes.append(f"{name} = {got[name]} by majority; disagreeing: " + "; ".join(odd))
    text_dim = got.pop("text_dim")
    if text_dim is not None:
        got["text_lstm_hidden"] = text_dim // 2
    layers = {int(k.split(".")[3]) for k in enc if k.startswith("audio_self_att.encoder.layers.")}
    if layers:
        got["n_layers"] = max(layers) + 1
    se = _dim(enc, "video_semantic_encoder.se_layer.0.weight", 0)
    vd = got["video_dim"] or base.video_dim
    if se:
        got["se_reduction"] = max(1, vd // se)
    got["keep_dead_modules"] = any(".encoder_layer." in k for k in enc)
    got["semantic_centering"] = "semantic_centre.running_mean" in enc  # hdcid extension (issue 8)
    if lstm:
        got["word_dim"] = _dim(lstm, "weight_ih_l0", 1)
        got["text_lstm_hidden"] = _dim(lstm, "weight_hh_l0", 1) or got.get("text_lstm_hidden")
        lstm_layers = {k.split("_l")[-1].split("_")[0] for k in lstm if k.startswith("weight_ih_l")}
        if lstm_layers:
            got["text_lstm_layers"] = len(lstm_layers)
    changes = {k: v for k, v in got.items() if v is not None}
    hd = changes.get("hidden_dim", base.hidden_dim)
    if hd % base.n_heads:  # only 4 heads is stored nowhere; keep a divisor that works
        changes["n_heads"] = 1
    try:
        return dataclasses.replace(base, **changes), notes
    except ValueError as e:
        raise CheckpointError(
            f"the sizes inferred from the keys do not make a valid model ({e})" + "".join(f"\n  {n}" for n in notes)
        ) from e


def infer_config(enc: Mapping[str, torch.Tensor], lstm: Mapping[str, torch.Tensor] | None = None) -> ModelConfig:
    """The `ModelConfig` whose shapes match an original `Encoder_parameters` (paper() otherwise).

    Variant: H-DCID iff a `Video_encoder_2.*` key exists or the codebook is 3-D (L, M, D).
    Each size is the majority over every key that carries it (`_SIZE_SOURCES`), so one
    mis-shaped tensor does not change the model. Sizes not stored in the encoder (heads, T, grid,
    CPC/CLUB widths) keep their paper values.
    """
    return _infer(enc, lstm)[0]


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


def _as_int(value: Any, key: str, path: Path, allow_none: bool = False) -> int | None:
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


def load_original_checkpoint(path: str | Path, map_location: Any = "cpu") -> CrossModalModel:
    """A released DCID / H-DCID checkpoint -> `CrossModalModel` in eval mode, float64, exact weights.

    Reads `Encoder_parameters` (required), `Text_ar_lstm_parameters` (optional; without it the
    BiLSTM keeps a fixed random init, seed 0) and `epoch` (stored as `model.source_epoch`, None if
    absent). Decoders, CPC and CLUB are not in released files and keep their init.
    """
    path = Path(path)
    obj = _torch_load(path, map_location)
    if not isinstance(obj, Mapping) or "Encoder_parameters" not in obj:
        found = sorted(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"{path}: expected a dict with 'Encoder_parameters' (and optionally "
            f"'Text_ar_lstm_parameters', 'epoch'), found {found}"
        )
    enc = _require_state(obj, "Encoder_parameters", path)
    lstm = _require_state(obj, "Text_ar_lstm_parameters", path) if "Text_ar_lstm_parameters" in obj else None
    epoch = _as_int(obj.get("epoch"), "epoch", path, allow_none=True)
    try:
        cfg, odd = _infer(enc, lstm)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from e
    with torch.random.fork_rng(devices=[]):  # parts not in the file get a fixed init (seed 0)
        torch.manual_seed(0)  # without touching the caller's RNG stream
        model = CrossModalModel(cfg).double()
    note = f"; variant {cfg.variant!r} inferred from the keys" + "".join(f"\n  {n}" for n in odd)
    check_state_dict(model.encoder, enc, path, "'Encoder_parameters'", note)
    check_finite_state(enc, path, "'Encoder_parameters'")
    model.encoder.load_state_dict(enc, strict=True)
    if lstm is not None:
        check_state_dict(model.text_lstm, lstm, path, "'Text_ar_lstm_parameters'", note)
        check_finite_state(lstm, path, "'Text_ar_lstm_parameters'")
        model.text_lstm.load_state_dict(lstm, strict=True)
    model.source_epoch = epoch
    return model.eval()


def export_original_checkpoint(path: str | Path, model: CrossModalModel, epoch: int | None = None) -> Path:
    """Write `{'Encoder_parameters', 'Text_ar_lstm_parameters', 'epoch'}` like the original (atomic)."""
    ep = epoch if epoch is not None else (model.source_epoch if model.source_epoch is not None else 0)
    obj = {
        "Encoder_parameters": {k: v.detach().cpu().clone() for k, v in model.encoder.state_dict().items()},
        "Text_ar_lstm_parameters": {k: v.detach().cpu().clone() for k, v in model.text_lstm.state_dict().items()},
        "epoch": int(ep),
    }
    return atomic_torch_save(obj, path)


# ----------------------------------------------------------------------------- own format
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
    obj = _torch_load(path, "cpu")
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
    obj = _torch_load(path, map_location if map_location is not None else "cpu")
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
    obj["epoch"], obj["step"] = _as_int(obj["epoch"], "epoch", path), _as_int(obj["step"], "step", path)
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
    obj = _torch_load(path, map_location)
    if isinstance(obj, Mapping) and "Encoder_parameters" in obj:
        return load_original_checkpoint(path, map_location)
    return load_checkpoint(path, map_location)["model"]
