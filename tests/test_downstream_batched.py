"""Batched heads (hdcid.downstream.batched) equal the sequential reference (fit_head), member by member."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hdcid.downstream.fitting import METRIC_COLUMNS, TaskOptions, fit_task, run_task
from hdcid.toc import TOCSettings
from hdcid.workers import can_fork

_spec = importlib.util.spec_from_file_location("_fake_enc", Path(__file__).with_name("test_downstream_cache.py"))
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)


def _data(task):
    L = fake.learnable_clipset
    if task == "ave":
        return {
            "train": L(90, seed=0, name="ave/train"),
            "val": L(30, seed=1, name="ave/val"),
            "test": L(30, seed=2, name="ave/test"),
        }
    return {
        "train": L(90, seed=5, name="ave_avvp/train", segment=True),
        "visual": L(30, seed=6, name="avvp12/visual", segment=True),
        "audio": L(30, seed=7, name="avvp12/audio", segment=True),
    }


_INIT = __import__("hdcid.downstream.batched", fromlist=["_Inputs"])._Inputs.__init__


def _record(self, *a, calls, **k):
    _INIT(self, *a, **k)
    calls.insert(0, self.table)


# candidates of three widths (16 = all dims, 6, 4): the batched fit pads them to one width
TOCS = [None, TOCSettings(6, 1, 0), TOCSettings(4, 1, 1)]
FORKS = pytest.mark.skipif(not can_fork(), reason="forked worker processes need Linux")


@pytest.mark.parametrize(
    "task,protocol,table",
    [
        ("ave", "honest", None),
        ("ave_avvp", "honest", None),
        ("ave", "original", None),
        ("ave", "honest", False),
        ("ave_avvp", "original", False),
    ],
)
def test_batched_heads_equal_the_sequential_reference(tmp_path, monkeypatch, task, protocol, table):
    """table None: the codes are codebook rows (11 distinct vectors), so the first layer runs on the
    table of distinct codes; False forces the dense products."""
    import functools

    import hdcid.downstream.batched as batched
    import hdcid.downstream.fitting as fitting

    calls = []

    def spy(*a, **k):
        res = batched.fit_heads(*a, **k, table=table)
        calls.append(k)
        return res

    monkeypatch.setattr(fitting, "fit_heads", spy)
    monkeypatch.setattr(batched._Inputs, "__init__", functools.partialmethod(_record, calls=calls))
    enc = fake.learnable_encoder()
    opts = TaskOptions(
        protocol=protocol, seeds=(0, 1, 2), epochs=14, cache_dir=tmp_path, fit={"lr": 3e-3, "batch_size": 16}
    )  # 6 batches per epoch, the last one partial
    seq = fit_task(task, "v2a", enc, _data(task), toc=TOCS, options=replace(opts, batched=False))
    bat = fit_task(task, "v2a", enc, _data(task), toc=TOCS, options=opts)
    assert calls[0] == (table is None)  # the form that ran: table when auto, dense when forced
    assert set(seq.histories) == set(bat.histories) and len(seq.histories) == 9
    for key, h_seq in seq.histories.items():
        h_bat = bat.histories[key]
        cols = list(h_bat.columns)  # train/loss and the selection split's headline metrics
        assert "train/loss" in cols and len(cols) >= 2
        np.testing.assert_allclose(h_bat[cols].to_numpy(), h_seq[cols].to_numpy(), rtol=0, atol=1e-4, err_msg=str(key))
    # the curves must move (a test that cannot fail proves nothing)
    sel = [c for c in cols if c != "train/loss"][0]
    assert max(h[sel].nunique() for h in seq.histories.values()) > 3
    for seed in (0, 1, 2):
        (r_s, t_s, _), (r_b, t_b, _) = seq.best[seed], bat.best[seed]
        assert (r_s.epoch, t_s) == (r_b.epoch, t_b)
        assert r_b.select_value == pytest.approx(r_s.select_value, abs=1e-4)
        for k, v in r_s.head.state_dict().items():
            np.testing.assert_allclose(r_b.head.state_dict()[k].numpy(), v.numpy(), atol=1e-4)


def test_run_task_batched_rows_equal_reference_rows(tmp_path):
    enc = fake.learnable_encoder()
    opts = TaskOptions(seeds=(0, 1), epochs=10, cache_dir=tmp_path, fit={"lr": 1e-2})
    a = run_task("ave_avvp", "a2v", enc, _data("ave_avvp"), toc=TOCS, options=opts)
    b = run_task("ave_avvp", "a2v", enc, _data("ave_avvp"), toc=TOCS, options=replace(opts, batched=False))
    pd.testing.assert_frame_equal(
        a.drop(columns=["value", *METRIC_COLUMNS, "select_value"]),
        b.drop(columns=["value", *METRIC_COLUMNS, "select_value"]),
    )
    np.testing.assert_allclose(
        a[["value", "select_value", *METRIC_COLUMNS]].to_numpy(float),
        b[["value", "select_value", *METRIC_COLUMNS]].to_numpy(float),
        atol=1e-4,
    )


# ------------------------------------------------------------------ bad arguments and splits (issue 11)
def test_task_options_reject_bad_values():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="epochs must be a positive integer"):
            TaskOptions(epochs=bad)
    with pytest.raises(ValueError, match="seeds must name at least one seed"):
        TaskOptions(seeds=())
    with pytest.raises(ValueError, match="protocol must be one of"):
        TaskOptions(protocol="honset")
    with pytest.raises(ValueError, match=r"unknown FitConfig field\(s\) \['epochs'\] \(the head epochs are"):
        TaskOptions(fit={"epochs": 3})
    with pytest.raises(ValueError, match=r"unknown FitConfig field\(s\) \['learning_rate'\]"):
        TaskOptions(fit={"learning_rate": 1e-3})
    o = TaskOptions(seeds=[3, 4], epochs=np.int64(5), fit=(f := {"lr": 1e-2}))
    f["lr"] = 1.0  # the caller's dict stays theirs
    assert (o.seeds, o.epochs, o.fit) == ((3, 4), 5, {"lr": 1e-2}) and type(o.epochs) is int
    assert o == TaskOptions(seeds=(3, 4), epochs=5, fit={"lr": 1e-2}) and hash(o) == hash(replace(o))


def test_quick_mode_is_an_argument_not_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HDCID_QUICK", "1")
    enc = fake.learnable_encoder()
    df = run_task("ave", "v2a", enc, _data("ave"), options=TaskOptions(epochs=1, cache_dir=tmp_path))
    assert sorted(set(df["seed"])) == [0, 1, 2] and set(df["mode"]) == {"full"}
    df = run_task("ave", "v2a", enc, _data("ave"), options=TaskOptions(cache_dir=tmp_path, quick=True))
    assert sorted(set(df["seed"])) == [0, 1] and set(df["mode"]) == {"quick"} and set(df["epochs"]) == {8}


def test_overlapping_ave_orders_warn_and_are_refused_when_honest(tmp_path):
    enc = fake.learnable_encoder()
    data = _data("ave")
    data["test"] = data["train"].subset(np.arange(12), name="ave/test")  # 12 clips of train as "test"
    with pytest.raises(ValueError, match="test order shares 12 of its 12 clips with the train order"):
        run_task("ave", "v2a", enc, data, options=TaskOptions(epochs=1, cache_dir=tmp_path))
    with pytest.warns(UserWarning, match="shares 12 of its 12 clips"):
        run_task("ave", "v2a", enc, data, options=TaskOptions(epochs=1, protocol="original", cache_dir=tmp_path))


def test_empty_split_is_named(tmp_path):
    enc = fake.learnable_encoder()
    data = _data("ave")
    data["val"] = data["val"].subset(np.arange(0), name="ave/val")
    with pytest.raises(ValueError, match="'val' \\(ave/val\\) has no clips"):
        run_task("ave", "v2a", enc, data, options=TaskOptions(epochs=1, cache_dir=tmp_path))
    data = _data("ave_avvp")
    data["train"] = data["train"].subset(np.arange(0), name="ave_avvp/train")
    with pytest.raises(ValueError, match="'train' \\(ave_avvp/train\\) has no clips"):
        run_task("ave_avvp", "v2a", enc, data, options=TaskOptions(epochs=1, cache_dir=tmp_path))


@pytest.mark.parametrize("task", ["ave", "avvp", "ave_avvp", "ucf_vgg"])
def test_task_predictions_is_the_head_run_task_reports(tmp_path, small_demo_root, task):
    """One fitting path: the head of analysis.task_predictions is run_task's (same epoch, same TOC
    candidate, same cross-modal metrics), on every task (AVVP honest selects on ref_f1)."""
    from hdcid import analysis
    from hdcid.downstream import load_task_data
    from hdcid.downstream.metrics import segment_metrics, video_targets, video_top1
    from hdcid.downstream.tasks import TASKS

    enc = fake.FakeEncoder(levels=2, n_codes=16, dim=8, video_dim=32, audio_dim=128)
    data = load_task_data(task, small_demo_root)
    tocs = [None, TOCSettings(4, 1, 1)]
    opts = TaskOptions(seeds=(1,), epochs=6, cache_dir=tmp_path)
    df = run_task(task, "v2a", enc, data, toc=tocs, options=opts)
    pred = analysis.task_predictions(task, "v2a", enc, data, toc=tocs, options=replace(opts, seeds=(1, 2)))
    cross = df[df["eval"] == "cross"].iloc[0]
    assert cross["epoch"] == pred.epoch
    if TASKS[task].kind == "video":
        assert cross["value"] == pytest.approx(video_top1(pred.logits, video_targets(pred.labels)), abs=1e-4)
    else:
        m = segment_metrics(pred.logits, pred.labels)
        for k in ("ref_precision", "ref_f1", "micro_f1", "event_f1"):
            assert cross[k] == pytest.approx(m[k], abs=1e-4), k


def test_unique_rows_equals_torch_unique():
    from hdcid.downstream.tuples import unique_rows

    g = torch.Generator().manual_seed(0)
    codebook = torch.randn(7, 5, generator=g)
    for x in (
        codebook[torch.randint(0, 7, (500,), generator=g)],  # code vectors: few distinct rows
        torch.randint(0, 3, (400, 4), generator=g),  # tuples of table rows
        torch.randint(0, 2, (300, 6), generator=g).float(),  # multi-hot label rows
    ):
        u, inv = unique_rows(x)
        u_ref, inv_ref = torch.unique(x, dim=0, return_inverse=True)
        assert torch.equal(u, u_ref) and torch.equal(inv, inv_ref)


def _spans_always(width_spans, widths, M, d, rows, device):
    spans = width_spans(widths, M, d, 10**9, device)  # a huge saving: always split
    assert widths is None or len(spans) == len(set(widths))
    return spans


def _split_by_width(monkeypatch):
    """Make loss_and_grads split the d x d products by width whatever the cost estimate says."""
    import functools

    import hdcid.downstream.tuples as tuples

    monkeypatch.setattr(tuples, "_width_spans", functools.partial(_spans_always, tuples._width_spans))


def _padded_head(g, widths, d, K, U, alpha=False):
    """Random float64 head parameters of members of the given input widths, zero-padded to d, and
    a table of U rows each: (keep (M, d), tab (M, U, d), p) with p requiring grad."""
    M = len(widths)
    keep = torch.stack([(torch.arange(d) < w).double() for w in widths])  # (M, d) each member's columns
    tab = torch.randn(M, U, d, generator=g, dtype=torch.float64) * keep[:, None, :]
    p = {
        "W1": torch.randn(M, d, d, generator=g, dtype=torch.float64) * keep[:, :, None] * keep[:, None, :],
        "b1": torch.randn(M, d, generator=g, dtype=torch.float64) * keep,
        "W2": torch.randn(M, K, d, generator=g, dtype=torch.float64) * keep[:, None, :],
        "b2": torch.randn(M, K, generator=g, dtype=torch.float64),
    }
    if alpha:
        p["alpha"] = 0.3 * torch.randn(M, K, generator=g, dtype=torch.float64)
    return keep, tab, {k: v.requires_grad_(True) for k, v in p.items()}


def _assert_written_out_equals_autograd(got, grads, want, p, keep):
    """The loss (M,) and gradients written out equal autograd's (p[k].grad after want.sum().backward())
    in float64, none trivially zero, and the zero padding of W1 gets none."""
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12, atol=0)
    for k, v in p.items():
        assert grads[k].shape == v.shape
        np.testing.assert_allclose(grads[k].numpy(), v.grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=k)
        assert float(v.grad.abs().max()) > 1e-4  # the gradient is not trivially zero
    pad = (1 - keep[:, :, None] * keep[:, None, :]).bool()
    assert float(grads["W1"][pad].abs().max()) == 0.0


@pytest.mark.parametrize("levels", [1, 2])
@pytest.mark.parametrize("unfolded", [True, False])
@pytest.mark.parametrize("by_width", [True, False])
def test_segment_gradients_written_out_equal_autograd(monkeypatch, unfolded, by_width, levels):
    """SegmentTuples.loss_and_grads (the training step of segment heads) gives the loss and the
    gradients autograd takes of SegmentTuples.loss, in float64 to 1e-10, through either product
    order, with the d x d products over whole padded members or over each width's block, for
    members of different widths (zero-padded: their padding gets zero gradient) and a partial
    batch."""
    from hdcid.downstream.tuples import SegmentTuples

    g = torch.Generator().manual_seed(3)
    N, T, L, U, K1, d = 40, 5, levels, 9, 6, 8  # one level: every table row is a tuple (no selection product)
    widths = [8, 8, 5, 5, 3]
    rows = [torch.randint(0, U, (N, T, L), generator=g), torch.randint(0, U, (12, T, L), generator=g)]
    y = (torch.rand(N, T, K1, generator=g) < 0.3).float()
    seg = SegmentTuples(rows, y, (torch.rand(12, T, K1, generator=g) < 0.3).float(), 4, torch.device("cpu"))
    keep, tab, p = _padded_head(g, widths, d, K1, U, alpha=True)
    b = torch.stack([torch.randperm(N, generator=g)[:7] for _ in widths])  # (M, 7): a partial batch
    want = seg.loss(p, tab, 0, b)
    want.sum().backward()
    if by_width:
        _split_by_width(monkeypatch)
    got, grads = seg.loss_and_grads(p, tab, 0, b, widths if by_width else None, unfolded=unfolded)
    _assert_written_out_equals_autograd(got, grads, want, p, keep)


@pytest.mark.parametrize("by_width", [True, False])
@pytest.mark.parametrize("levels", [1, 2])
def test_video_gradients_written_out_equal_autograd(monkeypatch, levels, by_width):
    """ClipTuples.loss_and_grads (the training step of video heads) gives the cross-entropy and the
    gradients autograd takes through batched._forward (TableMax) and batched._loss, in float64 to
    1e-10, for zero-padded members of different widths (their padding gets zero gradient), with the
    d x d products over whole padded members or over each width's block, tuples with equal inputs
    (ties in the max) and a partial batch."""
    from hdcid.downstream.batched import _forward, _loss
    from hdcid.downstream.tuples import ClipTuples, clip_tuples

    g = torch.Generator().manual_seed(5)
    N, T, U, K, d = 30, 6, 7, 4, 8
    widths = [8, 8, 5, 5, 3]
    rows = [torch.randint(0, U, (N, T, levels), generator=g) + torch.arange(levels) * U]  # level l: rows l U ..
    tuples, clips = clip_tuples(rows)
    keep, tab, p = _padded_head(g, widths, d, K, levels * U)
    tab[:, 1] = tab[:, 0]  # two table rows with one input: tuples that tie in every hidden unit
    y = torch.randint(0, K, (N,), generator=g)
    b = torch.stack([torch.randperm(N, generator=g)[:7] for _ in widths])  # (M, 7): a partial batch
    want = _loss("video", p, _forward("video", p, ("tuples", tab, tuples, clips[0][b])), y[b])
    want.sum().backward()
    if by_width:
        _split_by_width(monkeypatch)
    got, grads = ClipTuples(tuples, clips, y, torch.device("cpu")).loss_and_grads(
        p, tab, 0, b, widths if by_width else None
    )
    _assert_written_out_equals_autograd(got, grads, want, p, keep)


@pytest.mark.parametrize("task", ["ave", "ave_avvp"])
def test_one_batched_fit_of_several_toc_groups_equals_separate_fits(tmp_path, task):
    """run_grid trains the rows without and with TOC as one batched model (fit_task_groups): the same
    chosen epochs and candidates as separate fit_task calls, curves and metrics to 1e-4; and
    task_predictions(fit=...) reuses such a fit's head instead of training it again."""
    from hdcid import analysis
    from hdcid.downstream.fitting import fit_task_groups, result_rows

    enc = fake.learnable_encoder()
    opts = TaskOptions(seeds=(0, 1), epochs=12, cache_dir=tmp_path, fit={"lr": 3e-3, "batch_size": 16})
    groups = [None, TOCS[1:]]
    together = fit_task_groups(task, "v2a", enc, _data(task), groups, options=opts)
    for tf, toc in zip(together, groups):
        alone = fit_task(task, "v2a", enc, _data(task), toc=toc, options=opts)
        assert set(tf.histories) == set(alone.histories)
        for key, h in alone.histories.items():
            np.testing.assert_allclose(tf.histories[key].to_numpy(), h.to_numpy(), atol=1e-4, err_msg=str(key))
        assert [(r.epoch, t) for r, t, _ in tf.best.values()] == [(r.epoch, t) for r, t, _ in alone.best.values()]
        a, b = result_rows(tf, "x"), result_rows(alone, "x")
        np.testing.assert_allclose(
            a[list(METRIC_COLUMNS)].to_numpy(float), b[list(METRIC_COLUMNS)].to_numpy(float), atol=1e-4
        )
    pred = analysis.task_predictions(task, "v2a", enc, _data(task), options=opts, fit=together[0])
    again = analysis.task_predictions(task, "v2a", enc, _data(task), options=opts)
    assert pred.epoch == again.epoch == together[0].best[0][0].epoch
    np.testing.assert_allclose(pred.logits, again.logits, atol=1e-4)
    with pytest.raises(ValueError, match="task_predictions: fit is for"):
        analysis.task_predictions(task, "a2v", enc, _data(task), options=opts, fit=together[0])


