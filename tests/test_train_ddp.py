"""Data-parallel pretraining (hdcid/train_ddp.py) equals single-process pretraining on the global batch.

Two gloo processes (torch.multiprocessing spawn, file:// rendezvous: no port) each take their shard;
one process takes the whole batch. float64, dropout off (masks are drawn per rank, the one part that
is not exact). Compared to 1e-6: every parameter and buffer (codebooks, EMA counts and sums, reset
counters, centring statistics) and every logged term. Both ranks must also hold identical states.
Cases: DCID (CMCM, centring) with uneven shards 3 + 2; faithful H-DCID (6 encoder forwards, level 2,
dead-code resets) with shards 2 + 2 for 2 steps; H-DCID before level 2 trains (unused parameters in
both DDP instances); `fit` for 2 epochs with a resume in between on 2 ranks against one uninterrupted
single-process `fit`; dropout on: replicas stay identical; the torchrun entry point on the demo corpus.
"""

from __future__ import annotations

import math
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hdcid.config import ModelConfig, TrainConfig
from hdcid.demo.synthetic import random_clipset
from hdcid.train import Pretrainer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed gloo"),
]


def _gloo_env() -> dict:
    """Gloo on the loopback interface (a container's hostname may not resolve to a usable address)."""
    env = dict(os.environ)
    if sys.platform.startswith("linux") and Path("/sys/class/net/lo").exists():
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def _cases() -> dict:
    """name -> (ModelConfig, TrainConfig, global batch size, steps)."""
    dcid = (
        ModelConfig.tiny("dcid", dropout=0.0),
        TrainConfig.tiny("dcid", dtype="float64", batch_size=5),
        5,
        1,
    )
    hdcid = (
        ModelConfig.tiny("hdcid", dropout=0.0, reset_after=2),
        TrainConfig.tiny("hdcid", dtype="float64", batch_size=4, encoder_forwards_per_step=6),
        4,
        2,
    )
    # level 2 not yet trained (paper schedule): its modules and CLUB estimators get no gradient
    level1 = (
        ModelConfig.tiny("hdcid", dropout=0.0),
        TrainConfig.tiny("hdcid", dtype="float64", batch_size=4, level2_start_epoch=1),
        4,
        1,
    )
    dropout = (ModelConfig.tiny("hdcid", reset_after=2), TrainConfig.tiny("hdcid", dtype="float64"), 4, 2)
    return {"dcid": dcid, "hdcid": hdcid, "level1": level1, "dropout": dropout}


def _fit_cfgs() -> tuple[ModelConfig, TrainConfig]:
    mc = ModelConfig.tiny("dcid", dropout=0.0, reset_after=3)
    return mc, TrainConfig.tiny("dcid", dtype="float64", batch_size=4, epochs=2, max_steps_per_epoch=2)


def _steps(trainer, mc, tc, n, steps):
    resets = [torch.zeros(mc.n_codes) for _ in range(mc.n_levels)]
    batch = trainer._batch(np.arange(n))
    rows = [trainer.train_step(*batch, 0, resets=resets) for _ in range(steps)]
    return {"state": trainer.model.state_dict(), "rows": rows, "resets": resets, "rng": torch.get_rng_state()}


