"""hdcid.analysis (hand-computed values) and hdcid.plots (figures drawn from given data)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from hdcid import analysis, plots


# ------------------------------------------------------------------------------------ usage
def test_usage_counts_per_level_and_range_error():
    idx = np.array([[0, 1, 1], [2, 1, 0]])  # (N=2, T=3)
    assert analysis.usage_counts(idx, 4).tolist() == [[2, 3, 1, 0]]
    two = np.stack([idx, np.full_like(idx, 3)], axis=-1)  # (2, 3, L=2)
    assert analysis.usage_counts(two, 4).tolist() == [[2, 3, 1, 0], [0, 0, 0, 6]]
    with pytest.raises(ValueError, match=r"\[0, 4\).*found range \[0, 7\]"):
        analysis.usage_counts(np.array([[0, 7]]), 4)
    with pytest.raises(ValueError, match=r"expected shape \(N, T\) or \(N, T, L\)"):
        analysis.usage_counts(np.zeros(5, int), 4)


def test_perplexity_hand_values():
    assert analysis.perplexity([2, 2, 0, 0]) == pytest.approx(2.0)
    assert analysis.perplexity(np.ones(7)) == pytest.approx(7.0)
    assert analysis.perplexity([0, 0]) == 0.0
    expected = math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))  # 1.7548
    assert analysis.perplexity([3, 1]) == pytest.approx(expected)
    both = analysis.perplexity(np.array([[3, 1], [5, 5]]))
    assert both == pytest.approx([expected, 2.0])


def test_dead_codes_and_ownership():
    counts = np.array([[1, 0, 2, 0], [1, 3, 0, 0], [1, 0, 0, 0]])  # video, audio, text
    assert analysis.dead_codes(counts.sum(0)).tolist() == [False, False, False, True]
    own = analysis.code_ownership(counts, ["video", "audio", "text"])
    assert own["owner"].tolist() == ["shared", "audio", "video", "unused"]
    assert own["audio"].tolist() == [1, 3, 0, 0]
    assert analysis.ownership_summary(own).to_dict() == {"audio": 1, "shared": 1, "unused": 1, "video": 1}
    partial = analysis.code_ownership(np.array([[1], [1], [0]]), ["video", "audio", "text"])
    assert partial["owner"].tolist() == ["partial"]
    with pytest.raises(ValueError, match=r"expected shape \(2, M\)"):
        analysis.code_ownership(counts, ["video", "audio"])


def test_usage_summary_all_row():
    v = np.array([[0, 0, 1, 1]])
    a = np.array([[2, 2, 2, 2]])
    s = analysis.usage_summary({"video": v, "audio": a}, 4).set_index("modality")
    assert s.loc["video", "used"] == 2 and s.loc["video", "perplexity"] == pytest.approx(2.0)
    assert s.loc["audio", "dead"] == 3 and s.loc["audio", "perplexity"] == pytest.approx(1.0)
    assert s.loc["all", "used"] == 3 and s.loc["all", "dead"] == 1
    # all: counts [2, 2, 4, 0] -> p = (.25, .25, .5)
    assert s.loc["all", "perplexity"] == pytest.approx(math.exp(-(0.5 * math.log(0.25) + 0.5 * math.log(0.5))))


# -------------------------------------------------------------------------------- agreement
def test_agreement_matrix_hand_values_and_shape_error():
    idx = {"video": np.array([[0, 1, 2, 3]]), "audio": np.array([[0, 1, 0, 0]]), "text": np.zeros((1, 4), int)}
    a = analysis.agreement_matrix(idx)
    assert a.shape == (3, 3)
    np.testing.assert_allclose(np.diag(a), 1.0)
    assert a[0, 1] == pytest.approx(0.5) and a[1, 0] == pytest.approx(0.5)
    assert a[0, 2] == pytest.approx(0.25) and a[1, 2] == pytest.approx(0.75)
    levels = {"video": np.stack([idx["video"], idx["video"]], -1), "audio": np.stack([idx["audio"], idx["video"]], -1)}
    assert analysis.agreement_matrix(levels, level=1)[0, 1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"indices\['audio'\] has shape \(1, 3, 1\)"):
        analysis.agreement_matrix({"video": np.zeros((1, 4), int), "audio": np.zeros((1, 3), int)})


# ----------------------------------------------------------------------- level information
def test_level_cooccurrence_and_conditional_entropy():
    l1 = np.array([[0, 0, 1, 1]])
    l2 = np.array([[0, 1, 1, 1]])
    joint = analysis.level_cooccurrence(l1, l2, 2)
    assert joint.tolist() == [[1, 1], [0, 2]]
    # H(L2 | L1) = 0.5 * ln 2 (code 0 splits evenly, code 1 is pure)
    assert analysis.conditional_entropy(joint) == pytest.approx(0.5 * math.log(2))
    assert analysis.level_cooccurrence(l1, l2, 2, n_codes2=3).shape == (2, 3)


def test_mutual_information_purity_and_level_information():
    assert analysis.mutual_information([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(math.log(2))
    assert analysis.mutual_information([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert analysis.code_purity([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.75)
    # level 1 codes = class, level 2 codes = random within-class detail
    cls = np.array([0, 0, 1, 1])
    idx = np.stack([np.repeat(cls[:, None], 2, 1), np.array([[0, 1], [2, 3], [0, 1], [2, 3]])], -1)  # (4, 2, 2)
    info = analysis.level_information(idx, {"class": cls}).set_index("level")
    assert info.loc[1, "nmi"] == pytest.approx(1.0) and info.loc[1, "purity"] == pytest.approx(1.0)
    assert info.loc[2, "nmi"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"target 'bad': expected shape \(4,\) or \(4, 2\)"):
        analysis.level_information(idx, {"bad": np.zeros(3)})


# --------------------------------------------------------------------------------- probes
def test_centroid_probe_hand_example():
    acc, pred = analysis.centroid_probe([[0.0], [0.0], [10.0], [10.0]], [0, 0, 1, 1], [[1.0], [9.0], [6.0]], [0, 1, 0])
    assert pred.tolist() == [0, 1, 1]
    assert acc == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="equal F"):
        analysis.centroid_probe(np.zeros((2, 3)), [0, 1], np.zeros((2, 2)), [0, 1])


def _informative_codes(n=40, seed=0):
    """(n, T=4, L=1, D=3) codes: dim 0 = class, dims 1-2 large noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    q = rng.normal(0, 5.0, size=(n, 4, 1, 3))
    q[..., 0] = y[:, None, None] * 1.0
    return q, y


