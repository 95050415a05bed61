"""Fitting the heads of one task / direction: ``TaskOptions``, ``fit_task``, ``result_rows``, ``run_task``.

``run_task(task, direction, model, data, toc=..., options=TaskOptions(...))`` trains the heads of one
cell of the results table on cached, frozen codes and returns tidy rows; the tasks, their splits
and their TOC settings are ``hdcid.downstream.tasks``, the head schedule and the protocols
``hdcid.downstream.protocol``. ``fit_task`` is the one fitting path, shared with
``hdcid.analysis.task_predictions``; ``TaskOptions`` is the one options object of ``run_task``,
``fit_task``, ``run_grid`` / ``run_paper_grid`` and ``task_predictions``. Shown in notebooks 05-08.

Shapes: ``N`` clips, ``T`` segments, ``L`` levels, ``D`` code width, ``d`` the TOC-selected width.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hdcid.downstream.batched import Member, fit_heads
from hdcid.downstream.cache import Codes, dataset_fingerprint, encode_cached, model_fingerprint
from hdcid.downstream.protocol import EvalSet, FitConfig, _threads, evaluate_all, fit_head, selection_split
from hdcid.downstream.tasks import TASKS, TaskSpec, _check, build_splits
from hdcid.toc import apply_toc, select_or_all
from hdcid.utils import cache_dir as default_cache_dir
from hdcid.utils import get_device
from hdcid.workers import POOLS

__all__ = [
    "TaskOptions",
    "TaskFit",
    "fit_task",
    "fit_task_groups",
    "plan_task_groups",
    "GroupPlan",
    "result_rows",
    "run_task",
    "encoder_name",
    "METRIC_COLUMNS",
]

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
_FIT_FIELDS = tuple(f.name for f in dataclasses.fields(FitConfig) if f.name != "epochs")


@dataclass(frozen=True)
class TaskOptions:
    """How the heads of a task are trained, chosen and reported (checked when made).

    protocol: "honest" (default) or "original" (``hdcid.downstream.protocol``).
    seeds: head seeds (initialisation and batch order), at least one; quick mode keeps the first two.
    epochs: a positive integer, or None for the task default: the original's n_epoch (50 AVE, 100
    others); under the original protocol with a model from a released checkpoint
    (``model.source_epoch`` set) ``n_epoch - source_epoch - 1``, as the original's loop continues the
    pretraining counter; quick mode: 8.
    quick: quick mode (an explicit option; nothing is read from the environment): 8 epochs unless
    ``epochs`` is given, and only the first two seeds; rows say ``mode="quick"``.
    encoder_dropout: None: on for "original" (5 cached dropout draws), off for "honest".
    select_metric: the metric that picks epoch and TOC setting; None: the reported metric, except AVVP
    under "honest", which selects on the reference F1 (precision alone is maximised by a head that
    predicts almost nothing but background; seen on the demo corpus).
    fit: overrides of the head schedule, ``FitConfig`` fields other than epochs (e.g. ``{"lr": 1e-2}``).
    batched: train all (TOC candidate, seed) heads as one batched model (default) or one by one with
    ``fit_head`` (the reference path).
    cache_dir: the codes cache (None: ``hdcid.utils.cache_dir() / "codes"``).
    device: where the heads train (None: CUDA when available, else the CPU).
    workers: how many cells of ``run_grid`` / ``run_paper_grid`` fit at once (None: one per CPU
    core on the CPU, 1 on a GPU); the results do not depend on it.
    pool: where those cells fit, "processes" (forked workers, CPU only) or "threads"; None:
    processes on the CPU where the platform forks (Linux), else threads (``hdcid.workers``).
    """

    protocol: str = "honest"
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int | None = None
    quick: bool = False
    encoder_dropout: bool | None = None
    select_metric: str | None = None
    fit: dict = field(default_factory=dict, hash=False)
    batched: bool = True
    cache_dir: str | Path | None = None
    device: str | torch.device | None = None
    workers: int | None = None
    pool: str | None = None

    def __post_init__(self) -> None:
        selection_split(self.protocol)  # raises on an unknown protocol
        seeds = tuple(self.seeds)
        if not seeds:
            raise ValueError("seeds must name at least one seed, got an empty sequence")
        e = self.epochs
        if e is not None and (isinstance(e, bool) or not isinstance(e, (int, np.integer)) or e < 1):
            raise ValueError(f"epochs must be a positive integer (or None for the task default), got {e!r}")
        w = self.workers
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1):
            raise ValueError(f"workers must be a positive integer (or None: one per CPU core), got {w!r}")
        if self.pool is not None and self.pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS} or None (chosen by the device), got {self.pool!r}")
        unknown = sorted(set(self.fit) - set(_FIT_FIELDS))
        if unknown:
            hint = " (the head epochs are TaskOptions(epochs=...))" if "epochs" in unknown else ""
            raise ValueError(f"fit: unknown FitConfig field(s) {unknown}{hint}; expected some of {list(_FIT_FIELDS)}")
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "epochs", None if e is None else int(e))
        object.__setattr__(self, "fit", dict(self.fit))  # a copy: the caller's dict stays theirs


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


def _split_codes(model, split, cdir, train_mode: bool = False, model_fp: str | None = None, memo=None) -> Codes:
    """The codes of a split: its parent ClipSet's cached codes at its rows (eval mode), else its own.

    memo: a dict shared by the calls of one plan or grid, whose ClipSets do not change meanwhile:
    each ClipSet's fingerprint (per modality), and each parent's codes (per model), are computed
    once (``_memo``)."""
    memo = {} if memo is None else memo
    mod = split.modality
    if split.parent is not None and not train_mode:
        dfp = _memo(memo, ("dataset", mod), split.parent, lambda: dataset_fingerprint(split.parent, mod))
        return _memo(
            memo,
            ("codes", model_fp, str(cdir), mod),
            split.parent,
            lambda: encode_cached(model, split.parent, mod, cdir, model_fp=model_fp, dataset_fp=dfp),
        ).subset(split.rows)
    dfp = _memo(memo, ("dataset", mod), split.clipset, lambda: dataset_fingerprint(split.clipset, mod))
    return encode_cached(model, split.clipset, mod, cdir, train_mode=train_mode, model_fp=model_fp, dataset_fp=dfp)


def _memo(memo: dict, key: tuple, obj, compute):
    """``memo``'s value for (key, obj), computed once; kept with obj itself, so that another object
    that later takes the id of a freed one is not taken for it."""
    k = (*key, id(obj))
    if k not in memo or memo[k][0] is not obj:
        memo[k] = (obj, compute())
    return memo[k][1]


@dataclass
class TaskFit:
    """What ``fit_task`` trained: per seed the chosen candidate's FitResult, TOC setting and eval codes.

    seeds, epochs, dropout and select_metric are the values ``options`` resolved to."""

    task: str
    direction: str
    options: TaskOptions
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


def _epochs(spec: TaskSpec, options: TaskOptions, model) -> int:
    """The head's epoch count (``TaskOptions.epochs``)."""
    if options.epochs is not None:
        return options.epochs
    src_epoch = getattr(model, "source_epoch", None)
    if options.protocol == "original" and not options.quick and isinstance(src_epoch, int):
        return max(1, spec.epochs - src_epoch - 1)  # the original's loop starts at ckpt epoch + 1
    return QUICK_HEAD_EPOCHS if options.quick else spec.epochs


