"""Benchmark: one pretraining step (`hdcid.train.Pretrainer.train_step`, docs/method.md §2.10 / §3.4).

Throughput (clips/s = B / median step time over the steps after warm-up) and peak memory for DCID
and H-DCID, tiny and paper presets, float32 and float64; plus the ratio of a paper-preset H-DCID step
with hdcid's defaults (float32, 1 encoder forward per step) to the original's settings (float64,
6 encoder forwards per step: 5 extra no-grad forwards each followed by a CLUB step), measured with
the two models' steps alternated in one process so both see the same machine load. Every
configuration runs in its own subprocess so peak memory is per configuration: on CPU the peak RSS
of that process (`resource.ru_maxrss`, includes the Python/torch baseline, reported separately),
on CUDA `torch.cuda.max_memory_allocated`. Level-2 terms are trained (epoch >= level2_start_epoch).

    python benchmarks/bench_pretrain.py [--quick] [--device cpu|cuda] [--threads N] [--out results.json]
                                        [--paper-batch B] [--skip-paper]

Prints a Markdown table and writes the rows (plus the ratio) as JSON to --out.

Targets (issue 12): the faithful-settings row (float64, 6 forwards) >= 1.5x faster than at commit
429f49d, and the defaults row >= 8x faster than 429f49d's faithful row. Measure against an old tree
with the steps of both processes alternated, e.g. (one ratio process per tree, repeated):

    SPEC='{"ratio": true, "device": "cpu", "threads": 1, "warmup": 1, "steps": 2, "batch": 4}'
    git worktree add ../before 429f49d --detach
    (cd ../before && PYTHONPATH=$PWD python benchmarks/bench_pretrain.py --single "$SPEC")
    PYTHONPATH=$PWD python benchmarks/bench_pretrain.py --single "$SPEC"

Measured so (issue 12, this project's 2-core CPU shared with other jobs, load 3.1-3.4, 2 rounds,
medians): faithful-settings step 56.8 s at 429f49d -> 10.2 s (5.6x); defaults 4.40 s, 12.9x the
429f49d faithful row. The convolutions' share: `benchmarks/bench_conv.py`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.demo.synthetic import random_clipset
from hdcid.train import Pretrainer
from hdcid.utils import get_device


def run_one(spec: dict) -> dict:
    """Time `spec['steps']` steps after `spec['warmup']` warm-up steps of one configuration."""
    device = get_device(spec["device"])
    torch.set_num_threads(spec["threads"])
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    preset = getattr(ModelConfig, spec["preset"])
    mc = preset(spec["variant"])
    tc = getattr(TrainConfig, spec["preset"])(spec["variant"]).replace(
        dtype=spec["dtype"], encoder_forwards_per_step=spec["forwards"], batch_size=spec["batch"]
    )
    ds = random_clipset(mc, spec["batch"])
    trainer = Pretrainer(mc, tc, ds, "/nonexistent-bench-dir", device=device)
    batch = trainer._batch(np.arange(spec["batch"]))
    epoch = tc.level2_start_epoch  # level-2 terms trained (H-DCID)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(spec["warmup"] + spec["steps"]):
        t0 = time.perf_counter()
        row = trainer.train_step(*batch, epoch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= spec["warmup"]:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    out = dict(spec, step_s=med, clips_per_s=spec["batch"] / med, total_loss=row["total"], baseline_mb=base_rss)
    if device.type == "cuda":
        out["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["memory"] = "cuda max_memory_allocated"
    else:
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["memory"] = "peak RSS"
    return out


def run_ratio(spec: dict) -> dict:
    """Paper H-DCID: hdcid defaults (float32, 1 forward) vs the original's settings (float64,
    6 forwards), both models in this process, steps ALTERNATED so both see the same machine load."""
    device = get_device(spec["device"])
    torch.set_num_threads(spec["threads"])
    mc = ModelConfig.paper("hdcid")
    ds = random_clipset(mc, spec["batch"])
    trainers = {}
    for name, dtype, fwd in (("ours", "float32", 1), ("original", "float64", 6)):
        tc = TrainConfig.paper("hdcid").replace(dtype=dtype, encoder_forwards_per_step=fwd, batch_size=spec["batch"])
        tr = Pretrainer(mc, tc, ds, "/nonexistent-bench-dir", device=device)
        trainers[name] = (tr, tr._batch(np.arange(spec["batch"])), tc.level2_start_epoch)
    times: dict[str, list[float]] = {"ours": [], "original": []}
    for i in range(spec["warmup"] + spec["steps"]):
        for name, (tr, batch, epoch) in trainers.items():
            t0 = time.perf_counter()
            tr.train_step(*batch, epoch)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= spec["warmup"]:
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return dict(spec, ours_s=med["ours"], original_s=med["original"], ratio=med["original"] / med["ours"])


def _in_subprocess(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--single", json.dumps(spec)], capture_output=True, text=True)
    if proc.returncode != 0:
        return dict(spec, error=proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps and a smaller paper batch")
    ap.add_argument("--device", default=None, help="cpu | cuda (default: hdcid.utils.get_device())")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--paper-batch", type=int, default=None, help="paper-preset batch (default 4, quick 2)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--skip-paper", action="store_true", help="tiny preset only (smoke test)")
    ap.add_argument("--single", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.single:
        spec = json.loads(args.single)
        print(json.dumps(run_ratio(spec) if spec.get("ratio") else run_one(spec)))
        return {}
    device = str(get_device(args.device))
    paper_b = args.paper_batch or (2 if args.quick else 4)
    steps, warm = (2, 1) if args.quick else (4, 1)
    common = dict(device=device, threads=args.threads, warmup=warm, steps=steps)
    specs = []
    for preset, b in (("tiny", 8 if args.quick else 32), ("paper", paper_b)):
        for variant in ("dcid", "hdcid"):
            for dtype in ("float32", "float64"):
                specs.append(dict(common, preset=preset, variant=variant, dtype=dtype, batch=b, forwards=1))
    specs.append(dict(common, preset="paper", variant="hdcid", dtype="float64", batch=paper_b, forwards=6))
    if args.skip_paper:
        specs = [s for s in specs if s["preset"] != "paper"]
    rows = []
    for s in specs:
        r = _in_subprocess(s)
        rows.append(r)
        print(
            f"  done {s['preset']} {s['variant']} {s['dtype']} x{s['forwards']}: "
            f"{r.get('step_s', float('nan')):.3f} s/step {r.get('error', '')}",
            file=sys.stderr,
            flush=True,
        )
    rspec = dict(common, ratio=True, batch=paper_b, steps=max(steps, 3))
    rat = _in_subprocess(rspec) if not args.skip_paper else {"ratio": float("nan")}
    ratio = rat.get("ratio", float("nan"))
    lines = [
        f"device: {device}, torch {torch.__version__}, threads {args.threads}, "
        f"{'quick' if args.quick else 'full'}; median of {steps} steps after {warm} warm-up",
        "",
        "| preset | variant | dtype | encoder forwards | B | s/step | clips/s | peak MB | memory |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(
                f"| {r['preset']} | {r['variant']} | {r['dtype']} | {r['forwards']} | {r['batch']} "
                f"| error: {r['error']} | | | |"
            )
        else:
            lines.append(
                f"| {r['preset']} | {r['variant']} | {r['dtype']} | {r['forwards']} | {r['batch']} "
                f"| {r['step_s']:.3f} | {r['clips_per_s']:.1f} | {r['peak_mb']:.0f} | {r['memory']} |"
            )
    lines += [
        "",
        f"paper H-DCID step (B={paper_b}), original settings (float64, 6 forwards) / hdcid "
        f"defaults (float32, 1 forward), steps alternated in one process: **{ratio:.2f}x** "
        f"({rat.get('original_s', float('nan')):.3f} s vs {rat.get('ours_s', float('nan')):.3f} s, "
        f"median of {rspec['steps']}) {rat.get('error', '')}",
    ]
    print("\n".join(lines))
    result = {
        "device": device,
        "torch": torch.__version__,
        "quick": args.quick,
        "threads": args.threads,
        "rows": rows,
        "hdcid_paper_speedup_vs_original": ratio,
        "ratio_run": rat,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
