"""Protocols (epoch selection), splits, run_task end to end, and the results table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hdcid.downstream.fitting import METRIC_COLUMNS, TaskOptions, run_task
from hdcid.downstream.protocol import EvalSet, FitConfig, choose_epoch, evaluate_all, fit_head
from hdcid.downstream.results import markdown_table, run_grid, write_results
from hdcid.downstream.tasks import DIRECTIONS, TASKS, build_splits, default_toc_grid, load_task_data, paper_toc
from hdcid.published import CHANCE, PUBLISHED, published_table
from hdcid.toc import TOCSettings

_spec = importlib.util.spec_from_file_location("_fake_enc", Path(__file__).with_name("test_downstream_cache.py"))
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)

COLUMNS = {
    "task",
    "direction",
    "train_modality",
    "test_modality",
    "encoder",
    "toc",
    "protocol",
    "mode",
    "seed",
    "eval",
    "eval_set",
    "metric",
    "value",
    "epoch",
    "epochs",
    "select_split",
    "select_metric",
    "select_value",
    "n_train",
    "n_test",
    *METRIC_COLUMNS,
}


def test_choose_epoch_follows_the_protocol():
    hist = pd.DataFrame(
        {"val/top1": [10, 50, 40, 30], "test_cross/top1": [5, 20, 25, 60]}, index=pd.Index([1, 2, 3, 4], name="epoch")
    )
    assert choose_epoch(hist, "honest", "top1") == 2
    assert choose_epoch(hist, "original", "top1") == 4
    with pytest.raises(ValueError, match="protocol must be one of"):
        choose_epoch(hist, "cheating", "top1")
    with pytest.raises(KeyError, match="no column 'val/ref_f1'"):
        choose_epoch(hist, "honest", "ref_f1")


def test_fit_head_selects_on_the_protocol_split():
    """val = held-out clips of the training task; test_cross = the same clips with labels that swap
    two classes, so its curve peaks elsewhere. Each protocol must pick its own curve's argmax."""
    tr = fake.learnable_clipset(40, seed=0)
    va = fake.learnable_clipset(20, seed=1)
    enc = fake.learnable_encoder()
    q = lambda cs: torch.from_numpy(enc.encode(cs.audio, "audio").quantized[0].numpy())  # noqa: E731
    swapped = va.labels[..., [1, 0, 2, 3, 4]]  # classes 0 and 1 exchanged
    evals = {
        "val": EvalSet(q(va), torch.from_numpy(va.labels)),
        "test_cross": EvalSet(q(va), torch.from_numpy(swapped)),
    }
    cfg = FitConfig(epochs=6, lr=3e-2)
    enc.eval()
    res = {
        p: fit_head(
            "video",
            [q(tr)],
            torch.from_numpy(tr.labels),
            evals,
            cfg=cfg,
            protocol=p,
            select_metric="top1",
            seed=0,
            device="cpu",
        )
        for p in ("honest", "original")
    }
    h = res["honest"].history
    pd.testing.assert_frame_equal(h, res["original"].history)  # same training run, same curves
    assert res["honest"].epoch == int(h["val/top1"].idxmax())
    assert res["original"].epoch == int(h["test_cross/top1"].idxmax())
    assert res["honest"].epoch != res["original"].epoch
    # the returned head is the chosen epoch's head: it reproduces that epoch's numbers
    for p, split in (("honest", "val"), ("original", "test_cross")):
        m = evaluate_all("video", res[p].head, evals[split])
        assert m["top1"] == pytest.approx(h.loc[res[p].epoch, f"{split}/top1"])
    with pytest.raises(ValueError, match="selects on 'val', which is not among"):
        fit_head(
            "video",
            [q(tr)],
            torch.from_numpy(tr.labels),
            {"test_cross": evals["test_cross"]},
            cfg=cfg,
            protocol="honest",
            select_metric="top1",
        )


