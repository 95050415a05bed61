"""Benchmark: data-parallel pretraining step (hdcid/train_ddp.py, gloo) vs one process, on the CPU.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ddp.py [--preset tiny] [--variant hdcid]
        [--batch 32] [--steps 8] [--ranks 2] [--rounds 2]

Per round, alternated: one process with 1 thread, `--ranks` gloo processes with 1 thread each
(torch.multiprocessing spawn) on the same global batch, one process with `--ranks` threads. Prints
the median seconds per optimizer step of each (the first 2 steps are warm-up). On a CPU this
measures what the collectives cost; the data-parallel path is meant for several GPUs (NCCL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from hdcid.config import ModelConfig, TrainConfig
from hdcid.demo.synthetic import random_clipset
from hdcid.train import Pretrainer


def _configs(a) -> tuple[ModelConfig, TrainConfig]:
    mc = getattr(ModelConfig, a.preset)(a.variant)
    return mc, getattr(TrainConfig, a.preset)(a.variant, batch_size=a.batch)


def _median_step(trainer, a) -> float:
    times = []
    for s in range(a.steps):
        batch = trainer._batch(np.arange(s * a.batch, (s + 1) * a.batch) % (4 * a.batch))
        t0 = time.perf_counter()
        trainer.train_step(*batch, 0)
        times.append(time.perf_counter() - t0)
    return statistics.median(times[2:])


def _rank(rank: int, a, store: str, out: str) -> None:
    from hdcid.train_ddp import DistributedPretrainer

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=a.ranks)
    try:
        mc, tc = _configs(a)
        tr = DistributedPretrainer(mc, tc, random_clipset(mc, 4 * a.batch), f"{out}/unused", device="cpu")
        t = _median_step(tr, a)
        if rank == 0:
            Path(f"{out}/ddp.txt").write_text(str(t))
    finally:
        dist.destroy_process_group()


def _single(a, threads: int, out: str) -> float:
    torch.set_num_threads(threads)
    mc, tc = _configs(a)
    return _median_step(Pretrainer(mc, tc, random_clipset(mc, 4 * a.batch), f"{out}/unused", device="cpu"), a)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=["tiny", "paper"], default="tiny")
    p.add_argument("--variant", choices=["dcid", "hdcid"], default="hdcid")
    p.add_argument("--batch", type=int, default=32, help="global batch")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2)
    a = p.parse_args(argv)
    if Path("/sys/class/net/lo").exists():  # gloo on the loopback interface (inherited by the ranks)
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    rows = {"1 process, 1 thread": [], f"{a.ranks} gloo ranks, 1 thread each": [], f"1 process, {a.ranks} threads": []}
    names = list(rows)
    with tempfile.TemporaryDirectory() as out:
        for r in range(a.rounds):
            rows[names[0]].append(_single(a, 1, out))
            mp.spawn(_rank, args=(a, f"{out}/store{r}", out), nprocs=a.ranks)
            rows[names[1]].append(float(Path(f"{out}/ddp.txt").read_text()))
            rows[names[2]].append(_single(a, a.ranks, out))
    print(f"{a.preset} {a.variant}, global batch {a.batch}, {a.rounds} rounds (median s/step per round):")
    for name, ts in rows.items():
        print(f"  {name:<28} {' '.join(f'{t:.3f}' for t in ts)}  median {statistics.median(ts):.3f}")
    return {k: statistics.median(v) for k, v in rows.items()}


if __name__ == "__main__":
    main()
