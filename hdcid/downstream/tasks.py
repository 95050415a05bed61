"""The four cross-modal downstream tasks, their splits under each protocol, and ``run_task``.

Tasks (docs/method.md §5.5) and directions: ``"v2a"`` trains on video codes and tests on audio
codes, ``"a2v"`` the reverse.

| task | head / loss | reported metric | original epochs |
|---|---|---|---|
| ``ave`` | video-level, CE | top-1 % | 50 |
| ``avvp`` | segment, BCE + ExpLog | reference precision % (incl. background)* | 100 |
| ``ave_avvp`` | segment, BCE + ExpLog | reference F1 % | 100 |
| ``ucf_vgg`` | video-level, CE | top-1 % | 100 |

(*) the original also selects the epoch by it; under "honest" AVVP selects on the reference F1
instead (see ``run_task``). Every row also carries the standard metrics (``METRIC_COLUMNS``).

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
import pandas as pd
import torch

from hdcid.downstream.batched import Member, fit_heads
from hdcid.downstream.cache import Codes, encode_cached
from hdcid.downstream.protocol import EvalSet, FitConfig, _threads, evaluate_all, fit_head, selection_split
from hdcid.toc import TOCSettings, apply_toc, select_or_all
from hdcid.utils import cache_dir as default_cache_dir
from hdcid.utils import get_device

__all__ = [
    "TASKS",
    "DIRECTIONS",
    "TaskSpec",
    "Split",
    "load_task_data",
    "build_splits",
    "run_task",
    "paper_toc",
    "default_toc_grid",
    "encoder_name",
    "METRIC_COLUMNS",
    "SPLIT_SEED",
    "TaskFit",
    "fit_task",
    "result_rows",
]

SPLIT_SEED = 0
QUICK_HEAD_EPOCHS = 8  # head epochs in quick mode (pretraining has hdcid.notebook.QUICK_EPOCHS)
METRIC_COLUMNS = (
    "top1",
    "ref_precision",
    "ref_recall",
    "ref_f1",
    "micro_precision",
    "micro_recall",
    "micro_f1",
    "seg_f1",
    "event_f1",
)


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
    """One split: a ClipSet and the modality whose codes are used; ``name`` describes it."""

    clipset: object
    modality: str
    name: str


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
    if task == "avvp":
        return {a: data.read_avvp(data_root, a) for a in ("visual", "audio")}
    if task == "ave_avvp":
        return {
            "train": data.read_ave_avvp_train(data_root),
            **{a: data.read_ave_avvp_test(data_root, a) for a in ("visual", "audio")},
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
        sub = {w: a_src.subset(_rows(a_src, part, w)) for w in ("train", "val", "test")}
        return {
            "train": S(sub["train"], src, n_src + "[train]"),
            "val": S(sub["val"], src, n_src + "[val]"),
            "test_cross": S(a_tgt.subset(_rows(a_tgt, part, "test")), tgt, n_tgt + "[test]"),
            "test_same": S(sub["test"], src, n_src + "[test]"),
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
            "train": S(tr.subset(keep), src, "ave_avvp/train[80%]"),
            "val": S(tr.subset(held), src, "ave_avvp/train[20%]"),
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
    train_cs = source.subset(keep)
    if _has(target, src):
        out["test_same"] = S(target, src, tname)
    else:
        keep2, held = _carve(train_cs, 0.25)
        out["test_same"] = S(train_cs.subset(held), src, sname + "[held-out 20%]")
        train_cs = train_cs.subset(keep2)
    return {"train": S(train_cs, src, sname + "[train]"), "val": S(source.subset(val), src, sname + "[val]"), **out}


def encoder_name(model) -> str:
    """``model.name`` if set, else "DCID" / "H-DCID" from ``model.cfg.variant``."""
    name = getattr(model, "name", None)
    if isinstance(name, str):
        return name
    variant = getattr(getattr(model, "cfg", None), "variant", "dcid")
    return {"dcid": "DCID", "hdcid": "H-DCID"}.get(variant, str(variant))


def _select(codes: Codes | np.ndarray, idx) -> torch.Tensor:
    q = codes.quantized if isinstance(codes, Codes) else codes
    return apply_toc(torch.from_numpy(q), idx).float()  # (N, T, d)


def _code_rows(codes: Codes, codebooks: torch.Tensor) -> torch.Tensor:
    """The codebook rows of ``codes.indices``: (N, T, L, D) float32.

    The cached ``quantized`` vectors are these rows up to the straight-through estimator's rounding
    (``z + (e - z)``, about 1e-7); the exact rows take at most n_codes distinct values per level,
    which lets the batched heads' first layer work on a table of codes (``hdcid.downstream.batched``).
    Falls back to the cached vectors if they are not codebook rows (an encoder of another kind).
    """
    q = torch.from_numpy(codes.quantized)
    k = torch.from_numpy(codes.indices)
    cb = codebooks.float()
    rows = torch.stack([cb[lv][k[..., lv]] for lv in range(cb.shape[0])], dim=2)  # (N, T, L, D)
    if rows.shape != q.shape or not torch.allclose(rows, q, rtol=1e-5, atol=1e-5):
        return q
    return rows


@dataclass
class TaskFit:
    """What ``fit_task`` trained: per seed the chosen candidate's FitResult, TOC setting and eval codes."""

    task: str
    direction: str
    protocol: str
    quick: bool
    splits: dict  # name -> Split
    candidates: list  # TOCSettings | None, in order
    seeds: tuple
    epochs: int
    dropout: bool
    select_metric: str
    cfg: FitConfig
    n_train: int
    best: dict  # seed -> (FitResult, TOCSettings | None, {split: EvalSet})
    histories: dict  # (seed, toc label) -> per-epoch history


