"""Pretraining loop: logged terms, usage, determinism, exact resume, faithful forwards, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.model.checkpoint import CheckpointError
from hdcid.train import Pretrainer, load_or_pretrain
from hdcid.train_folder import list_checkpoints

TERMS = [
    "rec_a",
    "rec_v",
    "rec_t",
    "commit_a",
    "commit_v",
    "commit_t",
    "cpc",
    "cmcm",
    "mi_a",
    "mi_v",
    "mi_t",
    "club_ll",
    "agreement",
    "loss1",
    "total",
]
TERMS2 = [t.replace("_", "2_") if "_" in t and t != "club_ll" else t + "2" for t in TERMS[:-2]] + ["loss2"]


@pytest.fixture
def small_set(synthetic_clipset):
    return synthetic_clipset.subset(np.arange(16))


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_history_terms_usage_and_checkpoints(small_set, tmp_path):
    mc = ModelConfig.tiny("hdcid")
    tc = TrainConfig.tiny("hdcid", epochs=2, batch_size=8, max_steps_per_epoch=1, level2_start_epoch=1)
    res = Pretrainer(mc, tc, small_set, tmp_path).fit(progress=False)
    h = res.history
    assert list(h["step"]) == [1, 2] and list(h["epoch"]) == [0, 1] and list(h["level2"]) == [0.0, 1.0]
    for col in TERMS + TERMS2:
        assert col in h.columns, col
        assert np.isfinite(h[col]).all(), col
    assert (h["cmcm"] > 0).all() and (h["cmcm2"] > 0).all()  # the tiny preset keeps CMCM (hdcid_cmcm)
    # total = L1 before level2_start_epoch, L1 + level2_weight L2 after (tiny: 0.1, published 0.3)
    assert h["total"][0] == pytest.approx(h["loss1"][0], rel=1e-6)
    assert h["total"][1] == pytest.approx(h["loss1"][1] + tc.level2_weight * h["loss2"][1], rel=1e-6)
    parts = [c for c in TERMS if c[:3] in ("rec", "com", "mi_") or c in ("cpc", "cmcm")]
    assert h["loss1"][0] == pytest.approx(sum(h[c][0] for c in parts), rel=1e-5)
    assert h["club_ll2"][0] == 0.0 and h["club_ll2"][1] != 0.0  # level-2 CLUB trained from epoch 1
    assert [p.name for p in res.checkpoints] == ["epoch-0.pt", "epoch-1.pt"]
    assert len(res.usage) == 2
    for u in res.usage:  # one step of 8 clips x 10 segments per epoch, per level and modality
        assert [int(u["counts"][lv][m].sum()) for lv in range(2) for m in ("audio", "video", "text")] == [80] * 6
        assert u["resets"][0].shape == (mc.n_codes,)
    assert not res.model.training


def test_same_seed_gives_identical_weights(small_set, tmp_path):
    mc = ModelConfig.tiny("dcid")
    tc = TrainConfig.tiny("dcid", epochs=1, batch_size=8, max_steps_per_epoch=2)
    a = Pretrainer(mc, tc, small_set, tmp_path / "a").fit(progress=False)
    b = Pretrainer(mc, tc, small_set, tmp_path / "b").fit(progress=False)
    assert _same(_state(a.model), _state(b.model))
    assert a.history.equals(b.history)
    c = Pretrainer(mc, tc.replace(seed=7), small_set, tmp_path / "c").fit(progress=False)
    assert not _same(_state(a.model), _state(c.model))


def test_exact_resume_equals_uninterrupted_run(small_set, tmp_path):
    mc = ModelConfig.tiny("hdcid")
    tc = TrainConfig.tiny(
        "hdcid", epochs=2, batch_size=8, max_steps_per_epoch=1, level2_start_epoch=1, encoder_forwards_per_step=2
    )
    full = Pretrainer(mc, tc, small_set, tmp_path / "full").fit(progress=False)
    part = Pretrainer(mc, tc, small_set, tmp_path / "part").fit(progress=False, stop_after_epoch=0)
    assert [p.name for p in part.checkpoints] == ["epoch-0.pt"]
    torch.manual_seed(999)  # disturb the global RNG: the resume must restore it
    resumed = Pretrainer(mc, tc, small_set, tmp_path / "part").fit(progress=False)
    assert _same(_state(full.model), _state(resumed.model))
    assert full.history.equals(resumed.history)
    assert torch.equal(full.usage[1]["counts"][1]["video"], resumed.usage[1]["counts"][1]["video"])
    # a finished folder is loaded, not retrained
    again = load_or_pretrain(mc, tc, small_set, tmp_path / "full", progress=False)
    assert _same(_state(again.model), _state(full.model)) and len(again.history) == 2
    # a folder written with other configs is refused with a clear message
    with pytest.raises(CheckpointError, match=r"other settings.*\n  TrainConfig\.lr: 0\.001 -> 0\.01$"):
        Pretrainer(mc, tc.replace(lr=1e-2), small_set, tmp_path / "full").fit(progress=False)


@pytest.mark.parametrize("forwards,max_counter", [(1, 0.0), (6, 5.0)])
def test_encoder_forwards_per_step_ticks_reset_counters(small_set, tmp_path, forwards, max_counter):
    """Counters start at -1 and tick once per encoder forward: after one step with k forwards an
    unused code sits at k - 1 (original H-DCID: 6 forwards per step, spec 3.7)."""
    mc = ModelConfig.tiny("dcid")
    tc = TrainConfig.tiny("dcid", epochs=1, batch_size=8, max_steps_per_epoch=1, encoder_forwards_per_step=forwards)
    tc = tc.replace(data_init=False)  # from the data every code is some position's nearest: none unused
    res = Pretrainer(mc, tc, small_set, tmp_path).fit(progress=False)
    u = res.model.encoder.Cross_quantizer.unactivated_count
    assert float(u.max()) == max_counter and float(u.min()) == 0.0


def test_dataset_shape_mismatch_is_named(small_set, tmp_path):
    with pytest.raises(ValueError, match=r"video features must be \(N, 10, 7, 7, 512\).*got \(16, 10, 7, 7, 32\)"):
        Pretrainer(ModelConfig.paper("dcid"), TrainConfig(), small_set, tmp_path)


def test_float64_switch(small_set, tmp_path):
    tc = TrainConfig.tiny("dcid", epochs=1, batch_size=8, max_steps_per_epoch=1, dtype="float64")
    res = Pretrainer(ModelConfig.tiny("dcid"), tc, small_set, tmp_path).fit(progress=False)
    assert res.model.dtype == torch.float64
    assert res.model.encoder.Cross_quantizer.embedding.dtype == torch.float64
    assert list_checkpoints(tmp_path)[0].name == "epoch-0.pt"


@pytest.mark.slow
def test_demo_pretraining_loss_falls(small_demo_root, hash_text, tmp_path):
    """AV-Digits small fixture (100 clips), tiny DCID, 80 steps: the total loss and its largest
    learned term (Cross-CPC) fall. (The CLUB MI estimate of audio is noisy from epoch to epoch, so a
    shorter run can hide the trend of the total; with the preset's attention window of 1 the
    features see less context and the loss falls more slowly than with full attention.)"""
    from hdcid.data import read_pretrain

    ds = read_pretrain(small_demo_root, hash_text)
    tc = TrainConfig.tiny("dcid", epochs=8, batch_size=10)
    h = Pretrainer(ModelConfig.tiny("dcid"), tc, ds, tmp_path).fit(progress=False).history
    assert len(h) == 8 * ((len(ds) + 9) // 10)
    first, last = h[h.epoch == 0], h[h.epoch == 7]
    assert last["total"].mean() < 0.95 * first["total"].mean()
    assert last["cpc"].mean() < 0.85 * first["cpc"].mean()  # measured 0.80-0.81 (1 and 2 threads)


def test_pretraining_aligns_codes_across_modalities(synthetic_clipset, tmp_path):
    """Gaussian class prototypes (60 clips, 10 classes), tiny DCID, 30 steps: the total loss falls
    and the three modalities come to pick the same code (3-way agreement from exactly 0)."""
    tc = TrainConfig.tiny("dcid", epochs=5, batch_size=10)
    h = Pretrainer(ModelConfig.tiny("dcid"), tc, synthetic_clipset, tmp_path).fit(progress=False).history
    first, last = h[h.epoch == 0], h[h.epoch == 4]
    assert last["total"].mean() < 0.7 * first["total"].mean()
    assert last["cpc"].mean() < 0.6 * first["cpc"].mean()
    assert first["agreement"].mean() < 0.05 and last["agreement"].mean() > 0.2
    assert last["agree_av"].mean() > first["agree_av"].mean() + 0.2


def test_checkpoint_from_before_a_new_config_field_still_matches(small_set, tmp_path):
    """A run written before `ModelConfig.reset_in_eval` existed (key absent) equals the same run now
    (the field at its default): loaded, not retrained; a non-default value still differs."""
    from hdcid.model.integrity import HASH_KEY, content_hash

    mc = ModelConfig.tiny("dcid")
    tc = TrainConfig.tiny("dcid", epochs=1, batch_size=8, max_steps_per_epoch=1)
    first = Pretrainer(mc, tc, small_set, tmp_path).fit(progress=False)
    path = first.checkpoints[-1]
    obj = torch.load(path, weights_only=False)
    del obj["model_config"]["reset_in_eval"]  # as written before the field existed
    obj[HASH_KEY] = content_hash(obj)
    torch.save(obj, path)
    again = load_or_pretrain(mc, tc, small_set, tmp_path, progress=False)
    assert _same(_state(again.model), _state(first.model)) and len(again.history) == 1
    with pytest.raises(CheckpointError, match=r"ModelConfig\.reset_in_eval: False -> True"):
        Pretrainer(mc.replace(reset_in_eval=True), tc.replace(epochs=2), small_set, tmp_path).fit(progress=False)


def test_train_config_field_added_later_still_matches(small_set, tmp_path):
    """The same for TrainConfig: a run written before `cmcm_weight` existed loads, not retrains."""
    from hdcid.model.integrity import HASH_KEY, content_hash

    mc = ModelConfig.tiny("dcid")
    tc = TrainConfig.tiny("dcid", epochs=1, batch_size=8, max_steps_per_epoch=1)
    first = Pretrainer(mc, tc, small_set, tmp_path).fit(progress=False)
    path = first.checkpoints[-1]
    obj = torch.load(path, weights_only=False)
    del obj["train_config"]["cmcm_weight"]
    obj[HASH_KEY] = content_hash(obj)
    torch.save(obj, path)
    again = load_or_pretrain(mc, tc, small_set, tmp_path, progress=False)
    assert _same(_state(again.model), _state(first.model)) and len(again.history) == 1


def test_cmcm_weight_reaches_the_loss(small_set, tmp_path):
    """TrainConfig.cmcm_weight scales CMCM in the total (first step: same weights and batch)."""
    mc = ModelConfig.tiny("dcid")
    rows = []
    for w in (1.0, 3.0):
        tc = TrainConfig.tiny("dcid", epochs=1, batch_size=8, max_steps_per_epoch=1, cmcm_weight=w)
        rows.append(Pretrainer(mc, tc, small_set, tmp_path / str(w)).fit(progress=False).history.iloc[0])
    assert rows[0]["cmcm"] == rows[1]["cmcm"] > 0  # the logged term is unweighted
    assert rows[1]["total"] - rows[0]["total"] == pytest.approx(2.0 * rows[0]["cmcm"], rel=1e-5)
    assert TrainConfig.paper().cmcm_weight == 1.0


def test_recalibrate_centring_sets_the_eval_mean_and_leaves_training_unchanged(small_set, tmp_path):
    """TrainConfig.recalibrate_centring: after each epoch the centring running mean is the eval-mode
    mean of the first N clips' raw semantic features (every level and modality); the weights and
    the codebook are bitwise those of the run without it (no random draw, no training input)."""
    mc = ModelConfig.tiny("hdcid")
    tc = TrainConfig.tiny("hdcid", epochs=2, batch_size=8, max_steps_per_epoch=1)
    plain = Pretrainer(mc, tc, small_set, tmp_path / "plain").fit(progress=False).model
    recal = Pretrainer(mc, tc.replace(recalibrate_centring=12), small_set, tmp_path / "recal").fit(progress=False).model
    sp, sr = _state(plain), _state(recal)
    assert sp.keys() == sr.keys()
    for k in sp:
        if not k.endswith("semantic_centre.running_mean"):
            assert torch.equal(sp[k], sr[k]), k
    rm = recal.encoder.semantic_centre.running_mean  # (L, 3, D)
    assert not torch.allclose(rm, plain.encoder.semantic_centre.running_mean)
    clips = small_set.subset(np.arange(12))
    with torch.no_grad():
        x = {m: torch.as_tensor(np.asarray(getattr(clips, m)), dtype=torch.float32) for m in ("audio", "video")}
        x["text"] = recal.text_features(torch.as_tensor(np.asarray(clips.text), dtype=torch.float32))
        for i, m in enumerate(("audio", "video", "text")):
            for lv, z in enumerate(recal.encoder.raw_semantic(x[m], m)):
                assert torch.allclose(rm[lv, i], z.mean(dim=(0, 1)), atol=1e-6), (m, lv)
    assert TrainConfig.paper().recalibrate_centring == 0


def _per_step(trainer: Pretrainer, attr: str) -> list[dict]:
    """Fit `trainer` and return the quantizer's `attr` (decay_override / init_pending) as each
    training step began."""
    quantizer, orig, seen = trainer.model.encoder.Cross_quantizer, trainer.train_step, []

    def spy(*args, **kw):
        seen.append(dict(getattr(quantizer, attr)))
        return orig(*args, **kw)

    trainer.train_step = spy
    trainer.fit(progress=False)
    return seen


def test_level2_warmup_decay_reaches_level_2_only_in_its_first_epoch(small_set, tmp_path):
    """TrainConfig.level2_warmup_decay: after the first step the level-1 codebook is the same as
    without it and the level-2 codebook differs; in the next epoch the published decay is back."""
    mc = ModelConfig.tiny("hdcid")
    tc = TrainConfig.tiny("hdcid", epochs=1, batch_size=8, max_steps_per_epoch=1)
    a = Pretrainer(mc, tc, small_set, tmp_path / "plain").fit(progress=False).model.codebooks()
    warm = Pretrainer(mc, tc.replace(level2_warmup_decay=0.5), small_set, tmp_path / "warm")  # seeds here
    b = warm.fit(progress=False).model.codebooks()
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])
    assert warm.model.encoder.Cross_quantizer.decay_override == {}  # cleared after the epoch
    q = Pretrainer(mc, tc.replace(epochs=2, level2_start_epoch=1, level2_warmup_decay=0.5), small_set, tmp_path / "e")
    assert _per_step(q, "decay_override") == [{}, {1: 0.5}]  # only in the epoch level 2 starts
    assert TrainConfig.paper("hdcid").level2_warmup_decay is None


def test_adam_kernel_per_device_and_fused_equals_foreach():
    """CUDA gets the fused Adam (no per-parameter host synchronisation), the CPU keeps foreach (bit-
    identical to the per-tensor loop); the two do the same arithmetic (checked here on the CPU,
    where both exist, to 1e-12 in float64 over 5 steps)."""
    from hdcid.train import adam_kernel

    assert adam_kernel(torch.device("cpu")) == {"foreach": True}
    assert adam_kernel(torch.device("cuda", 0)) == {"fused": True}  # a device object needs no GPU
    torch.manual_seed(0)
    x, y = torch.randn(64, 8, dtype=torch.float64), torch.randn(64, 3, dtype=torch.float64)
    nets = [torch.nn.Linear(8, 3).double() for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    kinds = ({"foreach": True}, {"fused": True})
    opts = [torch.optim.Adam(n.parameters(), lr=1e-2, **kw) for n, kw in zip(nets, kinds)]
    for _ in range(5):
        for n, o in zip(nets, opts):
            o.zero_grad()
            ((n(x) - y) ** 2).mean().backward()
            o.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_warmup_decay_reaches_each_level_in_its_first_epoch(small_set, tmp_path):
    """TrainConfig.warmup_decay: the EMA decay of level 1 in epoch 0 and of level 2 in the epoch it
    starts (level2_warmup_decay, when set, wins for level 2); the value reaches the EMA exactly."""
    tc = TrainConfig.tiny("dcid", epochs=1, batch_size=8, max_steps_per_epoch=1)
    mc = ModelConfig.tiny("dcid")
    plain = Pretrainer(mc, tc, small_set, tmp_path / "plain").fit(progress=False).model.codebooks()
    same = Pretrainer(mc, tc.replace(warmup_decay=mc.ema_decay), small_set, tmp_path / "same")
    fast = Pretrainer(mc, tc.replace(warmup_decay=0.5), small_set, tmp_path / "fast")
    assert torch.equal(plain, same.fit(progress=False).model.codebooks())
    assert not torch.allclose(plain, fast.fit(progress=False).model.codebooks())

    def schedule(variant, **kw):
        t = TrainConfig.tiny(variant, batch_size=8, max_steps_per_epoch=1, **kw)
        q = Pretrainer(ModelConfig.tiny(variant), t, small_set, tmp_path / f"{variant}-{len(list(tmp_path.iterdir()))}")
        return _per_step(q, "decay_override")

    assert schedule("dcid", epochs=2, warmup_decay=0.9) == [{0: 0.9}, {}]
    assert schedule("hdcid", epochs=3, level2_start_epoch=1, warmup_decay=0.9) == [{0: 0.9}, {1: 0.9}, {}]
    both = schedule("hdcid", epochs=2, level2_start_epoch=0, warmup_decay=0.9, level2_warmup_decay=0.5)
    assert both == [{0: 0.9, 1: 0.5}, {}]
    assert TrainConfig.paper("hdcid").warmup_decay is None
    assert TrainConfig.tiny("hdcid", warmup_decay=0.9).faithful().warmup_decay is None


def test_data_init_sets_every_level_at_the_first_step_only(small_set, tmp_path):
    """TrainConfig.data_init: before the first step every level is pending (seeded from the training
    seed), and only then; the codebooks differ from a run without it."""
    tc = TrainConfig.tiny("hdcid", epochs=2, batch_size=8, max_steps_per_epoch=2, data_init=True, seed=5)
    q = Pretrainer(ModelConfig.tiny("hdcid"), tc, small_set, tmp_path / "di")
    assert _per_step(q, "init_pending") == [{0: 5, 1: 6}, {}, {}, {}]
    assert q.model.encoder.Cross_quantizer.init_pending == {}
    plain = Pretrainer(ModelConfig.tiny("hdcid"), tc.replace(data_init=False), small_set, tmp_path / "plain")
    assert not torch.allclose(plain.fit(progress=False).model.codebooks(), q.model.codebooks())
    assert TrainConfig.paper("hdcid").data_init is False
    assert TrainConfig.tiny("hdcid", data_init=True).faithful().data_init is False