def fit_task(
    task: str, direction: str, model, data: dict, *, toc=None, options: TaskOptions = TaskOptions()
) -> TaskFit:
    """Train the heads of one task / direction and choose epoch and TOC candidate per seed.

    The one fitting path of ``run_task`` and ``hdcid.analysis.task_predictions``. data: the task's
    ClipSets (``load_task_data``); toc: None (all dims), one TOCSettings, or a list of candidates
    (chosen per seed on the selection split; a list may contain None); options: ``TaskOptions``.
    """
    return fit_task_groups(task, direction, model, data, [toc], options=options)[0]


def fit_task_groups(
    task: str, direction: str, model, data: dict, tocs: list, *, options: TaskOptions = TaskOptions()
) -> list[TaskFit]:
    """``[fit_task(..., toc=t, options=options) for t in tocs]`` with every head trained at once.

    The members of all groups (each group's candidates x seeds) train as one batched model and the
    codes are read once; each group still chooses its own candidate per seed. Members are independent,
    so the heads equal separate calls up to float rounding (the groups share one zero padding, see
    ``hdcid.downstream.batched``); ``run_grid`` uses it for the rows without and with TOC.
    """
    plan = plan_task_groups(task, direction, model, data, tocs, options=options)
    return plan.assemble(plan.fit())


