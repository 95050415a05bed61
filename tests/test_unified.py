"""hdcid.analysis.unified: audio-video agreement, usage per modality, per-digit top codes (issue 8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdcid import analysis

A = np.array([[0, 0, 1, 2], [3, 3, 3, 1]])
V = np.array([[0, 1, 1, 5], [3, 2, 2, 1]])
FG = np.array([[True, True, True, False], [False, True, True, True]])


def test_same_second_agreement_counts_only_masked_seconds():
    assert analysis.same_second_agreement(A, V) == pytest.approx(4 / 8)
    assert analysis.same_second_agreement(A, V, FG) == pytest.approx(3 / 6)  # (0,0),(0,2),(1,3)
    assert analysis.same_second_agreement(torch.tensor(A), torch.tensor(A)) == 1.0
    assert np.isnan(analysis.same_second_agreement(A, V, np.zeros_like(FG)))
    with pytest.raises(ValueError, match="co-located"):
        analysis.same_second_agreement(A, V[:, :3])
    with pytest.raises(ValueError, match="mask"):
        analysis.same_second_agreement(A, V, FG[:, :2])


def test_clip_modes_and_clip_agreement():
    np.testing.assert_array_equal(analysis.clip_modes(A, 6), [0, 3])
    np.testing.assert_array_equal(analysis.clip_modes(V, 6), [1, 2])  # ties -> smallest code
    np.testing.assert_array_equal(analysis.clip_modes(A, 6, FG), [0, 3])
    np.testing.assert_array_equal(analysis.clip_modes(V, 6, FG), [1, 2])
    assert analysis.clip_agreement(A, V, 6) == 0.0
    assert analysis.clip_agreement(A, A, 6, FG) == 1.0
    # a clip without masked seconds is left out
    m = FG.copy()
    m[1] = False
    np.testing.assert_array_equal(analysis.clip_modes(A, 6, m), [0, -1])
    assert analysis.clip_agreement(A, np.array([[0, 0, 2, 2], [1, 1, 1, 1]]), 6, m) == 1.0


def test_code_shares_and_modality_usage():
    s = analysis.code_shares(A, 6)
    np.testing.assert_allclose(s, [2 / 8, 2 / 8, 1 / 8, 3 / 8, 0, 0])
    u = analysis.modality_usage({"audio": A, "video": V}, 6)
    assert u.loc["audio", "codes_used"] == 4 and u.loc["video", "codes_used"] == 5
    assert u.loc["audio", "max_share"] == pytest.approx(3 / 8)
    assert u.loc["audio", "codes_owned"] == 0  # audio's codes 0,1,2,3 are all used by video
    assert u.loc["video", "codes_owned"] == 1  # code 5
    assert u.loc["video", "shared_codes"] == 4
    collapsed = analysis.modality_usage({"audio": np.zeros((2, 4), int), "video": V}, 6)
    assert collapsed.loc["audio", "max_share"] == 1.0 and collapsed.loc["audio", "perplexity"] == pytest.approx(1.0)


def test_digit_top_codes_lists_codes_and_overlap():
    y = np.array([[7, 7, 7, -1], [-1, 4, 4, 4]])
    t = analysis.digit_top_codes(A, V, y, 6, k=2)
    assert list(t.index) == [4, 7]
    assert t.loc[7, "audio top"] == [0, 1] and t.loc[7, "video top"] == [1, 0]
    assert t.loc[7, "overlap"] == [0, 1] and t.loc[7, "n_overlap"] == 2
    assert t.loc[7, "agreement"] == pytest.approx(2 / 3)
    assert t.loc[4, "audio top"] == [3, 1] and t.loc[4, "video top"] == [2, 1]
    assert t.loc[4, "overlap"] == [1] and t.loc[4, "audio top share"] == pytest.approx(2 / 3)


def test_digit_top_codes_background_row():
    """The background row covers exactly the negative-label seconds, after the classes."""
    y = np.array([[7, 7, 7, -1], [-1, 4, 4, 4]])
    t = analysis.digit_top_codes(A, V, y, 6, k=2, background=True)
    assert list(t.index) == [4, 7, "background"]
    bg = y < 0
    assert t.loc["background", "agreement"] == pytest.approx(float((A == V)[bg].mean()))
    assert t.loc["background", "audio top"][0] in set(A[bg].tolist())
    no_bg = analysis.digit_top_codes(A, V, np.where(y < 0, 4, y), 6, k=2, background=True)
    assert "background" not in no_bg.index


def test_unified_summary_keys():
    s = analysis.unified_summary(A, V, 6, FG)
    assert s["agreement"] == pytest.approx(0.5) and s["clip_agreement"] == 0.0
    assert (s["used_a"], s["used_b"]) == (3, 3) and s["max_share_a"] == pytest.approx(2 / 6)


def test_heldout_agreement_and_over_epochs_on_a_tiny_run(tmp_path):
    """Two tiny epochs on a toy clip set; the per-epoch eval reads the checkpoints and never
    changes the live model's buffers."""
    from hdcid.config import ModelConfig, TrainConfig
    from hdcid.data.clipset import ClipSet
    from hdcid.train import Pretrainer

    rng = np.random.default_rng(0)
    mc = ModelConfig.tiny("dcid")
    n, T = 12, mc.n_segments
    lab = np.zeros((n, T, 11), np.float32)
    lab[:, :, 10] = 1
    lab[:, 2:6, 10] = 0
    lab[np.arange(n), 2:6, np.arange(n)[:, None] % 10] = 1
    cs = ClipSet(
        "toy",
        [f"c{i}" for i in range(n)],
        [str(d) for d in range(10)],
        lab,
        rng.normal(size=(n, T, 7, 7, mc.video_dim)).astype(np.float32),
        rng.normal(size=(n, T, mc.audio_dim)).astype(np.float32),
        rng.normal(size=(n, T, mc.word_dim)).astype(np.float32),
    )
    res = Pretrainer(mc, TrainConfig.tiny("dcid", epochs=2, batch_size=6, max_steps_per_epoch=1), cs, tmp_path).fit(
        progress=False
    )
    snap = res.model.buffers_snapshot()
    h = analysis.heldout_agreement(res.model, cs)
    assert list(h.index) == [1] and 0.0 <= h.loc[1, "agreement"] <= 1.0
    assert all(torch.equal(v, res.model.buffers_snapshot()[k]) for k, v in snap.items())
    over = analysis.agreement_over_epochs(res.checkpoints, cs)
    assert list(over["epoch"]) == [0, 1] and list(over["level"]) == [1, 1]
    last = over.iloc[-1]
    assert last["agreement"] == pytest.approx(h.loc[1, "agreement"])
    # by hand from the codes: foreground seconds 2..5
    from hdcid.downstream.cache import encode_clipset

    ia = encode_clipset(res.model, cs.audio, "audio")[1][..., 0]
    iv = encode_clipset(res.model, cs.video, "video")[1][..., 0]
    assert last["agreement"] == pytest.approx((ia == iv)[:, 2:6].mean())


