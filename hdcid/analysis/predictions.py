"""Downstream predictions of one trained head and their per-class metrics (notebooks 05-08).

Shapes: `N` clips, `T` segments, `K` classes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from hdcid.analysis._arrays import _np
from hdcid.downstream.fitting import TaskOptions
from hdcid.downstream.metrics import video_targets


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """(K, K) counts, rows = true class, columns = predicted class (``sklearn.metrics.confusion_matrix``
    over the labels 0..K-1; labels outside that range are an error, not silently dropped)."""
    t, p = _np(y_true).astype(np.int64).ravel(), _np(y_pred).astype(np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape} vs {p.shape}")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(
            f"labels must lie in [0, {n_classes}), found [{min(t.min(), p.min())}, {max(t.max(), p.max())}]"
        )
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    return sk_confusion_matrix(t, p, labels=np.arange(n_classes))


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


def task_predictions(
    task: str, direction: str, model, data: dict, *, toc=None, options: TaskOptions = TaskOptions(), fit=None
) -> TaskPredictions:
    """The head `hdcid.downstream.run_task` trains for the first seed of `options.seeds` (only that
    seed is trained) and `toc` (None, one setting or a list of candidates), through the same fitting
    path (`hdcid.downstream.fit_task`: same epoch and candidate selection), and its predictions on
    the cross-modal test split (for confusion matrices, per-class accuracy and AVVP timelines).
    data: `load_task_data(task, root)`; options: as `run_task` (`hdcid.downstream.TaskOptions`).
    fit: a `TaskFit` that already holds this head (e.g. from `run_grid(..., fits=...)`): its head of
    that seed is used and nothing trains; it must match task, direction, toc and options (but seeds)."""
    from hdcid.downstream import protocol as dprot
    from hdcid.downstream.fitting import fit_task
    from hdcid.downstream.tasks import TASKS

    seed = options.seeds[0]
    if fit is None:
        tf = fit_task(task, direction, model, data, toc=toc, options=dataclasses.replace(options, seeds=(seed,)))
    else:
        tf = fit
        cands = list(toc) if isinstance(toc, (list, tuple)) else [toc]
        same_opts = dataclasses.replace(tf.options, seeds=(seed,)) == dataclasses.replace(options, seeds=(seed,))
        got = (tf.task, tf.direction, list(tf.candidates), same_opts, seed in tf.best)
        want = (task, direction, cands, True, True)
        if got != want:
            raise ValueError(
                f"task_predictions: fit is for (task, direction, toc, same options but seeds, has seed {seed}) = "
                f"{got}, expected {want}"
            )
    res, _, evals = tf.best[seed]
    kind = TASKS[task].kind
    test = tf.splits["test_cross"]
    logits = dprot.predict(res.head, evals["test_cross"].x).numpy()
    names = list(test.clipset.classes) + (["background"] if kind == "segment" else [])
    return TaskPredictions(
        task,
        direction,
        kind,
        names,
        list(test.clipset.ids),
        logits,
        evals["test_cross"].labels.numpy(),
        test.name,
        res.epoch,
    )


def per_class_segment_f1(pred, true) -> np.ndarray:
    """Segment-level F1 (%) per class over all clips and seconds: pred, true (N, T, K) {0,1}.
    NaN for classes that are neither predicted nor present."""
    p, y = _np(pred).astype(bool), _np(true).astype(bool)
    if p.shape != y.shape:
        raise ValueError(f"pred and true must have the same shape, got {p.shape} and {y.shape}")
    tp = (p & y).sum((0, 1)).astype(np.float64)
    denom = p.sum((0, 1)) + y.sum((0, 1))
    return np.where(denom > 0, 200.0 * tp / np.where(denom > 0, denom, 1), np.nan)