def _worker(rank: int, world: int, store: str, out: str) -> None:
    from hdcid.distributed import RankStream
    from hdcid.train_ddp import DistributedPretrainer

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{store}", rank=rank, world_size=world, timeout=timedelta(seconds=120)
    )
    try:
        res = {}
        for name, (mc, tc, n, steps) in _cases().items():
            tr = DistributedPretrainer(mc, tc, random_clipset(mc, n, seed=1), f"{out}/unused", device="cpu")
            res[name] = _steps(tr, mc, tc, n, steps)
            fresh = RankStream(torch.device("cpu"), tr._stream_seed(0)).state[0]
            res[name]["dropout_used"] = not torch.equal(tr._dropout_rng.state[0], fresh)
        mc, tc = _fit_cfgs()
        data = random_clipset(mc, 8, seed=2)
        DistributedPretrainer(mc, tc, data, f"{out}/fit", device="cpu").fit(progress=False, stop_after_epoch=0)
        fit = DistributedPretrainer(mc, tc, data, f"{out}/fit", device="cpu").fit(progress=False)  # resumes
        res["fit"] = {"state": fit.model.state_dict(), "rows": fit.history.to_dict("records"), "usage": fit.usage}
        torch.save(res, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _close_rows(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for k in x:
            assert math.isclose(x[k], y[k], rel_tol=1e-6, abs_tol=1e-6) or (np.isnan(x[k]) and np.isnan(y[k])), k


def _close_states(a: dict, b: dict, exact: bool = False) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if exact:
            assert torch.equal(a[k], b[k]), k
        else:
            assert torch.allclose(a[k].double(), b[k].double(), rtol=1e-6, atol=1e-6), (k, (a[k] - b[k]).abs().max())


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    with pytest.MonkeyPatch.context() as mp_env:
        if "GLOO_SOCKET_IFNAME" in _gloo_env():
            mp_env.setenv("GLOO_SOCKET_IFNAME", _gloo_env()["GLOO_SOCKET_IFNAME"])  # inherited by the ranks
        ctx = mp.spawn(_worker, args=(2, str(out / "store"), str(out)), nprocs=2, join=False)
    deadline = time.monotonic() + 240
    while not ctx.join(timeout=2):  # raises if a rank failed
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail("the 2-rank run did not finish within 240 s")
    return [torch.load(out / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("name", ["dcid", "hdcid", "level1"])
def test_two_ranks_equal_one_process_on_the_global_batch(ranks, name, tmp_path):
    mc, tc, n, steps = _cases()[name]
    torch.set_num_threads(1)
    ref = _steps(Pretrainer(mc, tc, random_clipset(mc, n, seed=1), tmp_path, device="cpu"), mc, tc, n, steps)
    if name == "hdcid":
        assert sum(float(r.sum()) for r in ref["resets"]) > 0  # dead-code resets (RNG draws) took place
    for rank in ranks:
        _close_states(rank[name]["state"], ref["state"])
        _close_rows(rank[name]["rows"], ref["rows"])
        assert all(torch.equal(a, b) for a, b in zip(rank[name]["resets"], ref["resets"]))
        assert torch.equal(rank[name]["rng"], ref["rng"])  # the shared stream drew exactly what 1 process drew
        assert not rank[name]["dropout_used"]  # dropout off: the rank-local stream is never drawn from
    _close_states(ranks[0][name]["state"], ranks[1][name]["state"], exact=True)  # one codebook everywhere


def test_replicas_stay_identical_with_rank_local_dropout(ranks):
    a, b = ranks[0]["dropout"], ranks[1]["dropout"]
    _close_states(a["state"], b["state"], exact=True)
    assert a["rows"] == b["rows"]
    assert torch.equal(a["rng"], b["rng"])  # the shared stream (t*, permutations, resets) stays in sync
    assert a["dropout_used"] and b["dropout_used"]  # masks came from each rank's own stream


def test_fit_with_resume_on_two_ranks_equals_one_process(ranks, tmp_path):
    mc, tc = _fit_cfgs()
    torch.set_num_threads(1)
    ref = Pretrainer(mc, tc, random_clipset(mc, 8, seed=2), tmp_path, device="cpu").fit(progress=False)
    for rank in ranks:
        _close_states(rank["fit"]["state"], ref.model.state_dict())
        _close_rows(rank["fit"]["rows"], ref.history.to_dict("records"))
        for got, want in zip(rank["fit"]["usage"], ref.usage):  # per-epoch code counts summed over ranks
            for g, w in zip(got["counts"], want["counts"]):
                assert all(torch.equal(g[m], w[m]) for m in w)


def test_torchrun_entry_point_trains_and_rank0_writes(small_demo_root, tmp_path):
    """The README's launch line on the small demo corpus: 2 gloo ranks, one step, one checkpoint."""
    import subprocess

    from hdcid.train import list_checkpoints

    out = tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "hdcid.train_ddp"]
    cmd += ["--data-root", str(small_demo_root), "--preset", "tiny", "--batch-size", "4", "--epochs", "1"]
    cmd += ["--max-steps-per-epoch", "1", "--out", str(out)]
    env = {**_gloo_env(), "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 steps on 2 ranks" in done.stdout
    assert [p.name for p in list_checkpoints(out)] == ["epoch-0.pt"]
    assert not [p for p in out.iterdir() if p.name != "epoch-0.pt"]  # no temporaries left
