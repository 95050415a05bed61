"""The four cross-modal downstream tasks, their splits under each protocol, and their TOC settings.

Tasks (docs/method.md §5.5) and directions: ``"v2a"`` trains on video codes and tests on audio
codes, ``"a2v"`` the reverse.

| task | head / loss | reported metric | original epochs |
|---|---|---|---|
| ``ave`` | video-level, CE | top-1 % | 50 |
| ``avvp`` | segment, BCE + ExpLog | reference precision % (incl. background)* | 100 |
| ``ave_avvp`` | segment, BCE + ExpLog | reference F1 % | 100 |
| ``ucf_vgg`` | video-level, CE | top-1 % | 100 |

(*) the original also selects the epoch by it; under "honest" AVVP selects on the reference F1
instead (``TaskOptions.select_metric``). Every row of ``run_task`` (``hdcid.downstream.fitting``,
which trains the heads) also carries the standard metrics (``METRIC_COLUMNS``).

Splits. ``train`` trains the head; ``val`` picks the epoch and TOC setting (honest); ``test_cross``
is the cross-modal number; ``test_same`` the same-modality upper bound (same head, test clips in the
training modality).

* original protocol (as published): no validation; the epoch (and TOC setting from a list) is the
  best on ``test_cross``.
  - ave: train = AVE train split; BOTH test sets are the AVE TRAINING split again (the original
    never loads val/test), cross = other modality, same = training modality.
  - avvp: train = clips of the source-modality annotation CSV; cross = clips of the target-modality
    CSV (largely the SAME videos, other modality and labels); same = the training clips.
  - ave_avvp: train = AVE->AVVP training set; cross = AVVP clips with target-modality annotations;
    same = AVVP clips with training-modality annotations (cross-dataset, same modality).
  - ucf_vgg: train = all of the source dataset; cross = all of the other dataset; same = the other
    dataset in the training modality if it has it, else the training clips themselves.
* honest protocol (default): the head never sees a label of the test data, and the validation data
  are held-out clips of the SOURCE dataset in the SOURCE modality (no target labels at all).
  - ave: AVE train / val / test splits; cross and same on AVE test.
  - avvp: the original trains and tests on the same videos; here the union of videos of both CSVs is
    split video-disjointly (by the 11-character YouTube id, fixed seed) 60/20/20 into train / val /
    test; train and val use the source-annotation clips, cross the target-annotation test clips,
    same the source-annotation test clips.
  - ave_avvp: val = 20% of the AVE->AVVP training set (stratified, fixed seed); tests as original.
  - ucf_vgg: val = 20% of the source dataset (stratified); cross = the other dataset; same = the
    other dataset in the training modality if available, else a further held-out 20% of the source.
  Data splits use a fixed seed (``SPLIT_SEED``); the run seeds vary head init and batch order.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from hdcid.downstream.protocol import selection_split
from hdcid.toc import TOCSettings

__all__ = [
    "TASKS",
    "DIRECTIONS",
    "TaskSpec",
    "Split",
    "load_task_data",
    "build_splits",
    "paper_toc",
    "default_toc_grid",
    "SPLIT_SEED",
]

SPLIT_SEED = 0


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str  # "video" | "segment"
    metric: str  # reported (and selection) metric
    epochs: int  # original n_epoch
    clip_alphas: bool = False
    honest_select: str | None = None  # selection metric under "honest" if not ``metric``


TASKS = {
    "ave": TaskSpec("ave", "video", "top1", 50),
    "avvp": TaskSpec("avvp", "segment", "ref_precision", 100, honest_select="ref_f1"),
    "ave_avvp": TaskSpec("ave_avvp", "segment", "ref_f1", 100, clip_alphas=True),
    "ucf_vgg": TaskSpec("ucf_vgg", "video", "top1", 100),
}
DIRECTIONS = {"v2a": ("video", "audio"), "a2v": ("audio", "video")}
_ANNOT = {"video": "visual", "audio": "audio"}

# docs/method.md §4.3: (choose_channel, toc_max_num, toc_min_num) per variant, task, direction
_PAPER_TOC = {
    "dcid": {
        ("ave", "v2a"): (224, 1, 1),
        ("ave", "a2v"): (224, 1, 1),
        ("avvp", "v2a"): (128, 3, 1),
        ("avvp", "a2v"): (128, 3, 1),
        ("ave_avvp", "v2a"): (224, 1, 0),
        ("ave_avvp", "a2v"): (196, 1, 0),
        ("ucf_vgg", "v2a"): (128, 1, 0),
        ("ucf_vgg", "a2v"): (224, 1, 0),
    },
    "hdcid": {
        ("ave", "v2a"): (128, 1, 0),
        ("ave", "a2v"): (196, 1, 0),
        ("avvp", "v2a"): (224, 1, 0),
        ("avvp", "a2v"): (128, 1, 0),
        ("ave_avvp", "v2a"): (196, 1, 1),
        ("ave_avvp", "a2v"): (224, 3, 1),
        ("ucf_vgg", "v2a"): (196, 1, 0),
        ("ucf_vgg", "a2v"): (224, 1, 1),
    },
}


def paper_toc(task: str, direction: str, variant: str = "dcid") -> TOCSettings:
    """The TOC setting of the original shell scripts for a 256-d codebook (docs/method.md §4.3)."""
    return TOCSettings(*_PAPER_TOC[variant][(task, direction)])


def default_toc_grid(D: int) -> list[TOCSettings]:
    """Candidate TOC settings for code width D: budgets D/2, 3D/4, 7D/8 x ratios 1:0, 1:1, 3:1."""
    out = []
    for frac in (0.5, 0.75, 0.875):
        c = max(4, int(round(D * frac / 4)) * 4)
        out += [TOCSettings(c, a, b) for a, b in ((1, 0), (1, 1), (3, 1)) if c <= D]
    return out


@dataclass
class Split:
    """One split: a ClipSet and the modality whose codes are used; ``name`` describes it.

    A split that is a subset of a loaded ClipSet also names it (``parent``) and its rows there
    (``rows``, (n,) int64), so its codes are the parent's cached codes at those rows: every split of
    a task reads one cache file per ClipSet and modality (encoding is per clip: the same codes)."""

    clipset: object
    modality: str
    name: str
    parent: object = None
    rows: np.ndarray | None = None


def _sub(split_of, rows, modality: str, name: str) -> Split:
    """The Split of rows ``rows`` of ``split_of`` (a ClipSet, or a (parent, rows) pair for nested subsets)."""
    parent, base = split_of if isinstance(split_of, tuple) else (split_of, None)
    rows = np.asarray(rows, np.int64)
    in_parent = rows if base is None else base[rows]
    return Split(parent.subset(in_parent), modality, name, parent, in_parent)


def _check(task: str, direction: str, protocol: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected one of {sorted(DIRECTIONS)}")
    selection_split(protocol)  # raises on an unknown protocol


def load_task_data(task: str, data_root) -> dict:
    """Read every ClipSet a task needs from ``data_root`` with the ``hdcid.data`` readers."""
    import hdcid.data as data  # local import: downstream must not need data at import time

    if task == "ave":
        return {s: data.read_ave(data_root, s) for s in ("train", "val", "test")}
    memo: dict = {}  # the two annotation sets name mostly the same AVVP clips: read each zip once
    if task == "avvp":
        return {a: data.read_avvp(data_root, a, memo) for a in ("visual", "audio")}
    if task == "ave_avvp":
        return {
            "train": data.read_ave_avvp_train(data_root),
            **{a: data.read_ave_avvp_test(data_root, a, memo) for a in ("visual", "audio")},
        }
    if task == "ucf_vgg":
        return {"ucf": data.read_ucf(data_root), "vggsound": data.read_vggsound_ucf(data_root)}
    raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASKS)}")


def _has(clipset, modality: str) -> bool:
    return getattr(clipset, modality, None) is not None


def _carve(clipset, frac: float, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Split a ClipSet's rows into (keep, held-out): ``round(frac * N)`` (at least 1) rows held out,
    stratified by video class (``round(frac * n_c)`` per class), topped up at random."""
    y = np.asarray(clipset.video_labels())
    N = len(y)
    if N < 2:
        raise ValueError(f"{clipset.name}: {N} clip(s), too few to hold out {frac:.0%} for validation")
    target = max(1, int(round(frac * N)))
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(y == c))[: int(round(frac * (y == c).sum()))] for c in np.unique(y)]
    held = np.concatenate(held).astype(np.int64)[:target]
    rest = rng.permutation(np.setdiff1d(np.arange(N), held))
    held = np.sort(np.concatenate([held, rest[: target - len(held)]]))
    keep = np.setdiff1d(np.arange(N), held)
    if len(keep) == 0:
        raise ValueError(f"{clipset.name}: too few clips ({N}) to hold out {frac:.0%}")
    return keep, held