def _epochs(spec: TaskSpec, epochs: int | None, quick: bool, protocol: str, model) -> int:
    """The head's epoch count (see ``run_task``); epochs must be a positive integer when given."""
    if epochs is not None:
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer (or None for the task default), got {epochs!r}")
        return int(epochs)
    src_epoch = getattr(model, "source_epoch", None)
    if protocol == "original" and not quick and isinstance(src_epoch, int):
        return max(1, spec.epochs - src_epoch - 1)  # the original's loop starts at ckpt epoch + 1
    return QUICK_HEAD_EPOCHS if quick else spec.epochs


def _seeds(seeds, quick: bool) -> tuple:
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one seed, got an empty sequence")
    return seeds[:2] if quick else seeds


def fit_task(
    task: str,
    direction: str,
    model,
    data: dict,
    *,
    toc=None,
    protocol: str = "honest",
    seeds=(0, 1, 2),
    epochs: int | None = None,
    quick: bool = False,
    cache_dir=None,
    device=None,
    encoder_dropout: bool | None = None,
    fit: dict | None = None,
    select_metric: str | None = None,
    batched: bool = True,
) -> TaskFit:
    """Train the heads of one task / direction and choose epoch and TOC candidate per seed.

    The one fitting path of ``run_task`` and ``hdcid.analysis.task_predictions`` (arguments as
    ``run_task``). batched: True trains every (candidate, seed) head as one batched model
    (``hdcid.downstream.batched``); False trains them one by one with ``fit_head`` (the reference).
    """
    _check(task, direction, protocol)
    spec = TASKS[task]
    splits = build_splits(task, direction, data, protocol)
    seeds = _seeds(seeds, quick)
    dropout = (protocol == "original") if encoder_dropout is None else encoder_dropout
    cdir = default_cache_dir() / "codes" if cache_dir is None else cache_dir
    candidates = list(toc) if isinstance(toc, (list, tuple)) else [toc]
    if not candidates:
        raise ValueError("toc: an empty list of candidates; pass None for no TOC")
    codebooks = model.codebooks().detach().cpu()
    idx_lists = [select_or_all(t, codebooks) for t in candidates]
    tr = splits["train"]
    train_codes = encode_cached(model, tr.clipset, tr.modality, cdir, train_mode=dropout)
    ev_codes = {k: encode_cached(model, s.clipset, s.modality, cdir) for k, s in splits.items() if k != "train"}
    labels = {k: torch.from_numpy(c.labels) for k, c in ev_codes.items()}
    draws = [train_codes.draw(e) for e in range(train_codes.n_draws)] if dropout else [train_codes]
    cfg = FitConfig(
        **{"epochs": _epochs(spec, epochs, quick, protocol, model), "clip_alphas": spec.clip_alphas, **(fit or {})}
    )
    sel_metric = select_metric or (spec.honest_select if protocol == "honest" else None) or spec.metric
    train_y = torch.from_numpy(train_codes.labels)
    xs = [[_select(c, idx) for c in draws] for idx in idx_lists] if not batched else None  # cand -> draws
    evals = [{k: EvalSet(_select(c, idx), labels[k]) for k, c in ev_codes.items()} for idx in idx_lists]
    members = [Member(c, s) for c in range(len(candidates)) for s in seeds]  # candidate-major
    if batched:
        split = selection_split(protocol)
        with _threads(cfg.cpu_threads, get_device(device)):
            fits = fit_heads(
                spec.kind,
                [_code_rows(c, codebooks) for c in draws],
                train_y,
                _code_rows(ev_codes[split], codebooks),
                labels[split],
                idx_lists,
                members,
                cfg=cfg,
                select_split=split,
                select_metric=sel_metric,
                device=get_device(device),
            )
    else:
        fits = [
            fit_head(
                spec.kind,
                xs[m.cand],
                train_y,
                evals[m.cand],
                cfg=cfg,
                protocol=protocol,
                select_metric=sel_metric,
                seed=m.seed,
                device=device,
            )
            for m in members
        ]
    best, histories = {}, {}
    for m, res in zip(members, fits):  # first candidate wins ties, per seed
        t = candidates[m.cand]
        histories[(m.seed, None if t is None else t.label)] = res.history
        if m.seed not in best or res.select_value > best[m.seed][0].select_value:
            best[m.seed] = (res, t, evals[m.cand])
    return TaskFit(
        task,
        direction,
        protocol,
        quick,
        splits,
        candidates,
        seeds,
        cfg.epochs,
        dropout,
        sel_metric,
        cfg,
        len(train_codes),
        best,
        histories,
    )


