"""Downstream metrics, losses and heads against hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdcid.downstream.heads import SegmentHead, VideoLevelHead
from hdcid.downstream.losses import ExpLogLoss, SegmentLoss, segment_loss
from hdcid.downstream.metrics import (
    contiguous_events,
    llp_event_f1,
    llp_segment_f1,
    micro_prf,
    reference_avvp_prf,
    reference_batch_pr,
    segment_metrics,
    video_targets,
    video_top1,
)


def _logits(pred):
    return np.where(np.asarray(pred, bool), 2.0, -2.0)


def test_video_top1_and_targets():
    logits = np.array([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.3, 0.2, 0.1]])
    assert video_top1(logits, np.array([1, 0, 2, 2])) == pytest.approx(75.0)
    assert video_top1(torch.tensor(logits), torch.tensor([0, 0, 0, 0])) == pytest.approx(50.0)
    # labels (N=2, T=3, K+1=3): background rows argmax to 0, max over t recovers the class
    lab = np.zeros((2, 3, 3), np.float32)
    lab[0, 0, 2] = lab[0, 1, 1] = lab[0, 2, 1] = 1  # bg, c1, c1
    lab[1, 0, 0] = lab[1, 1, 0] = lab[1, 2, 2] = 1  # c0, c0, bg
    assert video_targets(lab).tolist() == [1, 0]
    with pytest.raises(ValueError, match="3 logits rows for 4 targets"):
        video_top1(logits[:3], np.zeros(4))


# Three videos, T = 2, K+1 = 3 (last = background); evaluation batches of 2 videos.
PRED = np.array([[[1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 0, 0]], [[0, 0, 0], [0, 0, 0]]])
TRUE = np.array([[[1, 0, 0], [0, 0, 1]], [[0, 0, 1], [0, 1, 0]], [[1, 0, 0], [0, 0, 1]]])


def test_reference_avvp_batch_weighting_and_no_prediction_rule():
    # batch 1 (videos 0, 1; weight 10*... = T*bs = 4): TP 2 of 4 predicted, 4 true -> P = R = 1/2
    assert reference_batch_pr(PRED[:2], TRUE[:2]) == (0.5, 0.5)
    # batch 2 (video 2; weight 2): no positive prediction -> P = R = 0 (not undefined / skipped)
    assert reference_batch_pr(PRED[2:], TRUE[2:]) == (0.0, 0.0)
    m = reference_avvp_prf(_logits(PRED), TRUE, batch_size=2)
    assert m["ref_precision"] == pytest.approx(100 * (4 * 0.5 + 2 * 0) / 6)
    assert m["ref_recall"] == pytest.approx(100 / 3)
    assert m["ref_f1"] == pytest.approx(100 / 3)
    # one batch of all three: P = 2/4, R = 2/6 (global incl. background)
    m1 = reference_avvp_prf(_logits(PRED), TRUE, batch_size=80)
    assert m1["ref_precision"] == pytest.approx(50.0)
    assert m1["ref_recall"] == pytest.approx(100 * 2 / 6)


def test_reference_f1_from_averaged_p_and_r():
    # batch 1 (2 videos): 2 preds, 1 TP, ... build P=1, R=1/2 ; batch 2 (1 video): P=1/2, R=1
    pred = np.zeros((3, 2, 3), int)
    true = np.zeros((3, 2, 3), int)
    pred[0, 0, 0] = true[0, 0, 0] = 1
    true[1, 1, 1] = 1  # missed -> batch 1: P = 1/1, R = 1/2
    pred[2, 0, 2] = true[2, 0, 2] = 1
    pred[2, 1, 0] = 1  # batch 2: P = 1/2, R = 1/1
    m = reference_avvp_prf(_logits(pred), true, batch_size=2)
    P, R = (4 * 1 + 2 * 0.5) / 6, (4 * 0.5 + 2 * 1) / 6
    assert m["ref_precision"] == pytest.approx(100 * P)
    assert m["ref_recall"] == pytest.approx(100 * R)
    assert m["ref_f1"] == pytest.approx(100 * 2 * P * R / (P + R))  # 74.07, not the mean of batch F1s
    assert m["ref_f1"] == pytest.approx(100 * 20 / 27)


def test_micro_prf_without_background():
    m = micro_prf(PRED, TRUE)
    # foreground preds: v0t0c0, v0t1c1, v1t1c0; targets: v0t0c0, v1t1c1, v2t0c0 -> TP 1
    assert m["micro_precision"] == pytest.approx(100 / 3)
    assert m["micro_recall"] == pytest.approx(100 / 3)
    assert m["micro_f1"] == pytest.approx(100 / 3)
    mb = micro_prf(PRED, TRUE, exclude_background=False)
    assert mb["micro_precision"] == pytest.approx(50.0) and mb["micro_recall"] == pytest.approx(100 * 2 / 6)


def _llp_case():
    pred = np.zeros((3, 4, 2), int)  # (N, T, K) foreground only
    true = np.zeros((3, 4, 2), int)
    pred[0, :2, 0] = 1
    true[0, :3, 0] = 1  # v0 c0: TP 2, FN 1 -> F = 4/5 ; event tIoU 2/3 -> F = 1
    pred[1, 2:, 0] = 1  # v1 c0: FP 2 -> F = 0 (both)
    pred[1, 0, 1] = true[1, 0, 1] = 1  # v1 c1: F = 1 (both)
    return pred, true  # v2: nothing at all -> 1.0 (both)


def test_top1_and_micro_prf_equal_scikit_learn():
    """The NumPy counts equal scikit-learn's accuracy_score and precision_recall_fscore_support
    (micro, zero_division=0), including batches with no prediction, no target, or neither."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    for _ in range(20):
        logits, y = rng.normal(size=(37, 6)), rng.integers(0, 6, 37)
        assert video_top1(logits, y) == pytest.approx(100 * accuracy_score(y, logits.argmax(-1)), abs=1e-12)
    shape = (9, 4, 6)
    cases = [(rng.random(shape) < q, rng.random(shape) < t) for q, t in ((0.3, 0.3), (0.05, 0.5), (0.6, 0.02))]
    cases += [(np.zeros(shape, bool), rng.random(shape) < 0.3), (rng.random(shape) < 0.3, np.zeros(shape, bool))]
    cases += [(np.zeros(shape, bool), np.zeros(shape, bool))]
    for pred, Y in cases:
        got = micro_prf(pred, Y)
        P, R, F, _ = precision_recall_fscore_support(
            Y[..., :-1].reshape(-1, 5), pred[..., :-1].reshape(-1, 5), average="micro", zero_division=0
        )
        want = [100 * P, 100 * R, 100 * F]
        assert [got["micro_precision"], got["micro_recall"], got["micro_f1"]] == pytest.approx(want, abs=1e-12)


