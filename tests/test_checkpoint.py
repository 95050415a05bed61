"""Original release checkpoints (load / export) and hdcid's own resumable checkpoint format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.model.checkpoint import load_checkpoint, save_checkpoint
from hdcid.model.integrity import CheckpointError, content_hash
from hdcid.model.network import CrossModalModel
from hdcid.model.original_checkpoint import export_original_checkpoint, load_original_checkpoint

# The released checkpoints' key lists (copied verbatim from the method spec).
KEYS = Path(__file__).resolve().parent.parent / "docs" / "spec" / "checkpoint_keys"


def _json(name: str) -> dict:
    path = KEYS / name
    return json.loads(path.read_text())


def _fake_state(shapes: dict, seed: int) -> dict:
    """Seeded float64 tensors of the given shapes. Big ones are a random last-dim row broadcast
    (stride 0 storage, so the file stays small) plus a per-tensor offset."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, s in shapes.items():
        n = 1
        for d in s:
            n *= d
        if n > 50_000:
            out[k] = torch.randn(s[-1], generator=g, dtype=torch.float64).expand(*s)
        else:
            out[k] = torch.randn(*s, generator=g, dtype=torch.float64)
    return out


@pytest.mark.parametrize("variant", ["dcid", "hdcid"])
def test_load_original_from_released_key_lists(tmp_path, variant):
    enc = _fake_state(_json(f"{variant}_encoder_keys.json"), seed=1)
    lstm = _fake_state(_json("text_lstm_keys.json"), seed=2)
    path = tmp_path / "released.pt"
    torch.save({"Encoder_parameters": enc, "Text_ar_lstm_parameters": lstm, "epoch": 3}, path)
    model = load_original_checkpoint(path)
    assert model.cfg.variant == variant
    assert model.cfg == ModelConfig.paper(variant)
    assert not model.training and model.dtype == torch.float64
    assert model.source_epoch == 3
    got = model.encoder.state_dict()
    assert all(torch.equal(got[k], enc[k]) for k in enc)
    assert all(torch.equal(model.text_lstm.state_dict()[k], lstm[k]) for k in lstm)
    assert model.codebooks().shape == ((1, 400, 256) if variant == "dcid" else (2, 400, 256))


@pytest.fixture(scope="module")
def tiny_original(tmp_path_factory):
    torch.manual_seed(0)
    model = CrossModalModel(ModelConfig.tiny("hdcid"))
    path = tmp_path_factory.mktemp("orig") / "tiny.pt"
    export_original_checkpoint(path, model, epoch=2)
    return model, path


def test_export_load_round_trip_infers_tiny_sizes(tiny_original):
    model, path = tiny_original
    rng = torch.get_rng_state()
    loaded = load_original_checkpoint(path)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG stream is untouched
    again = load_original_checkpoint(path)  # parts not in the file get the same fixed init
    assert torch.equal(again.decoder.level1["audio"].out.weight, loaded.decoder.level1["audio"].out.weight)
    c, t = loaded.cfg, model.cfg
    for f in (
        "variant",
        "video_dim",
        "video_conv_dim",
        "video_club_dim",
        "audio_dim",
        "word_dim",
        "text_lstm_hidden",
        "audio_specific_dim",
        "text_specific_dim",
        "hidden_dim",
        "ffn_dim",
        "n_codes",
        "n_layers",
        "se_reduction",
        "keep_dead_modules",
    ):
        assert getattr(c, f) == getattr(t, f), f
    assert loaded.source_epoch == 2
    want = model.encoder.state_dict()
    for k, v in loaded.encoder.state_dict().items():
        assert v.dtype == torch.float64
        assert torch.equal(v, want[k].double()), k


def _write_modified(path: Path, tmp_path: Path, change) -> Path:
    obj = torch.load(path, weights_only=True)
    change(obj["Encoder_parameters"])
    out = tmp_path / "bad.pt"
    torch.save(obj, out)
    return out


def test_wrong_shape_is_named_with_expected_and_found(tiny_original, tmp_path):
    _, path = tiny_original
    key = "audio_self_att.encoder.layers.1.linear2.weight"
    bad = _write_modified(path, tmp_path, lambda sd: sd.__setitem__(key, torch.zeros(64, 100)))
    with pytest.raises(CheckpointError) as e:
        load_original_checkpoint(bad)
    msg = str(e.value)
    assert str(bad) in msg and key in msg and "expected [64, 128] found [64, 100]" in msg
    assert "1 keys with the wrong shape" in msg