def test_cross_modal_probe_dims_matter():
    qa, y = _informative_codes(seed=0)
    qb, _ = _informative_codes(seed=1)
    assert analysis.cross_modal_probe(qa, y, qb, y, dims=[np.array([0])]) == pytest.approx(100.0)
    assert analysis.cross_modal_probe(qa, y, qb, y, dims=[np.array([1, 2])]) < 80.0
    assert analysis.pool_codes(qa, [np.array([2, 0])]).shape == (40, 2)
    with pytest.raises(ValueError, match="one index array per level"):
        analysis.pool_codes(qa, [np.array([0]), np.array([1])])


def test_toc_terms_closed_form_and_sweep():
    rng = np.random.default_rng(3)
    E = rng.normal(size=(12, 6)) + np.arange(6)
    sim, var, score = analysis.toc_terms(E)
    np.testing.assert_allclose(var, E.var(0, ddof=1))
    np.testing.assert_allclose(sim, E.mean(0) ** 2 - E.var(0, ddof=1) / 12)
    np.testing.assert_allclose(score, -0.7 * sim + 0.3 * var)
    qa, y = _informative_codes()
    q6 = np.concatenate([qa, qa], axis=-1)  # D = 6
    sweep = analysis.toc_sweep(E[None], q6, y, q6, y, [2, 6], n_random=2)
    assert sweep["method"].tolist() == ["toc best", "toc worst", "random"] * 2
    full = sweep[sweep.kept == 6]["accuracy"].to_numpy()
    assert np.all(full == full[0])  # every method keeps all dims at the full budget
    with pytest.raises(ValueError, match="budget 7 outside 1..6"):
        analysis.toc_sweep(E[None], q6, y, q6, y, [7])


# ------------------------------------------------------------------------ points, projection
def test_code_points_maps_segments_to_code_vectors():
    cb = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)  # (L=2, M=3, D=2)
    idx = {"video": np.array([[[0, 2], [1, 2]]]), "audio": np.array([[[0, 0], [0, 0]]])}  # (1, 2, 2)
    vectors, points = analysis.code_points(cb, idx, np.array([4]), class_names=[f"c{i}" for i in range(5)])
    assert len(points) == 2 * 2 * 2  # modalities x levels x segments
    for row in points.itertuples():
        np.testing.assert_array_equal(vectors[row.point], cb[row.level - 1, row.code])
    assert len(vectors) == 4  # (1,0), (1,1), (2,0), (2,2)
    assert set(points["class"]) == {"c4"}


