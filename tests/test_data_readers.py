"""Round trips: every writer's files read back with the right values, shapes, labels, splits, ids."""

from __future__ import annotations

import numpy as np
import pytest

from hdcid.data import (
    ClipSet,
    read_ave,
    read_ave_avvp_test,
    read_ave_avvp_train,
    read_avvp,
    read_h5,
    read_pretrain,
    read_ucf,
    read_vggsound_ucf,
    write_ave,
    write_ave_avvp,
    write_avvp,
    write_pretrain,
    write_ucf_vgg,
)
from hdcid.data.ave import AVE_CLASSES, AVE_DIR
from hdcid.demo.synthetic import gaussian_clipset


def _ave_arrays(n=12, C=4, K=3, seed=0):
    g = np.random.default_rng(seed)
    video = g.uniform(size=(n, 10, 7, 7, C))
    audio = g.normal(size=(n, 10, 6))
    cls = np.arange(n) % K
    labels = np.zeros((n, 10, K + 1))
    labels[:, :, K] = 1
    labels[np.arange(n), 2:6, :] = 0
    labels[np.arange(n)[:, None], np.arange(2, 6)[None], cls[:, None]] = 1
    return video, audio, labels, cls


def test_ave_round_trip_float64_on_disk(tmp_path):
    video, audio, labels, cls = _ave_arrays()
    orders = {"train": np.array([0, 3, 5, 6, 9, 11]), "val": np.array([1, 4, 8]), "test": np.array([10, 2, 7])}
    write_ave(tmp_path, video, audio, labels, orders, classes=["a", "b", "c"])
    assert read_h5(tmp_path / AVE_DIR / "visual_feature.h5", "avadataset").dtype == np.float64
    test = read_ave(tmp_path, "test")
    assert test.name == "ave/test" and test.ids == ["10", "2", "7"] and test.classes == ["a", "b", "c"]
    assert test.video.dtype == np.float32 and test.video.shape == (3, 10, 7, 7, 4)
    np.testing.assert_allclose(test.video, video[[10, 2, 7]].astype(np.float32))
    np.testing.assert_allclose(test.audio, audio[[10, 2, 7]].astype(np.float32))
    assert test.video_labels().tolist() == [1, 2, 1]  # 10 % 3, 2 % 3, 7 % 3
    assert test.segment_labels()[0].tolist() == [3, 3, 1, 1, 1, 1, 3, 3, 3, 3]
    assert len(read_ave(tmp_path, "train")) == 6


def test_ave_accepts_float32_and_standard_classes(tmp_path):
    video, audio, _, _ = _ave_arrays(n=4, K=28)
    labels = np.zeros((4, 10, 29))
    labels[:, :, 5] = 1
    write_ave(tmp_path, video, audio, labels, {"train": np.arange(4)}, dtype=np.float32)
    s = read_ave(tmp_path, "train")
    assert s.classes == AVE_CLASSES and s.classes[5] == "Female speech, woman speaking"
    assert s.video_labels().tolist() == [5, 5, 5, 5]


def test_avvp_round_trip(tmp_path):
    classes = ["Speech", "Dog", "Cat"]
    ids = ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc"]
    g = np.random.default_rng(1)
    video = {i: g.uniform(size=(10, 7, 7, 4)) for i in ids}
    audio = {i: g.normal(size=(t, 5)) for i, t in zip(ids, (8, 10, 12))}
    vrows = [(f"{ids[0]}_30_40", [(0, 5, "Speech"), (3, 10, "Dog")]), (f"{ids[1]}_0_10", [(9, 10, "Cat")])]
    arows = [(f"{ids[2]}_5_15", [(1, 2, "Cat")]), (f"{ids[0]}_30_40", [(0, 10, "Speech")])]
    write_avvp(tmp_path, classes, vrows, arows, video, audio)
    vis = read_avvp(tmp_path, "visual")
    assert vis.ids == ["aaaaaaaaaaa_30_40", "bbbbbbbbbbb_0_10"] and vis.labels.shape == (2, 10, 4)
    assert vis.labels[0, :, 0].tolist() == [1] * 5 + [0] * 5
    assert vis.labels[0, :, 1].tolist() == [0] * 3 + [1] * 7
    assert vis.labels[1, :, 3].tolist() == [1] * 9 + [0]  # background
    np.testing.assert_allclose(vis.video[1], video[ids[1]].astype(np.float32))
    aud = read_avvp(tmp_path, "audio")
    # audio (8, 5) padded by repeating the last row; (12, 5) truncated
    np.testing.assert_allclose(aud.audio[1, 8:], np.repeat(audio[ids[0]][-1:], 2, 0).astype(np.float32))
    np.testing.assert_allclose(aud.audio[0], audio[ids[2]][:10].astype(np.float32))
    assert aud.video.shape == (2, 10, 7, 7, 4)  # other modality loaded where present


