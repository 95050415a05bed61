"""Nearest-centroid accuracy of raw per-modality features on the AV-Digits AVE-like set.

    python benchmarks/nearest_centroid.py [--root DIR] [--build] [--seed 0] [--scale 1.0]

Features are flattened per segment ((7,7,C) video grids, 128-d audio) and z-scored with the
training statistics. Centroids per class come from the training split; we report on the test split:
  segment: every foreground segment, nearest of the K class centroids;
  clip:    the mean of a clip's foreground segments vs. class centroids of training clip means;
  clip_all: the mean of all 10 segments (no localisation) vs. centroids of training clip means.
Cross-modal transfer is meaningless for raw features (different spaces) and is skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdcid.data import ClipSet, read_ave  # noqa: E402
from hdcid.utils import demo_root  # noqa: E402


def _nearest(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, k: int) -> np.ndarray:
    """Class of the nearest (Euclidean) class centroid of the training points (every class of range(k)
    must occur in train_y)."""
    from sklearn.neighbors import NearestCentroid

    missing = sorted(set(range(k)) - set(np.unique(train_y).tolist()))
    if missing:
        raise ValueError(f"nearest centroid: classes {missing} have no training point")
    return NearestCentroid().fit(train_x, train_y).predict(test_x)


def nearest_centroid(train: ClipSet, test: ClipSet, modality: str) -> dict[str, float]:
    """Accuracies in % (segment, clip, clip_all) of raw `modality` features; see module doc."""
    K = train.n_classes
    xs = [s.features(modality).reshape(len(s), s.n_segments, -1) for s in (train, test)]  # (N, T, F)
    mu, sd = xs[0].reshape(-1, xs[0].shape[2]).mean(0), xs[0].reshape(-1, xs[0].shape[2]).std(0) + 1e-6
    xs = [(x - mu) / sd for x in xs]
    seg = [s.segment_labels() for s in (train, test)]  # (N, T), K = background
    out = {}
    fg_tr, fg_te = seg[0] < K, seg[1] < K
    pred = _nearest(xs[0][fg_tr], seg[0][fg_tr], xs[1][fg_te], K)
    out["segment"] = 100 * float((pred == seg[1][fg_te]).mean())
    clip_mean = lambda x, fg: (x * fg[..., None]).sum(1) / np.maximum(fg.sum(1, keepdims=True), 1)  # noqa: E731
    pred = _nearest(clip_mean(xs[0], fg_tr), train.video_labels(), clip_mean(xs[1], fg_te), K)
    out["clip"] = 100 * float((pred == test.video_labels()).mean())
    pred = _nearest(xs[0].mean(1), train.video_labels(), xs[1].mean(1), K)
    out["clip_all"] = 100 * float((pred == test.video_labels()).mean())
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="nearest-centroid accuracy on the demo AVE-like set")
    p.add_argument("--root", default=None)
    p.add_argument("--build", action="store_true", help="build the corpus first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0)
    a = p.parse_args(argv)
    root = Path(a.root) if a.root else demo_root()
    if a.build:
        from hdcid.demo.build import build_demo

        build_demo(root, seed=a.seed, scale=a.scale, verbose=True)
    train, test = read_ave(root, "train"), read_ave(root, "test")
    print(f"{train.summary()}\n{test.summary()}  (chance {100 / train.n_classes:.1f}%)")
    res = {}
    for m in ("video", "audio"):
        res[m] = nearest_centroid(train, test, m)
        print(f"{m:6s} " + "  ".join(f"{k} {v:5.1f}%" for k, v in res[m].items()))
    return res


if __name__ == "__main__":
    main()