def plan_task_groups(
    task: str,
    direction: str,
    model,
    data: dict,
    tocs: list,
    *,
    options: TaskOptions = TaskOptions(),
    memo: dict | None = None,
) -> GroupPlan:
    """The first half of ``fit_task_groups``: check the arguments and read (or encode) the codes.

    Returns a ``GroupPlan`` whose ``fit()`` trains the heads (touching neither the model nor the
    code cache, so ``run_grid`` can run it in a worker process) and whose ``assemble(fits)`` turns
    the trained heads into one ``TaskFit`` per group. memo: a dict shared by the plans of one grid,
    whose models and data do not change meanwhile: each model is fingerprinted, and each ClipSet's
    codes are read, once for all of them."""
    protocol = options.protocol
    _check(task, direction, protocol)
    spec = TASKS[task]
    splits = build_splits(task, direction, data, protocol)
    seeds = options.seeds[:2] if options.quick else options.seeds
    dropout = (protocol == "original") if options.encoder_dropout is None else options.encoder_dropout
    cdir = default_cache_dir() / "codes" if options.cache_dir is None else options.cache_dir
    groups = [list(t) if isinstance(t, (list, tuple)) else [t] for t in tocs]
    if not groups or not all(groups):
        raise ValueError("toc: an empty list of candidates; pass None for no TOC")
    candidates = [t for g in groups for t in g]  # every group's candidates, in order
    codebooks = model.codebooks().detach().cpu()
    memo = {} if memo is None else memo
    fp = _memo(memo, ("model",), model, lambda: model_fingerprint(model))  # hashed once for every split
    train_codes = _split_codes(model, splits["train"], cdir, dropout, fp, memo)
    ev_codes = {k: _split_codes(model, s, cdir, model_fp=fp, memo=memo) for k, s in splits.items() if k != "train"}
    return GroupPlan(
        task=task,
        direction=direction,
        options=options,
        splits=splits,
        groups=groups,
        seeds=seeds,
        dropout=dropout,
        cfg=FitConfig(**{"epochs": _epochs(spec, options, model), "clip_alphas": spec.clip_alphas, **options.fit}),
        select_metric=options.select_metric or (spec.honest_select if protocol == "honest" else None) or spec.metric,
        codebooks=codebooks,
        idx_lists=[select_or_all(t, codebooks) for t in candidates],
        draws=[train_codes.draw(e) for e in range(train_codes.n_draws)] if dropout else [train_codes],
        ev_codes=ev_codes,
    )


