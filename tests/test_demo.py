"""AV-Digits builder: determinism, content in the original formats, no duplicate segments."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hdcid.data import (
    read_ave,
    read_ave_avvp_test,
    read_ave_avvp_train,
    read_avvp,
    read_h5,
    read_pretrain,
    read_ucf,
    read_vggsound_ucf,
    read_zip_pickle,
)
from hdcid.demo.build import build_demo, main
from hdcid.demo.sources import AudioDigits, prompt_for
from hdcid.demo.synthetic import stand_in_audio_bank, stand_in_prompts
from hdcid.demo.video import WRITER_BLOCKS, DigitVideo


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    build_demo(a, seed=5, scale=0.01)
    build_demo(b, seed=5, scale=0.01)
    build_demo(c, seed=6, scale=0.01)
    da, db, dc = _digests(a), _digests(b), _digests(c)
    assert len(da) > 150 and da == db
    assert da["AVE-ECCV18-master/data/visual_feature.h5"] != dc["AVE-ECCV18-master/data/visual_feature.h5"]
    np.testing.assert_array_equal(read_ave(a, "test").audio, read_ave(b, "test").audio)


def test_pretrain_scale_sizes_only_the_pretraining_set(tmp_path):
    info = build_demo(tmp_path, seed=5, scale=0.01, pretrain_scale=0.04)
    assert info["pretrain"]["clips"] == 80 and info["pretrain_scale"] == 0.04
    assert info["ave"]["clips"] == 20 and info["avvp"]["clips"] == 20  # MIN_CLIPS at scale 0.01
    assert len(read_pretrain(tmp_path, _hash())) == 80
    with pytest.raises(ValueError, match="pretrain_scale"):
        build_demo(tmp_path / "bad", pretrain_scale=-1)


def test_video_segments_never_identical(small_demo_root):
    tr, te = read_ave(small_demo_root, "train"), read_ave(small_demo_root, "test")
    seg = np.concatenate([tr.video, te.video]).reshape(-1, 7 * 7 * 32)  # (N*T, F)
    assert len(np.unique(seg, axis=0)) == len(seg)
    pt = read_pretrain(small_demo_root, _hash()).video.reshape(-1, 7 * 7 * 32)
    assert len(np.unique(pt, axis=0)) == len(pt)
    flat = tr.video.reshape(-1, tr.video.shape[-1])  # standardised per channel (fixed statistics)
    assert np.all(np.abs(flat.mean(0)) < 1.0) and np.all((flat.std(0) > 0.3) & (flat.std(0) < 3.0))


def _hash():
    from hdcid.demo.synthetic import HashText

    return HashText(384)


def test_ave_like_set(small_demo_root):
    sets = {s: read_ave(small_demo_root, s) for s in ("train", "val", "test")}
    assert {s: len(v) for s, v in sets.items()} == {"train": 35, "val": 8, "test": 7}
    ids = [set(v.ids) for v in sets.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    tr = sets["train"]
    assert tr.classes[7] == "digit seven" and tr.labels.shape == (35, 10, 11)
    fg = tr.labels[:, :, :10].sum(2)  # (N, T) 1 where the event is on
    assert (tr.labels.sum(2) == 1).all()
    for row in fg:  # one contiguous span of >= 3 segments
        on = np.flatnonzero(row)
        assert len(on) >= 3 and on[-1] - on[0] + 1 == len(on)
    assert len(np.unique(tr.video_labels())) == 10  # every digit in train
    assert read_h5(small_demo_root / "AVE-ECCV18-master/data/audio_feature.h5", "avadataset").dtype == np.float64


def test_avvp_like_set(small_demo_root):
    csv = small_demo_root / "AVVP/data/AVVP_eval_visual_checked_combined.csv"
    df = pd.read_csv(csv, sep="\t", dtype=str)
    assert df["onset"].str.contains(",").any()  # at least one multi-event row
    vis, aud = read_avvp(small_demo_root, "visual"), read_avvp(small_demo_root, "audio")
    assert vis.classes[3] == "Three" and vis.labels.shape[1:] == (10, 11)
    assert all(len(i) == 16 and i.endswith("_0_10") for i in vis.ids)
    assert vis.ids != aud.ids  # different (overlapping) clip sets
    shared = sorted(set(vis.ids) & set(aud.ids))
    iv, ia = vis.ids.index(shared[0]), aud.ids.index(shared[0])
    np.testing.assert_array_equal(vis.audio[iv], aud.audio[ia])  # same clip, same zip
    # visual and audio events differ somewhere
    lab_v = np.stack([vis.labels[vis.ids.index(i)] for i in shared])
    lab_a = np.stack([aud.labels[aud.ids.index(i)] for i in shared])
    assert not np.array_equal(lab_v, lab_a)
    # issue 8: one digit per second and modality (a listener's label), events separated by a gap
    for cs in (vis, aud):
        fg = cs.labels[:, :, :10]
        assert fg.sum(2).max() == 1
        np.testing.assert_array_equal(cs.labels[:, :, 10], 1 - fg.sum(2))
    assert (np.diff(vis.labels[:, :, :10].argmax(2), axis=1) != 0).any()


def test_avvp_events_disjoint_unless_overlap_is_asked():
    from hdcid.demo.datasets import T, _events

    rng = np.random.default_rng(0)
    for _ in range(200):
        ev = _events(rng)
        cover = np.zeros(T, int)
        for on, off, _c in ev:
            assert 0 <= on < off <= T
            cover[on:off] += 1
        assert cover.max() == 1 and 1 <= len(ev) <= 3
    assert any(
        np.bincount(np.concatenate([np.arange(a, b) for a, b, _ in _events(rng, overlap=True)]), minlength=T).max() > 1
        for _ in range(200)
    )


def test_ave_avvp_subset(small_demo_root):
    tr = read_ave_avvp_train(small_demo_root)
    ave_train = read_ave(small_demo_root, "train")
    assert len(tr.classes) == 8 and tr.classes == ["Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven"]
    assert set(tr.ids) <= set(ave_train.ids)
    assert set(tr.video_labels().tolist()) <= set(range(8))
    j = ave_train.ids.index(tr.ids[0])
    np.testing.assert_array_equal(tr.video[0], ave_train.video[j])
    np.testing.assert_array_equal(tr.labels[0, :, 8], ave_train.labels[j, :, 10])  # background column
    te = read_ave_avvp_test(small_demo_root, "audio")
    assert te.labels.shape[2] == 9 and len(te) > 0


def test_ucf_vgg_pair(small_demo_root):
    ucf, vgg = read_ucf(small_demo_root), read_vggsound_ucf(small_demo_root)
    assert ucf.classes[2] == "WritingTwo" and vgg.classes[2] == "saying two" and len(ucf.classes) == 10
    assert set(vgg.meta["split"].tolist()) == {"train", "val", "test"}
    assert vgg.video.shape == (len(vgg), 10, 7, 7, 32) and ucf.audio is None
    raw_t = {read_zip_pickle(p).shape[0] for p in (small_demo_root / "UCF101/feature/video/zip").glob("*.zip")}
    raw_a = {read_zip_pickle(p).shape[0] for p in (small_demo_root / "vggsound40k/feature/audio/zip").glob("vgg*.zip")}
    assert len(raw_t) > 3 and len(raw_a) > 3  # varying T, padded/truncated by the readers


def test_pretrain_corpus(small_demo_root):
    s = read_pretrain(small_demo_root, _hash())
    assert len(s) == 100 and s.text.shape == (100, 10, 384)
    assert set(s.meta["split"].tolist()) == {"train", "val", "test"}
    bg = s.labels[:, :, -1]
    assert 0.2 < bg.mean() < 0.5  # issue 8: one event span of 3-10 s per clip, background elsewhere
    assert (s.labels.sum(2) == 1).all()
    for row in bg < 1:  # the foreground is one contiguous span of >= 3 seconds
        on = np.flatnonzero(row)
        assert len(on) >= 3 and on[-1] - on[0] + 1 == len(on)


def test_writer_groups_are_disjoint():
    blocks = sorted(WRITER_BLOCKS.values())
    assert blocks[0][0] == 0 and blocks[-1][1] == 1797
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    v = DigitVideo()
    for d in range(10):
        used = [set(v.pools[p][d].tolist()) for p in WRITER_BLOCKS]
        assert sum(len(u) for u in used) == len(set().union(*used))
        assert (v.targets[v.pools["ucf"][d]] == d).all()


def test_video_encoder_numbers():
    v = DigitVideo(bank="conv3", shift=1, noise=0.25)  # the bank before issue 8
    zero = v.encode(np.zeros((1, 8, 8), np.float32))
    # a blank image gives ReLU(bias) everywhere, then the per-channel standardisation
    np.testing.assert_allclose(zero[0, 3, 3], (np.maximum(v.bias, 0) - v.mean) / v.std, rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(0)
    x = v.augment(np.ones((4, 8, 8), np.float32), rng)
    assert x.shape == (4, 8, 8) and not np.allclose(x[0], x[1])


def test_global_bank_keeps_digits_apart_after_the_cell_sum():
    """Issue 8: the method's VSE sums the video grid over cells; with the default "global" bank
    that sum still separates held-out writers' digits, with the old "conv3" bank it hardly does."""

    def pooled_accuracy(v):
        rng = np.random.default_rng(0)
        ytr, yte = rng.integers(0, 10, 1500), rng.integers(0, 10, 500)
        xtr, xte = (v.segments(y, p, rng).sum((1, 2)) for y, p in ((ytr, "train"), (yte, "heldout")))
        cent = np.stack([xtr[ytr == c].mean(0) for c in range(10)])
        return (((xte[:, None] - cent[None]) ** 2).sum(-1).argmin(1) == yte).mean()

    new, old = pooled_accuracy(DigitVideo()), pooled_accuracy(DigitVideo(bank="conv3", shift=1, noise=0.25))
    assert new > 0.5 and old < 0.35, (new, old)
    zero = DigitVideo().encode(np.zeros((1, 8, 8), np.float32))  # blank: ReLU(bias) per cell
    v = DigitVideo()
    np.testing.assert_allclose(
        zero[0].reshape(-1),
        ((np.maximum(v.cell_bias, 0).reshape(7, 7, -1) - v.mean) / v.std).reshape(-1),
        rtol=1e-5,
        atol=1e-5,
    )
    with pytest.raises(ValueError, match="bank"):
        DigitVideo(bank="vgg")