def test_subset_splits_read_their_parents_codes(tmp_path):
    """Honest splits that are subsets of a loaded ClipSet (ave_avvp train/val) take the parent's
    cached codes at their rows: the same codes, labels and ids as encoding the subset, one cache file."""
    from hdcid.downstream.cache import encode_cached
    from hdcid.downstream.fitting import _split_codes
    from hdcid.downstream.tasks import build_splits

    enc, data = fake.learnable_encoder(), _data("ave_avvp")
    splits = build_splits("ave_avvp", "v2a", data, "honest")
    assert splits["train"].parent is data["train"] and splits["val"].parent is data["train"]
    assert sorted(np.concatenate([splits["train"].rows, splits["val"].rows])) == list(range(len(data["train"])))
    for key in ("train", "val"):
        sp = splits[key]
        got, want = _split_codes(enc, sp, tmp_path / "a"), encode_cached(enc, sp.clipset, sp.modality, tmp_path / "b")
        np.testing.assert_array_equal(got.quantized, want.quantized)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.labels, want.labels)
        assert got.ids == want.ids
    assert len(list((tmp_path / "a").glob("*.npz"))) == 1  # one file: the parent's codes


@pytest.mark.parametrize("pool", ["threads", pytest.param("processes", marks=FORKS)])
def test_grid_cells_fitted_at_once_equal_one_after_another(tmp_path, pool):
    """TaskOptions.workers / pool: the cells of run_grid fit at once, in threads (seeded draws
    hold hdcid.utils.GLOBAL_STATE_LOCK) or in forked worker processes, and give the rows of
    one-after-another fitting, in the order of the cells (the wider encoder's cells start first),
    under both protocols (under the original one from the codes' dropout draws); torch's thread
    count is restored afterwards."""
    from hdcid.downstream.results import grid_workers, run_grid

    encs = {"A": fake.learnable_encoder(seed=0), "B": fake.learnable_encoder(seed=1, levels=2)}  # B fits first
    data = {"ave": _data("ave"), "ave_avvp": _data("ave_avvp")}
    before = torch.get_num_threads()
    for protocol in ("honest", "original"):
        frames = []
        for workers in (1, 3):
            opts = TaskOptions(
                protocol=protocol,
                seeds=(0, 1),
                epochs=4,
                cache_dir=tmp_path / f"{protocol}{workers}",
                fit={"batch_size": 16},
                workers=workers,
                pool=pool,
            )
            grid = run_grid(encs, ("ave", "ave_avvp"), toc_settings=TOCS[1:], data=data, options=opts, progress=False)
            cells = list(dict.fromkeys(zip(grid["task"], grid["direction"], grid["encoder"])))
            assert cells == [(t, d, n) for t in ("ave", "ave_avvp") for d in ("v2a", "a2v") for n in encs]
            frames.append(grid.drop(columns=list(METRIC_COLUMNS)))
            frames.append(grid[list(METRIC_COLUMNS)].to_numpy(float))
        pd.testing.assert_frame_equal(frames[0], frames[2])
        np.testing.assert_allclose(frames[1], frames[3], rtol=0, atol=1e-6, equal_nan=True)
    assert torch.get_num_threads() == before
    assert grid_workers(TaskOptions(workers=4), 3) == 3 and grid_workers(TaskOptions(workers=1), 8) == 1
    assert grid_workers(TaskOptions(device="cpu"), 100) >= 1
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        TaskOptions(workers=0)
    with pytest.raises(ValueError, match="pool must be one of"):
        TaskOptions(pool="fibers")