@dataclass
class GroupPlan:
    """A cell's heads ready to train: its splits, codes and schedule (``plan_task_groups``).

    Pickled (to a worker process of ``run_grid``), a plan leaves its splits behind (their ClipSets
    hold every clip's features): ``fit()`` needs only the codes; ``assemble`` runs where it was made."""

    task: str
    direction: str
    options: TaskOptions
    splits: dict  # name -> Split
    groups: list  # per group its TOC candidates (TOCSettings | None)
    seeds: tuple
    dropout: bool
    cfg: FitConfig
    select_metric: str
    codebooks: torch.Tensor  # (L, n_codes, D)
    idx_lists: list  # per candidate (every group's, in order) its kept dims per level, or None
    draws: list  # the training codes of each draw (Codes)
    ev_codes: dict  # evaluation split -> Codes

    def __getstate__(self) -> dict:
        return {**self.__dict__, "splits": None}

    @property
    def candidates(self) -> list:
        return [t for g in self.groups for t in g]

    @property
    def members(self) -> list[Member]:
        return [Member(c, s) for c in range(len(self.idx_lists)) for s in self.seeds]  # candidate-major

    def fit(self) -> list:
        """One ``FitResult`` per member (``members``), batched (``fit_heads``) or one by one
        (``fit_head``, ``TaskOptions.batched=False``)."""
        spec, cfg, protocol = TASKS[self.task], self.cfg, self.options.protocol
        train_y = torch.from_numpy(self.draws[0].labels)
        if self.options.batched:
            device = get_device(self.options.device)
            split = selection_split(protocol)
            with _threads(cfg.cpu_threads, device):
                return fit_heads(
                    spec.kind,
                    [_code_rows(c, self.codebooks) for c in self.draws],
                    train_y,
                    _code_rows(self.ev_codes[split], self.codebooks),
                    torch.from_numpy(self.ev_codes[split].labels),
                    self.idx_lists,
                    self.members,
                    cfg=cfg,
                    select_split=split,
                    select_metric=self.select_metric,
                    device=device,
                )
        xs = [[_select(c, idx) for c in self.draws] for idx in self.idx_lists]  # candidate -> draws
        evals = [self._evals(c) for c in range(len(self.idx_lists))]  # candidate -> splits, once
        return [
            fit_head(
                spec.kind,
                xs[m.cand],
                train_y,
                evals[m.cand],
                cfg=cfg,
                protocol=protocol,
                select_metric=self.select_metric,
                seed=m.seed,
                device=self.options.device,
            )
            for m in self.members
        ]

    def _evals(self, c: int) -> dict:
        """Candidate c's evaluation splits: {split: EvalSet}."""
        return {k: EvalSet(_select(v, self.idx_lists[c]), torch.from_numpy(v.labels)) for k, v in self.ev_codes.items()}

    def assemble(self, fits: list) -> list[TaskFit]:
        """One ``TaskFit`` per group from ``fit()``'s results: per seed the candidate whose selection
        value is highest (the first one on ties)."""
        candidates, members = self.candidates, self.members
        group_of = [i for i, g in enumerate(self.groups) for _ in g]  # candidate -> group
        evals: dict = {}  # candidate -> {split: EvalSet}, built for the chosen candidates only
        out = []
        for gi, group in enumerate(self.groups):
            best, histories = {}, {}
            for m, res in zip(members, fits):
                if group_of[m.cand] != gi:
                    continue
                t = candidates[m.cand]
                histories[(m.seed, None if t is None else t.label)] = res.history
                if m.seed not in best or res.select_value > best[m.seed][0].select_value:
                    best[m.seed] = (res, t, m.cand)
            for _, _, c in best.values():
                if c not in evals:
                    evals[c] = self._evals(c)
            best = {s: (res, t, evals[c]) for s, (res, t, c) in best.items()}
            out.append(
                TaskFit(
                    self.task,
                    self.direction,
                    self.options,
                    self.splits,
                    group,
                    self.seeds,
                    self.cfg.epochs,
                    self.dropout,
                    self.select_metric,
                    self.cfg,
                    len(self.draws[0]),
                    best,
                    histories,
                )
            )
        return out


def result_rows(tf: TaskFit, encoder: str) -> pd.DataFrame:
    """The tidy rows of a ``TaskFit``: per seed, the chosen head on ``test_cross`` and ``test_same``."""
    spec = TASKS[tf.task]
    rows = []
    for seed in tf.seeds:
        res, t, evals = tf.best[seed]
        for ev, key in (("cross", "test_cross"), ("same", "test_same")):
            with _threads(tf.cfg.cpu_threads, next(res.head.parameters()).device):
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
                    "protocol": tf.options.protocol,
                    "mode": "quick" if tf.options.quick else "full",
                    "seed": seed,
                    "eval": ev,
                    "eval_set": tf.splits[key].name,
                    "metric": spec.metric,
                    "value": m[spec.metric],
                    "epoch": res.epoch,
                    "epochs": tf.epochs,
                    "select_split": selection_split(tf.options.protocol),
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
    data: dict,
    *,
    toc=None,
    options: TaskOptions = TaskOptions(),
    name: str | None = None,
    histories: dict | None = None,
) -> pd.DataFrame:
    """Train heads on one task / direction and return a tidy DataFrame.

    One row per seed x eval ("cross" = other modality, "same" = training modality upper bound)
    with columns task, direction, train_modality, test_modality, encoder, toc, protocol, mode,
    seed, eval, eval_set, metric, value, epoch, epochs, select_split, select_value, n_train, n_test
    and every metric of ``METRIC_COLUMNS`` (NaN where it does not apply).
    data: the task's ClipSets (``load_task_data(task, data_root)``).
    toc: None (all dims), one TOCSettings, or a list of candidates (chosen per seed on the selection
    split; a list may contain None).
    options: protocol, seeds, epochs, quick mode, ... (``TaskOptions``), e.g.
    ``run_task("ave", "v2a", model, data, options=TaskOptions(quick=True))``.
    name: the encoder column (default ``encoder_name(model)``).
    histories: a dict to receive the per-epoch curves, keyed by (seed, toc label) (batched: the
    training loss and the selection split only).
    """
    tf = fit_task(task, direction, model, data, toc=toc, options=options)
    if histories is not None:
        histories.update(tf.histories)
    return result_rows(tf, name or encoder_name(model))