def test_audio_digits_draws_from_the_right_pool():
    bank = stand_in_audio_bank(seed=0)
    a = AudioDigits(bank, jitter=0.0)
    rng = np.random.default_rng(0)
    x = a.segments(np.array([3, 3, -1, 9]), "heldout", rng)
    feats = a.features  # the bank standardised per dimension
    raw = bank["features"].astype(np.float32)
    np.testing.assert_allclose(feats, (raw - raw.mean(0)) / (raw.std(0) + 1e-6), rtol=1e-5, atol=1e-5)
    for row, d in zip(x, [3, 3, -1, 9]):
        hit = np.flatnonzero((feats == row).all(1))
        assert hit.size == 1 and bank["digit"][hit[0]] == d and bank["voice_split"][hit[0]] == "heldout"
    bad = dict(bank, voice_split=np.full(len(bank["digit"]), "train"))
    with pytest.raises(ValueError, match="voice split 'heldout' has no rows"):
        AudioDigits(bad)


def test_prompt_lookup():
    assert prompt_for(stand_in_prompts(), 7) == "a person writes and says the digit seven clearly"
    assert prompt_for({"digit seven": ["x"], "digit one": ["y"]}, 1) == "y"
    with pytest.raises(KeyError, match="no class name containing 'two'"):
        prompt_for({"digit one": ["y"]}, 2)