class _DrawWatch:
    """Stands in for GLOBAL_STATE_LOCK: an RLock that records the global generators' states when
    its outermost hold ends and, on the next outermost acquire, records whether they moved since
    (a draw made outside the lock, which concurrent grid cells would interleave with seeded ones)."""

    def __init__(self):
        import threading

        self.lock, self.depth, self.left, self.moved = threading.RLock(), 0, None, 0

    @staticmethod
    def _states():
        import random

        return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()

    def __enter__(self):
        self.lock.acquire()
        if self.depth == 0 and self.left is not None:
            now = self._states()
            same = torch.equal(now[0], self.left[0]) and np.array_equal(now[1], self.left[1])
            self.moved += not (same and now[2] == self.left[2])
        self.depth += 1
        return self

    def __exit__(self, *exc):
        self.depth -= 1
        if self.depth == 0:
            self.left = self._states()
        self.lock.release()


def test_grid_draws_from_the_global_generators_only_under_the_lock(tmp_path, monkeypatch):
    """Cells fitted in threads give the one-after-another rows only if nothing draws from torch's,
    NumPy's or Python's global generator outside GLOBAL_STATE_LOCK (a draw in one cell between
    another's seeding and its head initialisation changes that head). Watched on a one-worker grid
    of both protocols and both head kinds: the generators never move between two holds of the lock
    (a head module built with a default initialisation to receive the fitted weights once did)."""
    import hdcid.downstream.batched as batched
    import hdcid.downstream.cache as cache
    import hdcid.downstream.protocol as protocol
    from hdcid.downstream.results import run_grid

    watch = _DrawWatch()
    for mod in (batched, cache, protocol):
        monkeypatch.setattr(mod, "GLOBAL_STATE_LOCK", watch)
    encs = {"A": fake.learnable_encoder(seed=0)}
    data = {"ave": _data("ave"), "ave_avvp": _data("ave_avvp")}
    for proto in ("honest", "original"):
        opts = TaskOptions(protocol=proto, seeds=(0, 1), epochs=2, cache_dir=tmp_path / proto, workers=1)
        run_grid(encs, ("ave", "ave_avvp"), toc_settings=TOCS[1:], data=data, options=opts, progress=False)
    assert watch.left is not None  # the lock was held
    assert watch.moved == 0, f"a global generator moved outside GLOBAL_STATE_LOCK {watch.moved} times"