def _video_disjoint(clipsets: list, fractions=(0.6, 0.2, 0.2), seed: int = SPLIT_SEED) -> dict:
    """Assign every 11-character video key of the given ClipSets to 'train' / 'val' / 'test'."""
    keys = sorted({str(i)[:11] for cs in clipsets for i in cs.ids})
    keys = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    n_tr = int(round(fractions[0] * len(keys)))
    n_va = int(round(fractions[1] * len(keys)))
    part = {k: "train" for k in keys[:n_tr]}
    part.update({k: "val" for k in keys[n_tr : n_tr + n_va]})
    part.update({k: "test" for k in keys[n_tr + n_va :]})
    return part


def _rows(clipset, part: dict, which: str) -> np.ndarray:
    return np.array([i for i, cid in enumerate(clipset.ids) if part[str(cid)[:11]] == which], np.int64)


def build_splits(task: str, direction: str, data: dict, protocol: str = "honest") -> dict[str, Split]:
    """Splits ``train``, (``val``,) ``test_cross``, ``test_same`` of a task (see module docstring).

    Raises ValueError on an empty split; AVE splits whose orders share clips warn with the overlap
    count, and are refused under "honest".
    """
    _check(task, direction, protocol)
    for key, cs in data.items():
        if cs is not None and len(cs) == 0:
            raise ValueError(
                f"{task}: the loaded ClipSet {key!r} ({getattr(cs, 'name', key)}) has no clips; "
                f"check the data under its reader (load_task_data)"
            )
    splits = _build_splits(task, direction, data, protocol)
    for key, sp in splits.items():
        if len(sp.clipset) == 0:
            raise ValueError(
                f"{task} {direction} ({protocol}): the {key} split ({sp.name}) is empty; "
                f"check the data under its reader (load_task_data)"
            )
    if task == "ave":
        _check_ave_orders(data, protocol)
    return splits