def test_missing_and_unknown_keys_are_listed(tiny_original, tmp_path):
    _, path = tiny_original
    gone = "Text_encoder_2.input_linear.bias"

    def change(sd):
        del sd[gone]
        sd["Video_encoder.extra.weight"] = torch.zeros(3)

    bad = _write_modified(path, tmp_path, change)
    with pytest.raises(CheckpointError) as e:
        load_original_checkpoint(bad)
    msg = str(e.value)
    assert f"1 missing keys: {gone}" in msg
    assert "1 unknown keys: Video_encoder.extra.weight" in msg
    assert "'hdcid'" in msg and str(bad) in msg


def test_bad_files_raise_clear_errors(tiny_original, tmp_path):
    _, path = tiny_original
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"trunc\.pt: cannot be read as a torch checkpoint"):
        load_original_checkpoint(trunc)
    not_dict = tmp_path / "list.pt"
    torch.save([1, 2], not_dict)
    with pytest.raises(CheckpointError, match=r"list\.pt: expected a dict with 'Encoder_parameters'.*list"):
        load_original_checkpoint(not_dict)
    no_enc = tmp_path / "noenc.pt"
    torch.save({"epoch": 1, "model": {}}, no_enc)
    with pytest.raises(CheckpointError, match=r"found \['epoch', 'model'\]"):
        load_original_checkpoint(no_enc)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_original_checkpoint(tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="use load_original_checkpoint"):
        load_checkpoint(path)


def test_save_load_checkpoint_round_trip(tmp_path):
    cfg = ModelConfig.tiny("dcid")
    tcfg = TrainConfig.tiny("dcid", lr=3e-3)
    torch.manual_seed(0)
    model = CrossModalModel(cfg).double()
    opt = torch.optim.Adam(model.parameters(), lr=tcfg.lr)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    opt.step()
    model.encoder.Cross_quantizer.ema_count += 2.5  # a buffer change must survive too
    model.source_epoch = 4
    history = [{"epoch": 0, "step": 1, "total": 3.25}, {"epoch": 0, "step": 2, "total": 2.5}]
    path = save_checkpoint(
        tmp_path / "ck.pt",
        model,
        train_cfg=tcfg,
        optimizers={"main": opt},
        step=2,
        epoch=0,
        history=history,
        rng_state={"torch": torch.get_rng_state()},
        extra={"note": "x"},
    )
    ck = load_checkpoint(path)
    m2 = ck["model"]
    assert ck["model_cfg"] == cfg and ck["train_cfg"] == tcfg and ck["dtype"] == "float64"
    assert m2.dtype == torch.float64 and not m2.training and m2.source_epoch == 4
    sd = model.state_dict()
    assert all(torch.equal(v, sd[k]) for k, v in m2.state_dict().items())
    pd.testing.assert_frame_equal(ck["history"], pd.DataFrame(history))
    assert ck["step"] == 2 and ck["epoch"] == 0 and ck["extra"] == {"note": "x"}
    opt2 = torch.optim.Adam(m2.parameters(), lr=1.0)
    opt2.load_state_dict(ck["optimizers"]["main"])
    assert opt2.param_groups[0]["lr"] == 3e-3
    s1 = opt.state_dict()["state"][0]["exp_avg_sq"]
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg_sq"], s1)
    # wrong shapes in our own format are reported the same way
    obj = torch.load(path, weights_only=True)
    obj["model_state"]["decoder.level1.audio.out.weight"] = torch.zeros(1)
    obj["content_sha256"] = content_hash(obj)  # a consistently written file, just the wrong shape
    torch.save(obj, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"decoder\.level1\.audio\.out\.weight expected \[128, 128\] found \[1\]"):
        load_checkpoint(tmp_path / "bad.pt")


def test_load_model_reads_both_layouts(tmp_path):
    from hdcid.model import export_original_checkpoint, load_model

    cfg = ModelConfig.tiny("hdcid")
    model = CrossModalModel(cfg)
    orig = export_original_checkpoint(tmp_path / "orig.pt", model, epoch=3)
    loaded = load_model(orig)
    assert loaded.cfg.n_levels == 2 and loaded.source_epoch == 3
    assert torch.equal(loaded.codebooks().float(), model.codebooks().float())
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")