def test_grid_workers_keep_their_own_thread_counts():
    """torch's thread count is per thread: every grid worker encodes with the caller's count (as
    one-after-another fitting does) and fits with FitConfig.cpu_threads, whatever the other workers
    are doing at that moment (an earlier version set the count once for all and only the first
    worker to enter got it); the caller's count is unchanged afterwards."""
    import threading

    from hdcid.downstream.protocol import _threads
    from hdcid.workers import map_jobs

    inside_both = threading.Barrier(2, timeout=30)
    cpu = torch.device("cpu")

    def job(_):
        outside = torch.get_num_threads()
        with _threads(1, cpu):
            inside_both.wait()  # both workers are fitting now
            inside = torch.get_num_threads()
            inside_both.wait()
        return outside, inside, torch.get_num_threads()

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        got = map_jobs(job, [0, 1], 2, "threads")
        assert got == [(3, 1, 3), (3, 1, 3)]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("fused", [True, False])
def test_stacked_adam_equals_torch_adam_with_multistep_lr(fused, monkeypatch):
    """batched._StackedAdam calls torch's fused Adam kernel directly (and keeps MultiStepLR's lr):
    the parameters after 7 epochs x 3 steps (milestones 2, 4, 4 and 6) equal those of
    torch.optim.Adam(fused=True) with MultiStepLR bit for bit; without a fused kernel it is that
    optimizer itself."""
    import hdcid.downstream.batched as batched

    monkeypatch.setattr(batched, "_fused", lambda device: fused)
    gen = torch.Generator().manual_seed(0)
    init = [torch.randn(4, 5, 3, generator=gen), torch.randn(4, 7, generator=gen)]
    grads = [[torch.randn(q.shape, generator=gen) for q in init] for _ in range(21)]
    ours = [q.clone().requires_grad_(True) for q in init]
    ref = [q.clone().requires_grad_(True) for q in init]
    opt = batched._StackedAdam(ours, 4e-4, (2, 4, 4, 6), 0.3)
    ref_opt = torch.optim.Adam(ref, lr=4e-4, fused=True)
    sched = torch.optim.lr_scheduler.MultiStepLR(ref_opt, [2, 4, 4, 6], 0.3)
    for epoch in range(7):
        for step in range(3):
            for q, r, g in zip(ours, ref, grads[3 * epoch + step]):
                q.grad, r.grad = g.clone(), g.clone()
            opt.step()
            ref_opt.step()
        opt.end_epoch()
        sched.step()
    for q, r in zip(ours, ref):
        assert torch.equal(q, r) if fused else torch.allclose(q, r, rtol=0, atol=1e-6)
    assert not torch.equal(ours[0], init[0])