def result_rows(tf: TaskFit, encoder: str) -> pd.DataFrame:
    """The tidy rows of a ``TaskFit``: per seed, the chosen head on ``test_cross`` and ``test_same``."""
    spec = TASKS[tf.task]
    rows = []
    for seed in tf.seeds:
        res, t, evals = tf.best[seed]
        for ev, key in (("cross", "test_cross"), ("same", "test_same")):
            m = evaluate_all(spec.kind, res.head, evals[key], tf.cfg.batch_size)
            rows.append(
                {
                    "task": tf.task,
                    "direction": tf.direction,
                    "train_modality": tf.splits["train"].modality,
                    "test_modality": tf.splits[key].modality,
                    "encoder": encoder,
                    "toc": "none" if t is None else t.label,
                    "toc_candidates": len(tf.candidates),
                    "protocol": tf.protocol,
                    "mode": "quick" if tf.quick else "full",
                    "seed": seed,
                    "eval": ev,
                    "eval_set": tf.splits[key].name,
                    "metric": spec.metric,
                    "value": m[spec.metric],
                    "epoch": res.epoch,
                    "epochs": tf.epochs,
                    "select_split": selection_split(tf.protocol),
                    "select_metric": tf.select_metric,
                    "select_value": res.select_value,
                    "encoder_dropout": tf.dropout,
                    "n_train": tf.n_train,
                    "n_test": len(evals[key].x),
                    **{c: m.get(c, np.nan) for c in METRIC_COLUMNS},
                }
            )
    return pd.DataFrame(rows)


def run_task(
    task: str,
    direction: str,
    model,
    *,
    data: dict | None = None,
    data_root=None,
    toc=None,
    protocol: str = "honest",
    seeds=(0, 1, 2),
    epochs: int | None = None,
    quick: bool = False,
    cache_dir=None,
    device=None,
    encoder_dropout: bool | None = None,
    name: str | None = None,
    histories: dict | None = None,
    fit: dict | None = None,
    select_metric: str | None = None,
    batched: bool = True,
) -> pd.DataFrame:
    """Train heads on one task / direction and return a tidy DataFrame.

    One row per seed x eval ("cross" = other modality, "same" = training modality upper bound)
    with columns task, direction, train_modality, test_modality, encoder, toc, protocol, mode,
    seed, eval, eval_set, metric, value, epoch, epochs, select_split, select_value, n_train, n_test
    and every metric of ``METRIC_COLUMNS`` (NaN where it does not apply).
    data: pre-loaded ClipSets (``load_task_data``), or data_root to read them.
    toc: None (all dims), one TOCSettings, or a list of candidates (chosen per seed on the selection
    split; a list may contain None).
    quick: quick mode (an explicit argument; nothing is read from the environment): 8 epochs unless
    ``epochs`` is given, and only the first two seeds; rows say ``mode="quick"``.
    epochs: a positive integer, or None for the task default: the original's n_epoch (50 AVE, 100
    others); under the original protocol with a model from a released checkpoint
    (``model.source_epoch`` set) ``n_epoch - source_epoch - 1``, as the original's loop continues the
    pretraining counter. encoder_dropout: default True for "original", False for "honest".
    histories: a dict to receive the per-epoch curves, keyed by (seed, toc label) (batched: the
    training loss and the selection split only).
    fit: overrides of the head schedule (``FitConfig`` fields, e.g. ``{"lr": 1e-2}``).
    select_metric: the metric that picks epoch and TOC setting; default the reported metric, except
    AVVP under "honest", which selects on the reference F1 (precision alone is maximised by a head
    that predicts almost nothing but background; seen on the demo corpus).
    batched: train all heads as one batched model (default) or one by one (the reference path).
    """
    if data is None:
        if data_root is None:
            raise ValueError("run_task: give data (load_task_data) or data_root")
        data = load_task_data(task, data_root)
    tf = fit_task(
        task,
        direction,
        model,
        data,
        toc=toc,
        protocol=protocol,
        seeds=seeds,
        epochs=epochs,
        quick=quick,
        cache_dir=cache_dir,
        device=device,
        encoder_dropout=encoder_dropout,
        fit=fit,
        select_metric=select_metric,
        batched=batched,
    )
    if histories is not None:
        histories.update(tf.histories)
    return result_rows(tf, name or encoder_name(model))