def _learn_data(task):
    L = fake.learnable_clipset
    if task == "ave":
        return {
            "train": L(48, seed=0, name="ave/train"),
            "val": L(16, seed=1, name="ave/val"),
            "test": L(24, seed=2, name="ave/test"),
        }
    if task == "ucf_vgg":
        ucf = L(40, seed=3, name="ucf")
        ucf.audio = None
        return {"ucf": ucf, "vggsound": L(40, seed=4, name="vggsound")}
    if task == "ave_avvp":
        return {
            "train": L(48, seed=5, name="ave_avvp/train", segment=True),
            "visual": L(20, seed=6, name="avvp12/visual", segment=True),
            "audio": L(20, seed=7, name="avvp12/audio", segment=True),
        }
    raise KeyError(task)


@pytest.mark.parametrize("task,direction", [("ave", "v2a"), ("ucf_vgg", "a2v"), ("ave_avvp", "v2a")])
def test_run_task_learns_across_modalities(tmp_path, task, direction):
    enc = fake.learnable_encoder()
    tocs = [None, TOCSettings(6, 1, 0), TOCSettings(4, 1, 1)]
    hist = {}
    opts = TaskOptions(seeds=(0,), epochs=12, cache_dir=tmp_path, quick=False, fit={"lr": 3e-2})
    df = run_task(task, direction, enc, _learn_data(task), toc=tocs, options=opts, histories=hist)
    assert set(df.columns) >= COLUMNS and len(df) == 2
    assert list(df["eval"]) == ["cross", "same"] and set(df["protocol"]) == {"honest"}
    assert set(df["select_split"]) == {"val"} and df["toc"].iloc[0] in {"none", "C6/1:0", "C4/1:1"}
    assert len(hist) == 3 and all(len(h) == 12 for h in hist.values())
    cross = df[df["eval"] == "cross"].iloc[0]
    assert cross["train_modality"] == DIRECTIONS[direction][0]
    assert cross["test_modality"] == DIRECTIONS[direction][1]
    if TASKS[task].kind == "video":
        assert cross["value"] == cross["top1"] and cross["value"] > 80.0  # chance 25 %
        assert np.isnan(cross["seg_f1"])
    else:
        assert cross["metric"] == "ref_f1" and cross["value"] > 60.0
        assert cross["seg_f1"] > 60.0 and not np.isnan(cross["event_f1"])


def test_original_protocol_uses_dropout_draws_and_the_test_split(tmp_path):
    enc = fake.learnable_encoder()
    enc.source_epoch = 46  # released checkpoint of pretraining epoch 46: the loop runs 50 - 46 - 1 epochs
    data = _learn_data("ave")
    df = run_task("ave", "a2v", enc, data, options=TaskOptions(protocol="original", seeds=(0,), cache_dir=tmp_path))
    assert set(df["epochs"]) == {3} and df["epoch"].between(1, 3).all()
    assert set(df["select_split"]) == {"test_cross"} and df["encoder_dropout"].all()
    assert set(df["eval_set"]) == {"ave/train"}  # the original evaluates AVE on its training split
    # train set: 1 eval-mode encode + 5 dropout draws; test_cross (video) 1; test_same hits the cache
    assert enc.calls == 1 + 5 + 1


def test_splits_are_disjoint_and_documented(small_demo_root):
    data = load_task_data("avvp", small_demo_root)
    s = build_splits("avvp", "v2a", data, "honest")
    keys = {k: {i[:11] for i in v.clipset.ids} for k, v in s.items()}
    assert not (keys["train"] & keys["val"]) and not (keys["train"] & keys["test_cross"])
    assert not (keys["val"] & keys["test_cross"]) and keys["test_same"] <= keys["test_cross"] | keys["test_same"]
    assert s["train"].modality == "video" and s["test_cross"].modality == "audio"
    o = build_splits("avvp", "v2a", data, "original")
    assert "val" not in o and len(o["train"].clipset) == len(data["visual"])
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        build_splits("nope", "v2a", data)
    with pytest.raises(ValueError, match="unknown direction 'x2y'"):
        build_splits("avvp", "x2y", data)