def _per_epoch(values, shares=(0.3, 0.3)):
    import pandas as pd

    return pd.DataFrame(
        [
            dict(epoch=e, level=1, agreement=v, clip_agreement=v, max_share_a=shares[0], max_share_b=shares[1])
            for e, v in enumerate(values)
        ]
    )


def test_agreement_claims_words_follow_the_numbers():
    c = analysis.agreement_claims({"DCID": _per_epoch([0.05, 0.3, 0.62])})[0]
    assert (c["sharing"], c["trend"], c["collapsed"]) == ("share codes", "rises", False)
    assert "0.05" in c["sentence"] and "0.62" in c["sentence"] and "62%" in c["sentence"]
    c = analysis.agreement_claims({"X": _per_epoch([0.04, 0.03], shares=(0.2, 0.9))})[0]
    assert (c["sharing"], c["trend"], c["collapsed"]) == ("do not share codes", "stays flat", True)
    assert analysis.sharing_verdict(0.2) == "share some codes" and analysis.trend_verdict(0.5, 0.3) == "falls"
    assert analysis.check_claims([c]) == []


def test_agreement_claims_name_the_epoch_of_the_largest_share():
    import pandas as pd

    df = pd.DataFrame(
        [
            dict(epoch=e, level=1, agreement=0.7, clip_agreement=0.8, max_share_a=a, max_share_b=b)
            for e, (a, b) in enumerate([(0.61, 0.3), (0.31, 0.2), (0.28, 0.25)])
        ]
    )
    c = analysis.agreement_claims({"DCID": df})[0]
    assert (c["max_share"], c["max_share_epoch"], c["max_share_later"], c["collapsed"]) == (0.61, 0, 0.31, True)
    assert "61% of the held-out seconds on one code after epoch 1 of 3" in c["sentence"]
    assert "at most 0.31 in the epochs after" in c["sentence"] and analysis.check_claims([c]) == []
    assert analysis.check_claims([dict(c, sentence=c["sentence"].replace("0.61", "0.16"))])
    assert "started from the data" in c["sentence"]  # a first-epoch share that later separates: the remedy
    df.loc[2, "max_share_a"] = 0.55  # high again later: not the first-epoch story, no such reason
    c = analysis.agreement_claims({"DCID": df})[0]
    assert c["max_share_later"] == 0.55 and "started from the data" not in c["sentence"]


