"""The faithful H-DCID step (float64, 6 encoder forwards) computes the shared, dropout-free encoder part
once and skips the quantizer's diagnostics in the 5 extra forwards: the step must equal the step that
recomputes everything (weights, codebook buffers, logged row), with dropout on and resets happening."""

from __future__ import annotations

import numpy as np
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.demo.synthetic import random_clipset
from hdcid.model.network import Encoder
from hdcid.train import Pretrainer


def _run(tmp_path, recompute: bool, monkeypatch):
    if recompute:  # the previous behaviour: every forward computes everything, with diagnostics
        orig = Encoder.forward

        def full(self, video, audio, text, *, shared=None, diagnostics=True):
            return orig(self, video, audio, text)

        monkeypatch.setattr(Encoder, "forward", full)
    mc = ModelConfig.tiny("hdcid").replace(reset_after=2, donor_window=100)  # resets within 3 steps
    tc = TrainConfig.tiny("hdcid").replace(dtype="float64", encoder_forwards_per_step=6, batch_size=4)
    torch.manual_seed(0)
    tr = Pretrainer(mc, tc, random_clipset(mc, 4), tmp_path / ("a" if recompute else "b"), device="cpu")
    batch = tr._batch(np.arange(4))
    resets = [torch.zeros(mc.n_codes) for _ in range(mc.n_levels)]
    rows = [tr.train_step(*batch, tc.level2_start_epoch, resets=resets) for _ in range(3)]
    monkeypatch.undo()
    return tr.model.state_dict(), rows, resets


def test_shared_encoder_part_and_skipped_diagnostics_change_nothing(tmp_path, monkeypatch):
    ref_state, ref_rows, ref_resets = _run(tmp_path, True, monkeypatch)
    state, rows, resets = _run(tmp_path, False, monkeypatch)
    assert sum(float(r.sum()) for r in ref_resets) > 0  # dead-code resets (RNG draws) took place
    assert set(state) == set(ref_state)
    for k, v in ref_state.items():
        assert torch.equal(state[k], v), k
    for a, b in zip(rows, ref_rows):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k] or (np.isnan(a[k]) and np.isnan(b[k])), k
    assert all(torch.equal(a, b) for a, b in zip(resets, ref_resets))


def _adam_steps(tmp_path, foreach: bool):
    mc = ModelConfig.tiny("hdcid")
    tc = TrainConfig.tiny("hdcid").faithful().replace(batch_size=4)
    torch.manual_seed(0)
    tr = Pretrainer(mc, tc, random_clipset(mc, 4), tmp_path / str(foreach), device="cpu")
    assert tr.main_opt.defaults["foreach"] is True
    if not foreach:  # the per-tensor loop, as before
        tr.main_opt = torch.optim.Adam(tr.main_opt.param_groups[0]["params"], lr=tc.lr, foreach=False)
        tr.club_opts = {
            k: torch.optim.Adam(o.param_groups[0]["params"], lr=tc.mi_lr, foreach=False)
            for k, o in tr.club_opts.items()
        }
    batch = tr._batch(np.arange(4))
    rows = [tr.train_step(*batch, tc.level2_start_epoch) for _ in range(3)]
    return tr.model.state_dict(), rows, tr.main_opt.state_dict()["state"]


def test_foreach_adam_equals_the_per_tensor_loop_bitwise(tmp_path):
    ref_state, ref_rows, ref_opt = _adam_steps(tmp_path, False)
    state, rows, opt = _adam_steps(tmp_path, True)
    for k, v in ref_state.items():
        assert torch.equal(state[k], v), k
    assert rows == ref_rows
    for i, s in ref_opt.items():
        assert all(torch.equal(opt[i][k], s[k]) for k in s), i