def _check_ave_orders(data: dict, protocol: str) -> None:
    """Warn when AVE's train / val / test orders share clips; refuse under "honest"."""
    ids = {k: set(map(str, data[k].ids)) for k in ("train", "val", "test") if k in data}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if a in ids and b in ids and ids[a] & ids[b]:
            n = len(ids[a] & ids[b])
            msg = (
                f"AVE: the {b} order shares {n} of its {len(ids[b])} clips with the {a} order "
                f"({data[b].name} vs {data[a].name}; see the *_order.h5 files)"
            )
            if protocol == "honest":
                raise ValueError(msg + "; the honest protocol needs disjoint splits")
            warnings.warn(msg, stacklevel=3)


def _build_splits(task: str, direction: str, data: dict, protocol: str) -> dict[str, Split]:
    src, tgt = DIRECTIONS[direction]
    honest = protocol == "honest"
    S = Split
    if task == "ave":
        if not honest:
            tr = data["train"]
            return {
                "train": S(tr, src, "ave/train"),
                "test_cross": S(tr, tgt, "ave/train"),
                "test_same": S(tr, src, "ave/train"),
            }
        return {
            "train": S(data["train"], src, "ave/train"),
            "val": S(data["val"], src, "ave/val"),
            "test_cross": S(data["test"], tgt, "ave/test"),
            "test_same": S(data["test"], src, "ave/test"),
        }
    if task == "avvp":
        a_src, a_tgt = data[_ANNOT[src]], data[_ANNOT[tgt]]
        n_src, n_tgt = f"avvp/{_ANNOT[src]}", f"avvp/{_ANNOT[tgt]}"
        if not honest:
            return {
                "train": S(a_src, src, n_src),
                "test_cross": S(a_tgt, tgt, n_tgt),
                "test_same": S(a_src, src, n_src),
            }
        part = _video_disjoint([a_src, a_tgt])
        return {
            "train": _sub(a_src, _rows(a_src, part, "train"), src, n_src + "[train]"),
            "val": _sub(a_src, _rows(a_src, part, "val"), src, n_src + "[val]"),
            "test_cross": _sub(a_tgt, _rows(a_tgt, part, "test"), tgt, n_tgt + "[test]"),
            "test_same": _sub(a_src, _rows(a_src, part, "test"), src, n_src + "[test]"),
        }
    if task == "ave_avvp":
        tr = data["train"]
        out = {
            "test_cross": S(data[_ANNOT[tgt]], tgt, f"avvp12/{_ANNOT[tgt]}"),
            "test_same": S(data[_ANNOT[src]], src, f"avvp12/{_ANNOT[src]}"),
        }
        if not honest:
            return {"train": S(tr, src, "ave_avvp/train"), **out}
        keep, held = _carve(tr, 0.2)
        return {
            "train": _sub(tr, keep, src, "ave_avvp/train[80%]"),
            "val": _sub(tr, held, src, "ave_avvp/train[20%]"),
            **out,
        }
    # ucf_vgg
    source, target = (data["ucf"], data["vggsound"]) if src == "video" else (data["vggsound"], data["ucf"])
    sname, tname = ("ucf", "vggsound") if src == "video" else ("vggsound", "ucf")
    out = {"test_cross": S(target, tgt, tname)}
    if not honest:
        same = S(target, src, tname) if _has(target, src) else S(source, src, sname + " (train)")
        return {"train": S(source, src, sname), **out, "test_same": same}
    keep, val = _carve(source, 0.2)
    train_rows = keep
    if _has(target, src):
        out["test_same"] = S(target, src, tname)
    else:
        keep2, held = _carve(source.subset(keep), 0.25)
        out["test_same"] = _sub((source, keep), held, src, sname + "[held-out 20%]")
        train_rows = keep[keep2]
    return {
        "train": _sub(source, train_rows, src, sname + "[train]"),
        "val": _sub(source, val, src, sname + "[val]"),
        **out,
    }
