import json

import pytest
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.utils import atomic_path, atomic_torch_save, get_device, seed_everything


def test_paper_preset_has_published_sizes():
    cfg = ModelConfig.paper("hdcid")
    assert (cfg.n_segments, cfg.video_grid, cfg.video_dim) == (10, 7, 512)
    assert (cfg.audio_dim, cfg.word_dim, cfg.text_dim) == (128, 768, 256)
    assert (cfg.hidden_dim, cfg.n_codes, cfg.n_levels) == (256, 400, 2)
    assert cfg.use_cmcm is False and ModelConfig.paper("dcid").use_cmcm is True
    assert cfg.cpc_max_offset == 8


def test_tiny_is_smaller_and_overridable():
    cfg = ModelConfig.tiny("dcid", n_codes=32)
    assert cfg.n_codes == 32 and cfg.hidden_dim < ModelConfig.paper().hidden_dim
    assert cfg.n_levels == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"variant": "vqvae"}, "variant"),
        ({"hidden_dim": 30, "n_heads": 4}, "divisible"),
        ({"n_segments": 2}, "n_segments"),
    ],
)
def test_model_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


def test_configs_round_trip_through_json():
    m, t = ModelConfig.tiny("hdcid"), TrainConfig.tiny("hdcid")
    assert ModelConfig.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert TrainConfig.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_dict({**m.to_dict(), "bogus": 1})


def test_faithful_switches():
    t = TrainConfig.paper("hdcid").faithful()  # the config knows its variant
    assert t.dtype == "float64" and t.torch_dtype == torch.float64 and t.encoder_forwards_per_step == 6
    assert TrainConfig.paper("dcid").faithful().encoder_forwards_per_step == 1
    assert TrainConfig.tiny("dcid").faithful().encoder_forwards_per_step == 1
    with pytest.raises(ValueError, match="TrainConfig.variant"):
        TrainConfig(variant="vqvae")
    assert ModelConfig.paper().faithful().reset_updates_ema is False
    assert ModelConfig.paper().faithful().reset_in_eval is True and ModelConfig.paper().reset_in_eval is False
    assert ModelConfig.paper().reset_updates_ema is True
    with pytest.raises(ValueError, match="dtype"):
        TrainConfig(dtype="float16")


def test_seed_everything_is_reproducible():
    seed_everything(3)
    a = torch.rand(4)
    seed_everything(3)
    assert torch.equal(a, torch.rand(4))


def test_get_device_respects_preference(monkeypatch):
    monkeypatch.delenv("HDCID_DEVICE", raising=False)
    assert get_device("cpu").type == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_torch_save({"v": 1}, target)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half-written")
            raise RuntimeError("crash mid-write")
    assert torch.load(target)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_public_names_resolve():
    import hdcid

    missing = [n for n in hdcid.__all__ if getattr(hdcid, n, None) is None]
    assert missing == []
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hdcid.nope  # noqa: B018 - the attribute access itself must raise


def test_retired_fields_of_old_checkpoints_still_load():
    old_train = {**TrainConfig.tiny("dcid").to_dict(), "num_workers": 0}
    old_model = {**ModelConfig.tiny("dcid").to_dict(), "n_text_classes": 10}
    assert TrainConfig.from_dict(old_train) == TrainConfig.tiny("dcid")
    assert ModelConfig.from_dict(old_model) == ModelConfig.tiny("dcid")
    assert "num_workers" not in TrainConfig.tiny().to_dict() and "n_text_classes" not in ModelConfig.tiny().to_dict()


def test_codebook_start_switches():
    """issue 8: the tiny presets start their codebooks from the data, the published settings from
    U(-1/M, 1/M); H-DCID's tiny preset weighs the co-located partner 0.5 in the MM-EMA mass (DCID
    and the published settings 0.25); warm-up decays are off unless asked for and checked."""
    for v in ("dcid", "hdcid"):
        assert TrainConfig.tiny(v).data_init is True
        assert TrainConfig.tiny(v).faithful().data_init is False and TrainConfig.paper(v).data_init is False
        assert ModelConfig.paper(v).ema_partner_share == 0.25 == ModelConfig.tiny(v).faithful().ema_partner_share
    assert ModelConfig.tiny("hdcid").ema_partner_share == 0.5 and ModelConfig.tiny("dcid").ema_partner_share == 0.25
    assert TrainConfig.tiny("dcid").warmup_decay is None and TrainConfig.tiny("hdcid").level2_warmup_decay is None
    for field in ("warmup_decay", "level2_warmup_decay"):
        with pytest.raises(ValueError, match=f"TrainConfig.{field} must be None or in"):
            TrainConfig.tiny("hdcid", **{field: 1.5})
    with pytest.raises(ValueError, match="data_init"):
        TrainConfig(data_init="yes")
