"""Benchmark: the AVE task with cached codes vs re-encoding every epoch.

    .venv/bin/python benchmarks/bench_cache.py [--epochs 50] [--repeats 3] [--baseline-repeats 1] [--protocol honest]

Both run AVE V->A under `--protocol` (default original: train on the AVE training split in train mode, evaluate
cross- and same-modality on it every epoch) with an untrained tiny model (`--variant dcid|hdcid`)
(``ModelConfig.tiny(variant)``; timing does not depend on the weights):

* cached: ``run_task`` (codes encoded once into the on-disk cache, K = 5 dropout draws for training,
  then every epoch trains the head on tensors). "cold" starts from an empty cache (includes the
  encoding), "warm" reuses it.
* baseline: the original's loop: every epoch encodes the training clips (encoder in train mode) and
  both evaluation sets (eval mode), then trains / evaluates the same head.

Data: the demo corpus (``hdcid.utils.demo_root()``) if it is built, else a synthetic Gaussian set of
the same size. Prints medians and the ratio baseline / cached (target >= 10x).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from hdcid.config import ModelConfig
from hdcid.downstream import TaskOptions, build_splits, load_task_data, run_task
from hdcid.downstream.cache import encode_clipset
from hdcid.downstream.heads import VideoLevelHead
from hdcid.downstream.losses import video_loss
from hdcid.downstream.metrics import video_targets, video_top1
from hdcid.downstream.protocol import FitConfig, predict
from hdcid.model import CrossModalModel
from hdcid.utils import demo_root, seed_everything


def _data():
    root = demo_root()
    try:
        return load_task_data("ave", root), f"demo corpus at {root}"
    except Exception as err:  # noqa: BLE001 - fall back to synthetic data of the demo's size
        from hdcid.demo.synthetic import gaussian_clipset

        sets = {
            s: gaussian_clipset(n=n, n_classes=10, seed=i, video_dim=32, name=f"ave/{s}")
            for i, (s, n) in enumerate((("train", 700), ("val", 150), ("test", 150)))
        }
        return sets, f"synthetic Gaussian clips (demo not readable: {type(err).__name__})"


def reencode_every_epoch(model, splits, epochs: int, seed: int = 0, protocol: str = "original") -> float:
    """The original loop: encode train (train mode under the original protocol, eval mode under the
    honest one) + every evaluated set (eval mode) every epoch. Returns the last epoch's cross-modal
    top-1 (so the work cannot be skipped)."""
    cfg = FitConfig(epochs=epochs)
    seed_everything(seed)
    tr = splits["train"]
    y = torch.as_tensor(video_targets(tr.clipset.labels))
    head = VideoLevelHead(model.cfg.hidden_dim * model.cfg.n_levels, tr.clipset.n_classes)
    opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, list(cfg.milestones), cfg.gamma)
    gen = torch.Generator().manual_seed(seed)
    feats = tr.clipset.features(tr.modality)
    acc = 0.0
    for _ in range(epochs):
        q, _ = encode_clipset(model, feats, tr.modality, train_mode=protocol == "original")  # (N, T, L, D)
        x = torch.from_numpy(q).flatten(2)  # (N, T, L*D)
        head.train()
        perm = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), cfg.batch_size):
            b = perm[s : s + cfg.batch_size]
            loss = video_loss(head(x[b]), y[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), cfg.clip)
            opt.step()
        sched.step()
        for key in ("test_cross", "test_same") + (("val",) if protocol == "honest" else ()):
            ev = splits[key]
            qe, _ = encode_clipset(model, ev.clipset.features(ev.modality), ev.modality)
            logits = predict(head, torch.from_numpy(qe).flatten(2))
            acc = video_top1(logits, video_targets(ev.clipset.labels)) if key == "test_cross" else acc
    return acc


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-repeats", type=int, default=1)
    p.add_argument(
        "--protocol",
        choices=("original", "honest"),
        default="original",
        help="original: 5 cached dropout draws of the training set; honest: one eval-mode encoding",
    )
    p.add_argument(
        "--variant",
        choices=("dcid", "hdcid"),
        default="dcid",
        help="hdcid also runs the convolutional video encoder for level 2 when encoding",
    )
    a = p.parse_args(argv)
    data, source = _data()
    torch.manual_seed(0)
    model = CrossModalModel(ModelConfig.tiny(a.variant)).eval()
    splits = build_splits("ave", "v2a", data, a.protocol)
    n = len(splits["train"].clipset)

    def cached(cache_dir):
        t0 = time.perf_counter()
        opts = TaskOptions(protocol=a.protocol, seeds=(0,), epochs=a.epochs, cache_dir=cache_dir)
        run_task("ave", "v2a", model, data, options=opts)
        return time.perf_counter() - t0

    cold, warm = [], []
    for _ in range(a.repeats):
        with tempfile.TemporaryDirectory() as d:
            cold.append(cached(d))
            warm.append(cached(d))
    base = []
    for _ in range(a.baseline_repeats):
        t0 = time.perf_counter()
        reencode_every_epoch(model, splits, a.epochs, protocol=a.protocol)
        base.append(time.perf_counter() - t0)
    out = {"cold_s": statistics.median(cold), "warm_s": statistics.median(warm), "baseline_s": statistics.median(base)}
    out["ratio_cold"] = out["baseline_s"] / out["cold_s"]
    out["ratio_warm"] = out["baseline_s"] / out["warm_s"]
    print(
        f"AVE V->A, {a.protocol} protocol, {a.epochs} epochs, {n} training clips, tiny {a.variant}, "
        f"{torch.get_num_threads()} threads; data: {source}"
    )
    draws = " + 5 dropout draws" if a.protocol == "original" else ""
    print(f"  cached, cold cache : median {out['cold_s']:.2f} s over {a.repeats} (encode once{draws})")
    print(f"  cached, warm cache : median {out['warm_s']:.2f} s over {a.repeats}")
    print(f"  re-encode / epoch  : median {out['baseline_s']:.2f} s over {a.baseline_repeats}")
    print(f"  ratio baseline/cold {out['ratio_cold']:.1f}x, baseline/warm {out['ratio_warm']:.1f}x (target >= 10x)")
    return out


if __name__ == "__main__":
    main()