def test_llp_segment_f1_hand_case():
    pred, true = _llp_case()
    assert llp_segment_f1(pred, true) == pytest.approx(100 * (0.8 + 0.5 + 1.0) / 3)


def test_llp_event_f1_hand_case():
    pred, true = _llp_case()
    assert llp_event_f1(pred, true) == pytest.approx(100 * (1.0 + 0.5 + 1.0) / 3)
    # tIoU below 0.5: pred (0,1) vs true (0,3) -> FP 1, FN 1 -> F = 0
    p, t = np.zeros((1, 4, 1), int), np.zeros((1, 4, 1), int)
    p[0, 0, 0], t[0, :3, 0] = 1, 1
    assert llp_event_f1(p, t) == 0.0
    assert llp_segment_f1(p, t) == pytest.approx(100 * 2 / 4)
    # two predicted runs, one true run of 4: (2,4) matches at tIoU 0.5 exactly -> TP 1, FP 1 -> F = 2/3
    p, t = np.array([1, 0, 1, 1])[None, :, None], np.ones((1, 4, 1), int)
    assert llp_event_f1(p, t) == pytest.approx(100 * 2 / 3)


def _event_f1_loop(pred, true, tiou=0.5):
    """The per-(video, class) loop over contiguous_events that llp_event_f1 vectorises."""
    N, T, K = true.shape
    tp, fp, fn = (np.zeros((N, K)) for _ in range(3))
    for n in range(N):
        for k in range(K):
            pe, ge = contiguous_events(pred[n, :, k]), contiguous_events(true[n, :, k])

            def iou(a, b):
                return max(0, min(a[1], b[1]) - max(a[0], b[0])) / (max(a[1], b[1]) - min(a[0], b[0]))

            tp[n, k] = sum(any(iou(p, g) >= tiou for g in ge) for p in pe)
            fp[n, k] = len(pe) - tp[n, k]
            fn[n, k] = sum(not any(iou(g, p) >= tiou for p in pe) for g in ge)
    active = (tp + fp > 0) | (tp + fn > 0)
    f = np.where(active, 2 * tp / np.where(active, 2 * tp + fp + fn, 1), 0.0)
    n_active = active.sum(-1)
    return 100 * np.where(n_active > 0, f.sum(-1) / np.maximum(n_active, 1), 1.0).mean()