def test_cli_prints_report(tmp_path, capsys):
    info = main(["--root", str(tmp_path), "--scale", "0.01", "--seed", "1"])
    out = capsys.readouterr().out
    assert f"written to {tmp_path}" in out and "ave " in out
    assert info["ave"]["clips"] == 20 and info["pretrain"]["files"] == 3 + 3 * 20
    assert zipfile.is_zipfile(next((tmp_path / "vggsound40k/feature/video/zip").glob("*.zip")))


def test_pretrain_reads_with_default_precomputed_text(small_demo_root):
    from hdcid.utils import data_dir

    if not (data_dir() / "demo_assets" / "text_minilm.npz").exists():
        pytest.skip("data/demo_assets/text_minilm.npz not present")
    s = read_pretrain(small_demo_root)  # default backend: PrecomputedText of the committed MiniLM features
    assert s.text.shape == (100, 10, 384)
    y = s.video_labels()
    same = s.text[y == 3]
    assert np.array_equal(same[0], same[-1])  # one prompt per class, as in the original
    assert not np.array_equal(s.text[y == 3][0], s.text[y == 4][0])
    assert "three" in s.meta["prompt"][np.flatnonzero(y == 3)[0]]


def test_prompt_variety_extension(tmp_path, hash_text):
    build_demo(tmp_path, seed=0, scale=0.01, prompt_variety=True)
    s = read_pretrain(tmp_path, hash_text)
    y = s.video_labels()
    per_class = {c: set(s.meta["prompt"][y == c].tolist()) for c in range(10)}
    assert max(len(v) for v in per_class.values()) >= 2  # several prompts for some class
    for c, ps in per_class.items():  # every prompt names its own digit
        word = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][c]
        assert all(word in p.split() for p in ps)
