"""Downstream predictions of one trained head and their per-class metrics (notebooks 05-08).

Shapes: `N` clips, `T` segments, `K` classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdcid.analysis._arrays import _np
from hdcid.downstream.metrics import video_targets


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class."""
    t, p = _np(y_true).astype(np.int64).ravel(), _np(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape} vs {p.shape}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), found [{min(t.min(), p.min())}, {max(t.max(), p.max())}]")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_accuracy(cm) -> np.ndarray:
    """Recall of each class in % from a confusion matrix (NaN for classes with no samples)."""
    c = _np(cm).astype(np.float64)
    n = c.sum(1)
    return np.where(n > 0, 100.0 * np.diag(c) / np.where(n > 0, n, 1), np.nan)


@dataclass
class TaskPredictions:
    """Predictions of one trained head on a task's cross-modal test split."""

    task: str
    direction: str
    kind: str  # "video" | "segment"
    class_names: list  # K foreground names (+ "background" for segment tasks)
    ids: list
    logits: np.ndarray  # (N, K) video tasks, (N, T, K+1) segment tasks
    labels: np.ndarray  # (N, T, K+1)
    eval_set: str
    epoch: int

    @property
    def y_true(self) -> np.ndarray:
        """(N,) video-level class (video tasks), the same target the heads are scored against."""
        return video_targets(self.labels)

    @property
    def y_pred(self) -> np.ndarray:
        return self.logits.argmax(-1)

    @property
    def segments_pred(self) -> np.ndarray:
        """(N, T, K+1) bool: sigmoid(logit) > 0.5 (segment tasks)."""
        return self.logits > 0.0


def task_predictions(task: str, direction: str, model, data: dict, toc=None, protocol: str = "honest",
                     seed: int = 0, epochs: int | None = None, quick: bool | None = None,
                     cache_dir=None) -> TaskPredictions:
    """Train one head exactly as `hdcid.downstream.run_task` does for one seed and one TOC
    setting, and return its predictions on the cross-modal test split (for confusion matrices,
    per-class accuracy and AVVP timelines). data: `load_task_data(task, root)`."""
    import torch

    from hdcid.downstream import cache as dcache
    from hdcid.downstream import protocol as dprot
    from hdcid.downstream import tasks as dtasks
    from hdcid.toc import apply_toc, select_or_all
    from hdcid.utils import cache_dir as default_cache, is_quick

    spec = dtasks.TASKS[task]
    quick = is_quick() if quick is None else quick
    splits = dtasks.build_splits(task, direction, data, protocol)
    cdir = Path(cache_dir) if cache_dir is not None else default_cache() / "codes"
    idx = select_or_all(toc, model.codebooks().detach().cpu())
    dropout = protocol == "original"
    tr = splits["train"]
    train_codes = dcache.encode_cached(model, tr.clipset, tr.modality, cdir, train_mode=dropout)
    draws = [train_codes.draw(e) for e in range(train_codes.n_draws)] if dropout else [train_codes]
    sel = lambda c: apply_toc(torch.from_numpy(c.quantized), idx).float()  # noqa: E731  (N, T, d)
    ev_codes = {k: dcache.encode_cached(model, s.clipset, s.modality, cdir) for k, s in splits.items() if k != "train"}
    evals = {k: dprot.EvalSet(sel(c), torch.from_numpy(c.labels)) for k, c in ev_codes.items()}
    cfg = dprot.FitConfig(epochs=epochs or (dtasks.QUICK_EPOCHS if quick else spec.epochs), clip_alphas=spec.clip_alphas)
    fit = dprot.fit_head(spec.kind, [sel(c) for c in draws], torch.from_numpy(train_codes.labels), evals,
                         cfg=cfg, protocol=protocol, select_metric=spec.metric, seed=seed)
    test = ev_codes["test_cross"]
    logits = dprot.predict(fit.head, evals["test_cross"].x).numpy()
    names = list(splits["test_cross"].clipset.classes)
    if spec.kind == "segment":
        names = names + ["background"]
    return TaskPredictions(task, direction, spec.kind, names, list(test.ids), logits, test.labels,
                           splits["test_cross"].name, fit.epoch)


def per_class_segment_f1(pred, true) -> np.ndarray:
    """Segment-level F1 (%) per class over all clips and seconds: pred, true (N, T, K) {0,1}.
    NaN for classes that are neither predicted nor present."""
    p, y = _np(pred).astype(bool), _np(true).astype(bool)
    if p.shape != y.shape:
        raise ValueError(f"pred and true must have the same shape, got {p.shape} and {y.shape}")
    tp = (p & y).sum((0, 1)).astype(np.float64)
    denom = p.sum((0, 1)) + y.sum((0, 1))
    return np.where(denom > 0, 200.0 * tp / np.where(denom > 0, denom, 1), np.nan)