def test_ave_avvp_round_trip(tmp_path):
    video, audio, labels, _ = _ave_arrays(n=6, K=3)
    write_ave(tmp_path, video, audio, labels, {"train": np.arange(6)})
    classes = ["Speech", "Dog"]
    sub = np.zeros((6, 10, 3))
    sub[:, :, 2] = 1
    sub[4, :3] = [1, 0, 0]
    ids = ["ddddddddddd"]
    write_avvp(tmp_path, ["Speech", "Dog", "Cat"], [], [], {ids[0]: np.ones((10, 7, 7, 4))}, {ids[0]: np.ones((10, 6))})
    write_ave_avvp(tmp_path, classes, np.array([4, 1]), sub, [], [(f"{ids[0]}_0_10", [(0, 2, "Dog")])])
    tr = read_ave_avvp_train(tmp_path)
    assert tr.ids == ["4", "1"] and tr.labels.shape == (2, 10, 3)
    assert tr.labels[0, :, 0].tolist() == [1, 1, 1] + [0] * 7
    np.testing.assert_allclose(tr.video[1], video[1].astype(np.float32))
    te = read_ave_avvp_test(tmp_path, "audio")
    assert te.classes == classes and te.labels[0, :, 1].tolist() == [1, 1] + [0] * 8


def test_ucf_vgg_round_trip(tmp_path):
    g = np.random.default_rng(2)
    ucf_video = {"v_A_g01_c01": g.uniform(size=(4, 7, 7, 3)), "v_B_g01_c01": g.uniform(size=(13, 7, 7, 3))}
    vgg_audio = {"x0000000001": g.normal(size=(7, 5)), "x0000000002": g.normal(size=(10, 5))}
    write_ucf_vgg(
        tmp_path,
        ["A", "B"],
        ["sound a", "sound b"],
        [("B", "v_B_g01_c01"), ("A", "v_A_g01_c01")],
        ucf_video,
        [("sound b", "x0000000001", "val"), ("sound a", "x0000000002", "train")],
        vgg_audio,
    )
    ucf = read_ucf(tmp_path)
    assert ucf.ids == ["v_B_g01_c01", "v_A_g01_c01"] and ucf.video.shape == (2, 10, 7, 7, 3)
    assert ucf.video_labels().tolist() == [1, 0] and ucf.labels[:, :, 2].sum() == 0  # no background
    np.testing.assert_allclose(ucf.video[1, 4:], np.repeat(ucf_video["v_A_g01_c01"][-1:], 6, 0).astype(np.float32))
    vgg = read_vggsound_ucf(tmp_path)
    assert vgg.classes == ["sound a", "sound b"] and vgg.video is None  # no VGG video zips written
    assert vgg.meta["split"].tolist() == ["val", "train"] and vgg.video_labels().tolist() == [1, 0]


def test_pretrain_round_trip(tmp_path, hash_text):
    classes = ["dog", "cat"]
    ids = ["p1", "p2", "p3"]
    g = np.random.default_rng(3)
    audio = {i: g.normal(size=(9, 6)) for i in ids}
    video = {i: g.uniform(size=(10, 7, 7, 2)) for i in ids}
    rel = {"p2": np.array([1, 1, 0, 1, 1, 1, 1, 1, 1, 1.0]), "p1": np.ones(10), "p3": np.ones(10)}
    write_pretrain(
        tmp_path,
        classes,
        {"dog": "a dog barks", "cat": "a cat meows loudly"},
        [("dog", "p1", "train"), ("cat", "p2", "test"), ("dog", "p3", "val")],
        audio,
        video,
        rel,
    )
    s = read_pretrain(tmp_path, hash_text)
    assert s.text.shape == (3, 10, 384) and s.meta["split"].tolist() == ["train", "test", "val"]
    np.testing.assert_allclose(s.text[0], s.text[2])  # same class -> same prompt -> same words
    assert np.abs(s.text[1, :4]).sum() > 0 and np.abs(s.text[1, 4:]).sum() == 0  # 4 words, zero padded
    assert s.labels[1, :, 1].tolist() == [1, 1, 0, 1, 1, 1, 1, 1, 1, 1]
    assert s.labels[1, 2, 2] == 1.0  # background column where relevance is 0
    np.testing.assert_allclose(s.audio[0, 9], audio["p1"][8].astype(np.float32))  # padded