@pytest.mark.parametrize("task", list(TASKS))
def test_run_task_on_demo_every_task_and_direction(tmp_path, small_demo_root, task):
    enc = fake.FakeEncoder(levels=2, n_codes=16, dim=8, video_dim=32, audio_dim=128)
    data = load_task_data(task, small_demo_root)
    for direction in DIRECTIONS:
        opts = TaskOptions(seeds=(0, 1, 2), epochs=2, cache_dir=tmp_path, quick=True)
        df = run_task(task, direction, enc, data, toc=TOCSettings(4, 1, 1), options=opts)
        assert set(df.columns) >= COLUMNS
        assert len(df) == 2 * 2  # quick keeps 2 seeds x (cross, same)
        assert set(df["mode"]) == {"quick"} and set(df["toc"]) == {"C4/1:1"}
        assert df["epoch"].between(1, 2).all() and df["value"].between(0, 100).all()
        assert (df["metric"] == TASKS[task].metric).all()
        assert df["encoder"].iloc[0] == "H-DCID"
        assert set(df["select_metric"]) == {"ref_f1" if task == "avvp" else TASKS[task].metric}


def test_paper_and_grid_toc_settings():
    assert paper_toc("avvp", "v2a", "dcid") == TOCSettings(128, 3, 1)
    assert paper_toc("ave_avvp", "a2v", "hdcid") == TOCSettings(224, 3, 1)
    grid = default_toc_grid(64)
    assert {t.choose_channel for t in grid} == {32, 48, 56} and len(grid) == 9


def test_results_tables(tmp_path):
    enc = fake.learnable_encoder()
    df = run_grid(
        {"DCID": enc},
        tasks=("ave",),
        directions=("v2a",),
        toc_settings=[TOCSettings(6, 1, 0)],
        data={"ave": _learn_data("ave")},
        options=TaskOptions(seeds=(0, 1), epochs=3, cache_dir=tmp_path),
        progress=False,
    )
    assert list(df.drop_duplicates(["encoder", "toc"])["toc"]) == ["none", "C6/1:0"]
    paths = write_results(df, tmp_path / "out")
    back = pd.read_csv(paths["csv"])
    assert len(back) == len(df) == 2 * 2 * 2
    md = paths["md"].read_text()
    assert "| DCID (ours) |" in md and "| DCID+TOC (ours) |" in md and "AVE V→A" in md
    assert "published" not in md.split("\n")[3] and "Published numbers are not shown" in md
    cell = df[(df.toc == "none") & (df["eval"] == "cross")]["value"]
    assert f"{cell.mean():.1f} ± {cell.std():.1f}" in md
    md_orig = markdown_table(df, original_data=True)
    assert "| published: DCID | 54.1 |" in md_orig


def test_published_table():
    t = published_table()
    assert t.loc["DCID", ("ucf_vgg", "a2v")] == 60.6
    assert PUBLISHED["same modality (upper bound)"][("avvp", "a2v")] == 72.9
    assert np.isnan(PUBLISHED["same modality (upper bound)"][("ave_avvp", "v2a")])
    assert CHANCE["ave"] == pytest.approx(3.571, abs=1e-3)


def test_results_cli_renders_from_csv(tmp_path, capsys):
    from hdcid.downstream.results import main

    df = pd.DataFrame(
        [
            dict(
                encoder="H-DCID",
                toc=t,
                task="ucf_vgg",
                direction="a2v",
                seed=s,
                eval=e,
                protocol="original",
                mode="full",
                metric="top1",
                value=v,
            )
            for t in ("none", "C48/1:1")
            for s, v0 in ((0, 60.0), (1, 62.0))
            for e, v in (("cross", v0), ("same", v0 + 20))
        ]
    )
    df.to_csv(tmp_path / "in.csv", index=False)
    assert main(["--from-csv", str(tmp_path / "in.csv"), "--out", str(tmp_path / "o"), "--original-data"]) == 0
    md = (tmp_path / "o" / "results.md").read_text()
    assert "| H-DCID+TOC (ours) | 61.0 ± 1.4 [81.0 ± 1.4] |" in md
    assert "| published: DCID | 60.6 |" in md and "| published: same modality (upper bound) | 85.4 |" in md
    assert "wrote" in capsys.readouterr().out
