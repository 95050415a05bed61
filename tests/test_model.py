"""CrossModalModel: original key names/shapes, VSE/ITRM maths, encode purity, shapes, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hdcid.config import ModelConfig
from hdcid.model.blocks import ITRM, VSE
from hdcid.model.network import CrossModalModel

# The released checkpoints' key lists (copied verbatim from the method spec).
KEYS = Path(__file__).resolve().parent.parent / "docs" / "spec" / "checkpoint_keys"


def _json(name: str) -> dict:
    path = KEYS / name
    return json.loads(path.read_text())


def _inputs(cfg: ModelConfig, b: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    t, gr = cfg.n_segments, cfg.video_grid
    video = torch.randn(b, t, gr, gr, cfg.video_dim, generator=g)
    audio = torch.randn(b, t, cfg.audio_dim, generator=g)
    words = torch.randn(b, t, cfg.word_dim, generator=g)
    return video, audio, words


@pytest.mark.parametrize("variant,n_keys,n_params", [("dcid", 142, 80_123_649), ("hdcid", 262, 87_888_641)])
def test_paper_encoder_keys_and_shapes_equal_released(variant, n_keys, n_params):
    model = CrossModalModel(ModelConfig.paper(variant))
    want = _json(f"{variant}_encoder_keys.json")
    got = {k: list(v.shape) for k, v in model.encoder.state_dict().items()}
    assert len(got) == n_keys == len(want)
    assert sorted(set(got) ^ set(want)) == []
    assert {k: s for k, s in got.items() if want[k] != s} == {}
    lstm = {k: list(v.shape) for k, v in model.text_lstm.state_dict().items()}
    assert lstm == _json("text_lstm_keys.json")
    # parameter inventory of spec 2.11 / 3.8
    assert sum(p.numel() for p in model.encoder.parameters()) == n_params
    assert sum(p.numel() for p in model.text_lstm.parameters()) == 1_314_816
    assert sum(p.numel() for p in model.cpc[0].parameters()) == 3_355_392
    assert sum(p.numel() for p in model.club[0]["video"].parameters()) == 263_936
    dec = sum(p.numel() for p in model.decoder.parameters())
    assert dec == (37_402_663 - 306_087 if variant == "dcid" else 38_147_200)  # DCID: no dead heads
    assert model.codebooks().shape == (1 if variant == "dcid" else 2, 400, 256)


def test_semantic_centering_removes_a_modality_offset_and_eval_leaves_buffers():
    torch.manual_seed(0)
    from hdcid.model.network import ModalityCentre

    c = ModalityCentre(levels=1, dim=4, momentum=0.5).train()
    z = torch.randn(8, 10, 4) + torch.tensor([3.0, -2.0, 0.0, 1.0])  # offset of one modality
    out = c(z, "audio", 0)
    assert out.mean(dim=(0, 1)).abs().max() < 1e-5  # train: batch-centred
    assert torch.allclose(c.running_mean[0, 0], 0.5 * z.mean(dim=(0, 1)))  # moved half-way
    assert c.running_mean[0, 1:].abs().max() == 0  # other modalities untouched
    before = c.running_mean.clone()
    c.eval()
    assert torch.allclose(c(z, "audio", 0), z - before[0, 0])  # eval: running mean, no update
    assert torch.equal(c.running_mean, before)
    s = ModalityCentre(levels=2, dim=4, momentum=1.0, scale=True).train()
    out = s(3.0 * z, "video", 1)
    assert out.pow(2).mean().item() == pytest.approx(1.0, rel=1e-5)  # unit RMS deviation
    assert s.running_scale[1, 1].item() == pytest.approx((3.0 * (z - z.mean(dim=(0, 1)))).pow(2).mean().sqrt().item())
    assert torch.allclose(s.eval()(3.0 * z, "video", 1), out, atol=1e-5)  # momentum 1: eval = last batch
    cfg = ModelConfig.tiny("dcid")
    assert cfg.semantic_centering and not cfg.faithful().semantic_centering
    model = CrossModalModel(cfg)
    assert "semantic_centre.running_mean" in model.encoder.state_dict()
    assert "semantic_centre.running_mean" not in CrossModalModel(cfg.faithful()).encoder.state_dict()
    model.train()  # encode never changes a buffer, even in train mode (dropout draws)
    snap = model.buffers_snapshot()
    model.encode(torch.randn(2, *model.expected_shape("audio")), "audio")
    assert all(torch.equal(v, model.buffers_snapshot()[k]) for k, v in snap.items())


def test_dead_modules_dropped_when_not_kept():
    cfg = ModelConfig.tiny("dcid", keep_dead_modules=False, semantic_centering=False)
    keys = list(CrossModalModel(cfg).encoder.state_dict())
    assert not [k for k in keys if ".encoder_layer." in k or "affine_video" in k or "ave_v_att" in k]
    assert len(keys) == 142 - 3 * 12 - 6


def test_vse_is_channel_attended_sum_pooling():
    cfg = ModelConfig.tiny()
    torch.manual_seed(0)
    vse = VSE(cfg).double()
    x = torch.randn(2, 3, cfg.video_grid, cfg.video_grid, cfg.video_dim, dtype=torch.float64)
    w1 = vse.se_layer[0].weight.detach().numpy()
    w2 = vse.se_layer[2].weight.detach().numpy()
    xn = x.numpy().reshape(2, 3, -1, cfg.video_dim)  # (B, T, P, C)
    g = xn.mean(axis=2)  # (B, T, C)
    s = 1 / (1 + np.exp(-(np.maximum(g @ w1.T, 0) @ w2.T)))  # (B, T, C)
    want = (xn * s[:, :, None, :] + xn).sum(axis=2)
    np.testing.assert_allclose(vse(x).detach().numpy(), want, rtol=1e-12, atol=1e-12)


def test_itrm_has_no_positional_encoding_and_no_batch_mixing():
    cfg = ModelConfig.tiny(attention_window=None)  # the original's full attention
    torch.manual_seed(0)
    itrm = ITRM(16, cfg).double().eval()
    x = torch.randn(4, cfg.n_segments, 16, dtype=torch.float64)
    y = itrm(x)
    perm = torch.randperm(cfg.n_segments)
    assert torch.allclose(itrm(x[:, perm]), y[:, perm], atol=1e-12)  # permutation equivariant in time
    assert torch.allclose(itrm(x[1:2]), y[1:2], atol=1e-12)  # each clip independent of the batch
    # post-norm output: every (b, t) row has mean 0 and variance 1 (LayerNorm at init)
    assert torch.allclose(y.mean(-1), torch.zeros(4, cfg.n_segments, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(y.var(-1, unbiased=False), torch.ones(4, cfg.n_segments, dtype=torch.float64), atol=1e-4)


@pytest.mark.parametrize("window", [0, 1, 3])
def test_itrm_attention_window_limits_what_a_second_sees(window):
    """With attention_window w, changing second s changes the outputs at |t - s| <= w * n_layers
    (each layer widens the field by w) and nowhere else; None keeps every second coupled."""
    cfg = ModelConfig.tiny(attention_window=window)
    torch.manual_seed(0)
    itrm = ITRM(16, cfg).double().eval()
    x = torch.randn(2, cfg.n_segments, 16, dtype=torch.float64)
    s = 2
    x2 = x.clone()
    x2[:, s] += 1.0
    changed = (itrm(x2) - itrm(x)).abs().amax(dim=(0, 2)) > 1e-12  # (T,)
    reach = (torch.arange(cfg.n_segments) - s).abs() <= window * cfg.n_layers
    assert torch.equal(changed, reach)
    full = ITRM(16, ModelConfig.tiny(attention_window=None))
    full.load_state_dict(itrm.state_dict())
    full = full.double().eval()
    assert ((full(x2) - full(x)).abs().amax(dim=(0, 2)) > 1e-12).all()
    with pytest.raises(ValueError, match="attention_window"):
        ModelConfig.tiny(attention_window=-1)


def test_faithful_restores_full_attention_and_hdcid_without_cmcm():
    assert ModelConfig.tiny().attention_window == 1
    assert ModelConfig.tiny().faithful().attention_window is None
    assert ModelConfig.paper().attention_window is None
    h = ModelConfig.tiny("hdcid")
    assert h.use_cmcm and not h.faithful().use_cmcm and not ModelConfig.paper("hdcid").use_cmcm
    assert ModelConfig.tiny("dcid").faithful().use_cmcm  # DCID always has CMCM
    for v in ("dcid", "hdcid"):  # issue 8, second round: same-second partners and commitment
        t = ModelConfig.tiny(v)
        assert not t.text_partner and t.cross_commitment == 2.0
        assert t.faithful().text_partner and t.faithful().cross_commitment == 0.5
        assert ModelConfig.paper(v).text_partner and ModelConfig.paper(v).cross_commitment == 0.5
    from hdcid.config import TrainConfig

    assert TrainConfig.tiny().recalibrate_centring == 512 and TrainConfig.tiny().faithful().recalibrate_centring == 0
    assert TrainConfig.paper().recalibrate_centring == 0 and TrainConfig.paper().cmcm_weight == 1.0


def test_hdcid_cmcm_switch_reaches_the_loss():
    """tiny H-DCID trains with a non-zero CMCM term at both levels; faithful() logs zero."""
    video, audio, words = _inputs(ModelConfig.tiny("hdcid"))
    for cfg, nonzero in ((ModelConfig.tiny("hdcid"), True), (ModelConfig.tiny("hdcid").faithful(), False)):
        torch.manual_seed(0)
        model = CrossModalModel(cfg).double().train()
        out = model.forward_train(video, audio, words)
        cm = [float(lv.quant.cmcm.detach()) for lv in out.enc.levels]
        assert all((c > 0) == nonzero for c in cm), cm


@pytest.mark.parametrize("variant", ["dcid", "hdcid"])
def test_encode_shapes_dtype_and_buffers_untouched(variant):
    cfg = ModelConfig.tiny(variant)
    torch.manual_seed(0)
    model = CrossModalModel(cfg).double()
    model.train()  # even in train mode encode must not touch the codebook
    before = model.buffers_snapshot()
    video, audio, words = _inputs(cfg)
    for modality, x in (("video", video.numpy()), ("audio", audio), ("text", words)):
        enc = model.encode(x, modality)
        assert len(enc.semantic) == len(enc.quantized) == len(enc.indices) == cfg.n_levels
        for z, q, k in zip(enc.semantic, enc.quantized, enc.indices):
            assert z.shape == q.shape == (3, cfg.n_segments, cfg.hidden_dim)
            assert k.shape == (3, cfg.n_segments) and k.dtype == torch.long
            assert z.dtype == q.dtype == torch.float64 and not q.requires_grad
            assert int(k.min()) >= 0 and int(k.max()) < cfg.n_codes
    after = model.buffers_snapshot()
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name


def test_encode_codes_equal_training_forward_codes_in_eval():
    cfg = ModelConfig.tiny("hdcid")
    torch.manual_seed(1)
    model = CrossModalModel(cfg).double().eval()
    video, audio, words = _inputs(cfg, b=4, seed=1)
    with torch.no_grad():
        enc = model.encoder(video.double(), audio.double(), model.text_features(words.double()))
    for modality, x in (("video", video), ("audio", audio), ("text", words)):
        got = model.encode(x, modality)
        for lv in range(2):
            assert torch.equal(got.indices[lv], enc.levels[lv].indices[modality])
            E = model.codebooks()[lv]
            assert torch.allclose(got.quantized[lv], E[got.indices[lv]], atol=1e-12)
    chunked = model.encode(video, "video", batch_size=3)
    assert torch.equal(chunked.indices[1], enc.levels[1].indices["video"])


def test_wrong_input_shape_names_expected_shape():
    model = CrossModalModel(ModelConfig.tiny())
    with pytest.raises(
        ValueError,
        match=r"video features must be \(B, 10, 7, 7, 32\) for this config, "
        r"got \(2, 10, 7, 7, 16\)",
    ):
        model.encode(torch.zeros(2, 10, 7, 7, 16), "video")
    with pytest.raises(ValueError, match=r"text word features must be \(B, 10, 384\).*got \(10, 384\)"):
        model.encode(np.zeros((10, 384)), "text")
    with pytest.raises(ValueError, match="modality must be one of"):
        model.encode(torch.zeros(2, 10, 128), "speech")


def test_forward_train_initial_loss_values_and_gradient_flow():
    cfg = ModelConfig.tiny("dcid").faithful()  # uncentred features: the spec's LayerNorm scale
    torch.manual_seed(0)
    model = CrossModalModel(cfg).double().train()
    b = 6
    video, audio, words = _inputs(cfg, b=b)
    out = model.forward_train(video, audio, words)
    lo = out.enc.levels[0]
    # LayerNorm-scale features vs ~0 codes: 0.5 + 0.125 + 0.125 = 0.75 per modality (spec 2.7)
    for m in ("audio", "video", "text"):
        assert lo.quant.commitment[m].item() == pytest.approx(0.75, abs=0.02)
        assert out.rec_loss[0][m].item() > 0
    # near-uniform soft assignments: each CMCM pair ~ ln B, 0.5 * 3 pairs = 1.5 ln B
    assert lo.quant.cmcm.item() == pytest.approx(1.5 * math.log(b), rel=0.05)
    assert out.cpc[0].loss.item() == pytest.approx(6.3 * math.log(b), rel=0.25)
    assert out.reconstructions[0]["video"].shape == video.shape
    mi = model.mi_terms(out.enc, 0)
    total = (
        sum(out.rec_loss[0].values())
        + sum(lo.quant.commitment.values())
        + sum(mi.values())
        + out.cpc[0].loss
        + lo.quant.cmcm
    )
    total.backward()
    enc = model.encoder
    assert all(p.grad is None for p in enc.video_self_att.encoder_layer.parameters())  # dead prototype
    assert enc.video_semantic_encoder.ave_v_att.weight.grad is None  # dead VSE branch
    assert enc.video_self_att.affine_matrix.weight.grad.abs().sum() > 0
    assert enc.Video_encoder.feed_forward[2].weight.grad.abs().sum() > 0  # C_v gets the MI gradient
    assert model.text_lstm.weight_ih_l0.grad.abs().sum() > 0