def test_project_codes_pca_and_cache(tmp_path):
    t = np.linspace(-1, 1, 9)
    x = np.stack([t, 2 * t, np.zeros_like(t)], 1) + 5.0  # points on a line
    p = analysis.project_codes(x, "pca", cache_dir=tmp_path, reason="quick mode")
    assert p.method == "pca" and p.note == "PCA (quick mode)" and not p.cached
    np.testing.assert_allclose(np.abs(p.xy[:, 0]), np.abs(t) * math.sqrt(5), atol=1e-12)
    np.testing.assert_allclose(p.xy[:, 1], 0.0, atol=1e-12)
    again = analysis.project_codes(x, "pca", cache_dir=tmp_path)
    assert again.cached and np.array_equal(again.xy, p.xy)
    other = analysis.project_codes(x * 2, "pca", cache_dir=tmp_path)
    assert not other.cached
    assert not analysis.project_codes(x, "pca", cache_dir=tmp_path, seed=1).cached  # every parameter is in the key
    with pytest.raises(ValueError, match="method must be 'umap' or 'pca'"):
        analysis.project_codes(x, "tsne", cache_dir=tmp_path)


@pytest.mark.slow
def test_project_codes_umap_is_cached(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 5))
    p = analysis.project_codes(x, "umap", cache_dir=tmp_path)
    assert p.xy.shape == (40, 2) and np.isfinite(p.xy).all() and not p.cached
    assert analysis.project_codes(x, "umap", cache_dir=tmp_path).cached
    other = analysis.project_codes(x, "umap", cache_dir=tmp_path, n_neighbors=5)  # a changed UMAP parameter
    assert not other.cached and not np.allclose(other.xy, p.xy)


# --------------------------------------------------------------------------- histories
def test_loss_terms_groups_modalities_and_levels():
    h = pd.DataFrame(
        {
            "epoch": [0, 0],
            "step": [1, 2],
            "rec_a": [1.0, 2.0],
            "rec_v": [0.5, 0.5],
            "commit_t": [0.1, 0.2],
            "mi_a": [0.0, 1.0],
            "cpc": [3.0, 2.0],
            "cmcm": [1.0, 1.0],
            "rec2_a": [4.0, 4.0],
            "cpc2": [9.0, 8.0],
            "agreement": [0.1, 0.2],
            "total": [9.0, 9.9],
        }
    )
    t = analysis.loss_terms(h)
    assert t["reconstruction"].tolist() == [1.5, 2.5]
    assert t["commitment"].tolist() == [0.1, 0.2]
    assert t["CLUB (MI)"].tolist() == [0.0, 1.0]
    assert t["reconstruction L2"].tolist() == [4.0, 4.0] and t["CPC L2"].tolist() == [9.0, 8.0]
    assert "agreement" not in t.columns and t["total"].tolist() == [9.0, 9.9]
    with pytest.raises(ValueError, match="no loss columns"):
        analysis.loss_terms(pd.DataFrame({"step": [1], "agreement": [0.2]}))


def test_usage_over_training_counts_and_resets():
    snap = {
        "epoch": 0,
        "counts": [{"video": torch.tensor([3, 0, 0, 1]), "audio": torch.tensor([0, 0, 2, 0])}],
        "resets": [torch.tensor([0, 2, 0, 1])],
    }
    df = analysis.usage_over_training([snap]).set_index("modality")
    assert df.loc["video", "used"] == 2 and df.loc["audio", "dead"] == 3
    assert df.loc["all", "used"] == 3 and df.loc["all", "resets"] == 3
    assert np.isnan(df.loc["video", "resets"])


# --------------------------------------------------------------------------- downstream
def test_confusion_matrix_per_class_and_segment_f1():
    cm = analysis.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    acc = analysis.per_class_accuracy(cm)
    np.testing.assert_allclose(acc[:3], [50.0, 100.0, 200 / 3])
    assert np.isnan(acc[3])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        analysis.confusion_matrix([0, 3], [0, 1], 2)
    pred = np.zeros((1, 4, 2), bool)
    true = np.zeros((1, 4, 2), bool)
    pred[0, :2, 0] = True  # predicts class 0 at t = 0, 1
    true[0, 1:3, 0] = True  # true class 0 at t = 1, 2 -> tp 1, F1 = 2*1/(2+2) = 50 %
    f1 = analysis.per_class_segment_f1(pred, true)
    assert f1[0] == pytest.approx(50.0) and np.isnan(f1[1])


