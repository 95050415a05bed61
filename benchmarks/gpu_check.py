"""One short prepared check for a GPU machine: paper-preset DCID and H-DCID pretraining steps.

On CUDA: paper preset, batch 80 (halved on out-of-memory until it fits), 2 warm-up + 5 timed steps
per configuration: DCID float32, H-DCID float32 (hdcid defaults), H-DCID float64 with 6 encoder
forwards per step (the original's settings); reports steps/s, clips/s, the
`torch.cuda.max_memory_allocated` peak and the H-DCID original/default step-time ratio. Budget:
well under 4 minutes on one H100. Without CUDA it falls back to the tiny preset (B=8, 1 + 2 steps)
so the script can be smoke-tested on a CPU. Then checks on the same device, with the tiny preset:
same-seed runs identical, stop-and-resume identical to an uninterrupted run, `encode` pure.

    python benchmarks/gpu_check.py [--out gpu_check.json] [--batch 80] [--steps 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from hdcid.config import ModelConfig, TrainConfig
from hdcid.demo.synthetic import random_clipset
from hdcid.train import Pretrainer


def _measure(
    preset: str, variant: str, dtype: str, forwards: int, batch: int, warm: int, steps: int, device: torch.device
) -> dict:
    mc = getattr(ModelConfig, preset)(variant)
    tc = getattr(TrainConfig, preset)(variant).replace(
        dtype=dtype, encoder_forwards_per_step=forwards, batch_size=batch
    )
    while True:
        try:
            trainer = Pretrainer(mc, tc, random_clipset(mc, batch), "/nonexistent-gpu-check", device=device)
            data = trainer._batch(np.arange(batch))
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            times = []
            for i in range(warm + steps):
                t0 = time.perf_counter()
                row = trainer.train_step(*data, tc.level2_start_epoch)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warm:
                    times.append(time.perf_counter() - t0)
            break
        except torch.OutOfMemoryError:
            trainer = data = None
            torch.cuda.empty_cache()
            if batch <= 1:
                raise
            batch //= 2
            tc = tc.replace(batch_size=batch)
            print(f"  out of memory: retrying {variant} {dtype} with batch {batch}", flush=True)
    med = statistics.median(times)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    out = dict(
        preset=preset,
        variant=variant,
        dtype=dtype,
        forwards=forwards,
        batch=batch,
        step_s=med,
        steps_per_s=1 / med,
        clips_per_s=batch / med,
        peak_gib=peak,
        total_loss=row["total"],
    )
    del trainer, data
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def resume_check(device: torch.device) -> dict:
    """Tiny H-DCID on `device`: same-seed runs identical, stop-and-resume identical to an
    uninterrupted run, `encode` leaves every buffer unchanged. Returns booleans."""
    import tempfile

    from hdcid.demo.synthetic import gaussian_clipset

    ds = gaussian_clipset(n=16, n_classes=4, seed=0, video_dim=32, audio_dim=128, word_dim=384)
    mc = ModelConfig.tiny("hdcid")
    tc = TrainConfig.tiny(
        "hdcid", epochs=2, batch_size=8, max_steps_per_epoch=2, level2_start_epoch=1, encoder_forwards_per_step=2
    )
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))  # noqa: E731
    with tempfile.TemporaryDirectory() as d:
        full = Pretrainer(mc, tc, ds, f"{d}/full", device=device).fit(progress=False)
        twin = Pretrainer(mc, tc, ds, f"{d}/twin", device=device).fit(progress=False)
        Pretrainer(mc, tc, ds, f"{d}/part", device=device).fit(progress=False, stop_after_epoch=0)
        resumed = Pretrainer(mc, tc, ds, f"{d}/part", device=device).fit(progress=False)
    model = full.model
    before = model.buffers_snapshot()
    enc = model.encode(ds.video, "video")
    pure = all(torch.equal(before[k], v) for k, v in model.buffers_snapshot().items())
    return {
        "same_seed_identical": same(full.model, twin.model),
        "resume_identical": same(full.model, resumed.model),
        "encode_buffers_unchanged": pure,
        "encode_device": str(enc.indices[1].device),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--batch", type=int, default=80)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    preset, batch, warm, steps = ("paper", args.batch, 2, args.steps) if cuda else ("tiny", 8, 1, 2)
    if not cuda:
        torch.set_num_threads(1)  # shared small CPUs: oversubscribed intra-op threads are slower
    name = torch.cuda.get_device_name(0) if cuda else "CPU (fallback: tiny preset)"
    print(f"device: {name}, torch {torch.__version__}, preset {preset}", flush=True)
    t_start = time.perf_counter()
    rows = []
    for variant, dtype, forwards in (("dcid", "float32", 1), ("hdcid", "float32", 1), ("hdcid", "float64", 6)):
        r = _measure(preset, variant, dtype, forwards, batch, warm, steps, device)
        rows.append(r)
        print(
            f"  {variant} {dtype} x{forwards}: {r['step_s']:.3f} s/step, peak {r['peak_gib']:.2f} GiB "
            f"({time.perf_counter() - t_start:.0f} s elapsed)",
            flush=True,
        )
    ratio = rows[2]["step_s"] / rows[1]["step_s"]
    print("\n| preset | variant | dtype | encoder forwards | B | s/step | steps/s | clips/s | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['preset']} | {r['variant']} | {r['dtype']} | {r['forwards']} | {r['batch']} | "
            f"{r['step_s']:.3f} | {r['steps_per_s']:.2f} | {r['clips_per_s']:.1f} | {r['peak_gib']:.2f} |"
        )
    print(f"\nH-DCID original settings / hdcid defaults: {ratio:.2f}x")
    checks = resume_check(device)
    print(f"checks on {device}: {checks}")
    print(f"total wall {time.perf_counter() - t_start:.0f} s")
    if args.out:
        Path(args.out).write_text(
            json.dumps({"device": name, "rows": rows, "ratio": ratio, "checks": checks}, indent=2)
        )


if __name__ == "__main__":
    main()
