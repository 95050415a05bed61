"""The released DCID / H-DCID checkpoint layout (docs/method.md §2.11).

* `load_original_checkpoint(path)`: a `torch.save`d dict with `Encoder_parameters` (142 DCID / 262
  H-DCID keys with the paper sizes), optional `Text_ar_lstm_parameters` and `epoch`. Variant and
  sizes are inferred from the tensor shapes (`infer_config`, a majority over every key that
  carries a size); loading is strict.
* `export_original_checkpoint(path, model)`: writes that layout (round trips are testable).

Reading and the checks (keys, shapes, finiteness, counters) are shared with hdcid's own format:
hdcid.model.integrity. Bad files raise `CheckpointError` naming the path and what is wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdcid.config import ModelConfig
from hdcid.model.integrity import (
    CheckpointError,
    check_finite_state,
    check_state_dict,
    checked_int,
    read_checkpoint_file,
)
from hdcid.model.network import CrossModalModel
from hdcid.utils import atomic_torch_save


def _require_state(obj: Any, key: str, path: Path) -> Mapping[str, torch.Tensor]:
    sd = obj.get(key)
    if not isinstance(sd, Mapping) or not all(torch.is_tensor(v) for v in sd.values()):
        raise CheckpointError(
            f"{path}: {key!r} must be a state_dict (a mapping of names to tensors), found {type(sd).__name__}"
        )
    return sd


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


def load_original_checkpoint(path: str | Path, map_location: Any = "cpu") -> CrossModalModel:
    """A released DCID / H-DCID checkpoint -> `CrossModalModel` in eval mode, float64, exact weights.

    Reads `Encoder_parameters` (required), `Text_ar_lstm_parameters` (optional; without it the
    BiLSTM keeps a fixed random init, seed 0) and `epoch` (stored as `model.source_epoch`, None if
    absent). Decoders, CPC and CLUB are not in released files and keep their init.
    """
    path = Path(path)
    obj = read_checkpoint_file(path, map_location)
    if not isinstance(obj, Mapping) or "Encoder_parameters" not in obj:
        found = sorted(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(
            f"{path}: expected a dict with 'Encoder_parameters' (and optionally "
            f"'Text_ar_lstm_parameters', 'epoch'), found {found}"
        )
    enc = _require_state(obj, "Encoder_parameters", path)
    lstm = _require_state(obj, "Text_ar_lstm_parameters", path) if "Text_ar_lstm_parameters" in obj else None
    epoch = checked_int(obj.get("epoch"), "epoch", path, allow_none=True)
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