def test_model_sizes_match_the_released_encoders():
    from hdcid.config import ModelConfig

    s = analysis.model_sizes({"DCID": ModelConfig.paper("dcid"), "H-DCID": ModelConfig.paper("hdcid")})
    assert s.loc["DCID", "encoder"] == pytest.approx(80.123649)  # spec pretrain.md 2.11
    assert s.loc["H-DCID", "encoder"] == pytest.approx(87.888641)  # spec 3.8
    assert s.loc["DCID", "encoder_keys"] == 142 and s.loc["H-DCID", "encoder_keys"] == 262
    assert s.loc["H-DCID", "codebook"] == "2 x 400 x 256"


def test_encode_modalities_leaves_the_model_untouched(synthetic_clipset):
    from hdcid.config import ModelConfig
    from hdcid.model import CrossModalModel

    torch.manual_seed(0)
    model = CrossModalModel(ModelConfig.tiny("hdcid")).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = analysis.encode_modalities(model, synthetic_clipset, ("video", "audio"), max_clips=12, seed=1)
    assert model.training  # mode restored
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert out["rows"].shape == (12,) and np.all(np.diff(out["rows"]) > 0)
    q, idx = out["audio"]["quantized"], out["audio"]["indices"]
    assert q.shape == (12, 10, 2, 64) and idx.shape == (12, 10, 2)
    cb = model.codebooks().detach().numpy()
    np.testing.assert_allclose(q[:, :, 1], cb[1][idx[:, :, 1]], rtol=1e-5, atol=1e-6)


def test_task_predictions_agree_with_run_task(small_demo_root, tmp_path):
    from hdcid.config import ModelConfig
    from hdcid.downstream import TaskOptions, load_task_data, run_task
    from hdcid.model import CrossModalModel

    torch.manual_seed(0)
    model = CrossModalModel(ModelConfig.tiny("dcid")).eval()
    data = load_task_data("ave", small_demo_root)
    opts = TaskOptions(seeds=(0,), epochs=3, quick=True, cache_dir=tmp_path)
    pred = analysis.task_predictions("ave", "v2a", model, data, options=opts)
    assert pred.logits.shape == (len(pred.ids), len(pred.class_names))
    df = run_task("ave", "v2a", model, data, options=opts)
    cross = df[df["eval"] == "cross"].iloc[0]
    assert cross["value"] == pytest.approx(100.0 * np.mean(pred.y_pred == pred.y_true))
    assert cross["epoch"] == pred.epoch


# ------------------------------------------------------------------------------------ plots
def test_plots_return_figures_and_save_named_after_the_notebook(tmp_path, monkeypatch):
    monkeypatch.setenv("HDCID_OUTPUT", str(tmp_path))
    from matplotlib.figure import Figure

    counts = np.array([[[3, 0, 1]], [[1, 1, 1]]])  # (Mo=2, L=1, M=3)
    fig = plots.usage_histograms(counts, ["video", "audio"], analysis.perplexity(counts))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert "perplexity 3.0" in fig.axes[1].get_title()
    path = plots.save_figure(fig, "02_codebook_usage.ipynb", "usage DCID")
    assert path == tmp_path / "figures" / "02-usage-DCID.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="must start with its number"):
        plots.save_figure(fig, "tour", "x")
    with pytest.raises(ValueError, match=r"counts: expected \(3, L, M\)"):
        plots.usage_histograms(counts, ["video", "audio", "text"])
    with pytest.raises(ValueError, match="no column 'agreement'"):
        plots.agreement_curve(pd.DataFrame({"step": [1], "total": [1.0]}))


def test_toc_criterion_marks_the_kept_dims():
    fig = plots.toc_criterion(np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0]), [2, 0])
    left, right = fig.axes[:2]
    kept = left.collections[1].get_offsets()
    assert sorted(kept[:, 0].round(3).tolist()) == [0.1, 0.3]
    assert right.get_title() == "2 of 3 dims kept"
    heights = [p.get_height() for p in right.patches]
    assert heights == [2.0, 0.5, -1.0]  # sorted by score, descending