def test_a_grid_fingerprints_each_model_and_clipset_once(tmp_path, monkeypatch):
    """run_grid's plans share one memo: each model is hashed once and each ClipSet's features once
    per modality (not once per cell), and the rows equal those of cells planned apart."""
    import hdcid.downstream.fitting as fitting
    from hdcid.downstream.results import run_grid

    calls = {"model": 0, "dataset": 0}
    real_model, real_data = fitting.model_fingerprint, fitting.dataset_fingerprint

    def count(kind, real):
        def wrapped(*a):
            calls[kind] += 1
            return real(*a)

        return wrapped

    monkeypatch.setattr(fitting, "model_fingerprint", count("model", real_model))
    monkeypatch.setattr(fitting, "dataset_fingerprint", count("dataset", real_data))
    encs = {"A": fake.learnable_encoder(seed=0), "B": fake.learnable_encoder(seed=1, levels=2)}
    data = {"ave_avvp": _data("ave_avvp")}
    opts = TaskOptions(seeds=(0,), epochs=2, cache_dir=tmp_path, workers=1)
    grid = run_grid(encs, ("ave_avvp",), data=data, options=opts, progress=False)
    n_sets = {(id(cs), m) for cs in data["ave_avvp"].values() for m in ("video", "audio")}
    assert calls["model"] == len(encs) and 0 < calls["dataset"] <= len(n_sets)
    cells = [(d, n) for d in ("v2a", "a2v") for n in encs]
    alone = pd.concat(
        [run_task("ave_avvp", d, encs[n], data["ave_avvp"], options=opts, name=n) for d, n in cells], ignore_index=True
    )
    pd.testing.assert_frame_equal(grid, alone)


@FORKS
def test_a_cell_trained_in_the_background_equals_one_trained_here(tmp_path):
    """The notebooks train the protocol switch's cell in a forked worker (hdcid.workers.background)
    while the grid trains: the same rows as run_task here, codes encoded in the worker included
    (an empty cache each), under both protocols (the original one from dropout draws)."""
    from hdcid.workers import background

    enc, data = fake.learnable_encoder(seed=0), _data("ave_avvp")
    for proto in ("honest", "original"):
        opts = TaskOptions(protocol=proto, seeds=(0, 1), epochs=3, fit={"batch_size": 16})
        here = run_task("ave_avvp", "v2a", enc, data, options=replace(opts, cache_dir=tmp_path / f"{proto}-here"))
        pending = background(
            run_task,
            "ave_avvp",
            "v2a",
            enc,
            data,
            options=replace(opts, cache_dir=tmp_path / f"{proto}-bg"),
            pool="processes",
        )
        pd.testing.assert_frame_equal(here, pending.result(timeout=120))