def test_check_claims_catches_a_contradiction():
    c = analysis.agreement_claims({"DCID": _per_epoch([0.05, 0.04])})[0]
    lie = dict(c, sharing="share codes", sentence=c["sentence"].replace("do not share codes", "share codes"))
    assert analysis.check_claims([lie])
    typed = dict(c, sentence="DCID level 1: audio and video share codes.")
    assert analysis.check_claims([typed])


def test_code_digit_readout_separates_offset_from_hard_seconds():
    y = np.array([[0, 0, 1, 1, -1]])
    a = np.array([[0, 0, 1, 1, 5]])  # audio: code 0 = class 0, code 1 = class 1
    v = np.array([[2, 2, 3, 3, 5]])  # video: its own codes 2 / 3 for the same classes
    r = analysis.code_digit_readout({"audio": a, "video": v}, y, {"audio": a, "video": v}, y, 6)
    assert r["acc_audio"] == 1.0 and r["acc_video"] == 1.0
    assert r["class_agreement"] == 1.0 and r["code_agreement"] == 0.0  # pure modality offset
    v_test = np.array([[2, 3, 3, 2, 5]])
    r = analysis.code_digit_readout({"audio": a, "video": v}, y, {"audio": a, "video": v_test}, y, 6)
    assert r["acc_video"] == 0.5 and r["class_agreement"] == 0.5


def test_background_codes_across_counts_shared_background_codes():
    # source: code 0 carries background (3 of 4 seconds), code 1 digits, code 2 half/half (not bg)
    ks = np.array([[0, 0, 0, 1], [0, 1, 2, 2]])
    ys = np.array([[-1, -1, -1, 3], [3, 3, -1, 4]])
    kt = np.array([[0, 1, 2, 0]])
    yt = np.array([[-1, -1, 5, 5]])
    r = analysis.background_codes_across(ks, ys, kt, yt, 4)
    assert r["bg_codes"] == 1
    assert r["bg_on_bg"] == pytest.approx(0.5)  # target bg seconds on codes 0 and 1
    assert r["event_on_bg"] == pytest.approx(0.5)  # target event seconds on codes 2 and 0
    with pytest.raises(ValueError, match="differ in size"):
        analysis.background_codes_across(ks, ys[:, :3], kt, yt, 4)