def test_llp_event_f1_equals_the_event_loop_on_random_cases():
    rng = np.random.default_rng(0)
    for _ in range(60):
        N, T, K = rng.integers(1, 9), rng.integers(1, 11), rng.integers(1, 5)
        pred, true = rng.random((N, T, K)) < rng.random(), rng.random((N, T, K)) < rng.random()
        for tiou in (0.5, 0.3, 1.0):
            assert llp_event_f1(pred, true, tiou) == _event_f1_loop(pred, true, tiou)


def test_contiguous_events():
    assert contiguous_events([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert contiguous_events([1, 1, 1]) == [(0, 3)]
    assert contiguous_events([0, 0]) == []


def test_segment_metrics_bundle():
    m = segment_metrics(_logits(PRED), TRUE, batch_size=2)
    assert m["ref_precision"] == pytest.approx(100 / 3) and m["micro_f1"] == pytest.approx(100 / 3)
    assert set(m) == {
        "ref_precision",
        "ref_recall",
        "ref_f1",
        "micro_precision",
        "micro_recall",
        "micro_f1",
        "seg_f1",
        "event_f1",
    }


def test_exp_log_loss_formula():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 3, 4, generator=g)
    y = (torch.rand(2, 3, 4, generator=g) > 0.5).float()
    loss = ExpLogLoss(4)
    assert torch.allclose(loss.alpha.detach(), torch.full((4,), 0.1))
    with torch.no_grad():
        loss.alpha.copy_(torch.tensor([0.1, 0.5, -0.2, 1.0]))
    zn, yn, a = z.numpy().reshape(6, 4), y.numpy().reshape(6, 4), loss.alpha.detach().numpy()
    logp = zn - np.log(np.exp(zn).sum(1, keepdims=True))
    want = -(yn * logp * np.exp(-a)).sum(1).mean()
    assert loss(z, y).item() == pytest.approx(float(want), rel=1e-5)
    bce = F.binary_cross_entropy_with_logits(z, y)
    assert segment_loss(z, y, loss).item() == pytest.approx(float(bce) + float(want), rel=1e-5)
    sl = SegmentLoss(4)
    assert sl(z, y).item() == pytest.approx(float(bce) + ExpLogLoss(4)(z, y).item(), rel=1e-6)
    # the loss can only be lowered by raising alpha (every term is non-negative)
    l2 = ExpLogLoss(4)
    l2(z, y).backward()
    assert torch.all(l2.alpha.grad <= 0)


def test_heads_shapes_and_max_pool():
    h = VideoLevelHead(3, 2)
    with torch.no_grad():
        h.proj.weight.copy_(torch.eye(3))
        h.proj.bias.zero_()
        h.out.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 1]]))
        h.out.bias.zero_()
    x = torch.tensor([[[1.0, 0, 0], [0, 2, 0], [0, 0, -1]]])  # (B=1, T=3, d=3); max over T = (1, 2, 0)
    assert torch.allclose(h(x), torch.tensor([[1.0, 2.0]]))
    s = SegmentHead(3, 5)
    assert s(torch.zeros(2, 10, 3)).shape == (2, 10, 5)
