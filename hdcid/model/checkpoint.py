"""Checkpoints: the released DCID / H-DCID format and hdcid's own resumable training format.

* `load_original_checkpoint(path)`: a `torch.save`d dict with `Encoder_parameters` (142 DCID / 262
  H-DCID keys with the paper sizes), optional `Text_ar_lstm_parameters` and `epoch` (spec pretrain.md
  2.10, 3.8). Variant and sizes are inferred from the tensor shapes; loading is strict.
* `export_original_checkpoint(path, model)`: writes that layout (round trips are testable).
* `save_checkpoint(...)` / `load_checkpoint(path)`: everything needed to rebuild the model from its
  stored `ModelConfig` and to resume training exactly (optimizers, RNG states, history).

Files are read with `torch.load(weights_only=True)` and written atomically. Bad files raise
`CheckpointError` (a `DataFormatError`, hence a `ValueError`) naming the path and what is wrong.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.data.formats import DataFormatError
from hdcid.model.network import CrossModalModel
from hdcid.utils import atomic_torch_save

FORMAT = "hdcid-checkpoint"
FORMAT_VERSION = 1
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
            f"{path}: {key!r} must be a state_dict (a mapping of names to tensors), "
            f"found {type(sd).__name__}"
        )
    return sd


def check_state_dict(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, what: str,
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
    lines = [f"{path}: {what} does not match the model ({len(expected)} keys expected, "
             f"{len(found)} found){note}"]
    if missing:
        lines.append(f"  {len(missing)} missing keys: " + ", ".join(missing[:_SHOW])
                     + (" ..." if len(missing) > _SHOW else ""))
    if unknown:
        lines.append(f"  {len(unknown)} unknown keys: " + ", ".join(unknown[:_SHOW])
                     + (" ..." if len(unknown) > _SHOW else ""))
    if wrong:
        lines.append(f"  {len(wrong)} keys with the wrong shape: " + ", ".join(
            f"{k} expected {list(expected[k])} found {list(found[k])}" for k in wrong[:_SHOW]
        ) + (" ..." if len(wrong) > _SHOW else ""))
    raise CheckpointError("\n".join(lines))


def _dim(sd: Mapping[str, torch.Tensor], key: str, axis: int) -> int | None:
    t = sd.get(key)
    return int(t.shape[axis]) if t is not None and t.ndim > axis else None


def infer_config(enc: Mapping[str, torch.Tensor], lstm: Mapping[str, torch.Tensor] | None = None) -> ModelConfig:
    """The `ModelConfig` whose shapes match an original `Encoder_parameters` (paper() otherwise).

    Variant: H-DCID iff a `Video_encoder_2.*` key exists or the codebook is 3-D (L, M, D).
    Sizes not stored in the encoder (heads, T, grid, CPC/CLUB widths) keep their paper values.
    """
    emb = enc.get("Cross_quantizer.embedding")
    hdcid = any(k.startswith("Video_encoder_2.") for k in enc) or (emb is not None and emb.ndim == 3)
    base = ModelConfig.paper("hdcid" if hdcid else "dcid")
    got: dict[str, int | bool | None] = {
        "video_dim": _dim(enc, "Video_encoder.conv_stack.0.weight", 1),
        "video_conv_dim": _dim(enc, "Video_encoder.conv_stack.2.weight", 0),
        "video_club_dim": _dim(enc, "Video_encoder.feed_forward.2.weight", 0),
        "audio_dim": _dim(enc, "audio_self_att.affine_matrix.weight", 1),
        "audio_specific_dim": _dim(enc, "Audio_encoder.audio_linear.weight", 0),
        "text_specific_dim": _dim(enc, "Text_encoder.text_linear.weight", 0),
        "hidden_dim": _dim(enc, "audio_self_att.affine_matrix.weight", 0),
        "ffn_dim": _dim(enc, "audio_self_att.encoder.layers.0.linear1.weight", 0),
        "n_codes": _dim(enc, "Cross_quantizer.embedding", emb.ndim - 2) if emb is not None else None,
    }
    text_dim = _dim(enc, "text_self_att.affine_matrix.weight", 1)
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
    return dataclasses.replace(base, **changes)


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
    cfg = infer_config(enc, lstm)
    with torch.random.fork_rng(devices=[]):  # parts not in the file get a fixed init (seed 0)
        torch.manual_seed(0)                 # without touching the caller's RNG stream
        model = CrossModalModel(cfg).double()
    note = f"; variant {cfg.variant!r} inferred from the keys"
    check_state_dict(model.encoder, enc, path, "'Encoder_parameters'", note)
    model.encoder.load_state_dict(enc, strict=True)
    if lstm is not None:
        check_state_dict(model.text_lstm, lstm, path, "'Text_ar_lstm_parameters'", note)
        model.text_lstm.load_state_dict(lstm, strict=True)
    epoch = obj.get("epoch")
    model.source_epoch = int(epoch) if epoch is not None else None
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
    return atomic_torch_save(obj, path)


def load_checkpoint(path: str | Path, map_location: Any = None) -> dict:
    """Read a `save_checkpoint` file; returns its dict plus `model` (rebuilt, weights loaded, eval
    mode, stored dtype), `model_cfg` / `train_cfg` objects and `history` as a DataFrame.

    `map_location=None` loads to CPU.
    """
    path = Path(path)
    obj = _torch_load(path, map_location if map_location is not None else "cpu")
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = sorted(obj)[:10] if isinstance(obj, dict) else type(obj).__name__
        hint = (" (this looks like an original release checkpoint: use load_original_checkpoint)"
                if isinstance(obj, dict) and "Encoder_parameters" in obj else "")
        raise CheckpointError(f"{path}: expected an hdcid checkpoint dict with format={FORMAT!r}, found {found}{hint}")
    need = ("model_config", "model_state", "optimizers", "step", "epoch", "history", "dtype")
    missing = [k for k in need if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: hdcid checkpoint lacks keys {missing}; has {sorted(obj)}")
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