def test_synthetic_corpus_reads_back_everything(synthetic_root, hash_text):
    tmp_path = synthetic_root
    assert [len(read_ave(tmp_path, s)) for s in ("val", "test")] == [3, 3]
    assert len(read_ave(tmp_path, "train")) == 14
    assert read_pretrain(tmp_path, hash_text).video.shape == (40, 10, 7, 7, 32)
    ucf, vgg = read_ucf(tmp_path), read_vggsound_ucf(tmp_path)
    assert len(ucf) == len(vgg) == 20 and ucf.classes[7] == "WritingSeven" and vgg.classes[7] == "saying seven"


def test_clipset_subset_features_and_errors(synthetic_clipset):
    s = synthetic_clipset
    assert s.video.shape == (60, 10, 7, 7, 32) and s.audio.shape == (60, 10, 128) and s.text.shape == (60, 10, 384)
    assert np.bincount(s.video_labels()).tolist() == [6] * 10
    sub = s.subset(s.video_labels() == 3)
    assert len(sub) == 6 and set(sub.video_labels().tolist()) == {3}
    assert sub.ids == [s.ids[i] for i in np.flatnonzero(s.video_labels() == 3)]
    with pytest.raises(ValueError, match="has no audio features"):
        ClipSet("x", ["a"], ["c"], np.zeros((1, 10, 2), np.float32), None, None).features("audio")
    with pytest.raises(ValueError, match=r"labels expected shape \(2, T, 2\), found \(2, 10, 3\)"):
        ClipSet("x", ["a", "b"], ["c"], np.zeros((2, 10, 3), np.float32), None, None)


def test_gaussian_clipset_is_class_structured():
    s = gaussian_clipset(n=100, n_classes=5, seed=1, noise=0.5)
    a = s.audio.mean(axis=1)  # (N, A)
    cent = np.stack([a[s.video_labels() == c].mean(0) for c in range(5)])
    pred = ((a[:, None] - cent[None]) ** 2).sum(-1).argmin(1)
    assert (pred == s.video_labels()).mean() == 1.0
    assert np.array_equal(gaussian_clipset(n=10, seed=4).video, gaussian_clipset(n=10, seed=4).video)
    assert (gaussian_clipset(n=20, background_rate=0.5, seed=0).labels[:, :, -1].mean()) == pytest.approx(0.5, abs=0.15)


def test_pretrain_default_backend_missing_is_clear(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HDCID_DATA", str(tmp_path))  # no demo_assets/ there
    from hdcid.data import DataFormatError

    with pytest.raises(
        DataFormatError, match=r"no text_backend given and the default .*text_minilm\.npz does not exist"
    ):
        read_pretrain(synthetic_root)


@pytest.mark.parametrize("task", ["avvp", "ave_avvp"])
def test_both_annotation_sets_read_each_zip_once(synthetic_root, monkeypatch, task):
    """load_task_data reads the visual and audio annotation sets of AVVP (and of the AVE->AVVP
    subset) through one memo: each feature zip is read once, and the ClipSets equal separate reads."""
    import hdcid.data.avvp as avvp
    from hdcid.downstream.tasks import load_task_data

    alone = {
        a: (read_avvp(synthetic_root, a) if task == "avvp" else read_ave_avvp_test(synthetic_root, a))
        for a in ("visual", "audio")
    }
    reads = []
    real = avvp.read_zip_pickle
    monkeypatch.setattr(avvp, "read_zip_pickle", lambda p: reads.append(p) or real(p))
    data = load_task_data(task, synthetic_root)
    assert reads and len(reads) == len(set(reads))  # every zip once
    assert len(reads) < 2 * sum(len(c) for c in alone.values())  # the two sets share clips: fewer reads
    for a, ref in alone.items():
        got = data[a]
        assert got.ids == ref.ids and np.array_equal(got.labels, ref.labels)
        assert np.array_equal(got.video, ref.video) and np.array_equal(got.audio, ref.audio)
        assert not np.shares_memory(got.audio, data["audio" if a == "visual" else "visual"].audio)
