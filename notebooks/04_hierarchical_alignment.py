# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Hierarchical alignment: level 1 vs level 2 of H-DCID
#
# H-DCID quantizes twice: level 1 on the semantic features (what the modalities share) and level 2 on
# what is left in the modality-specific features. You will see what each level's codes capture (class
# vs within-class detail, measured as mutual information), the cross-modal agreement per level, how
# level-1 and level-2 codes co-occur, level 2 written out by hand (its input, its reconstruction target and
# its 0.3 loss weight, each checked against the package), and 2-D maps (UMAP; PCA in quick mode) of the code vectors every
# segment maps to, coloured by class, modality and level, with a widget to pick the view.
#
# **Runtime** — quick (`HDCID_QUICK=1`): ~8 s; full: ~36 s; measured on a 2-core CPU, no GPU, with the checkpoints cached by 01 (see `docs/runtimes.json`).

# %% tags=["parameters"]
# Parameters (papermill injects overrides after this cell). Literals only.
QUICK = None  # None: read HDCID_QUICK from the environment (1 = quick mode)
SEED = 0
DATA_ROOT = None  # None: hdcid.utils.demo_root(); the AV-Digits corpus is built there if missing
DEMO_SCALE = None  # None: 0.25 in quick mode, 1.0 otherwise (used only when building the corpus)
FSDD = None  # a folder of FSDD recordings: human speech mixed into the corpus audio (build --fsdd)
MAX_CLIPS = 300  # AVE test clips to analyse (quick mode: 100)
PROJECTION = "umap"  # "umap" or "pca"; quick mode uses PCA (UMAP first compiles numba code)

# %%
# %matplotlib inline

import numpy as np
import pandas as pd
from IPython.display import display

from hdcid import analysis, plots
from hdcid.config import TrainConfig
from hdcid.notebook import finished, start

# seeds, builds the demo corpus if it is missing, prints the device and the folders
S = start("04_hierarchical_alignment", quick=QUICK, seed=SEED, data_root=DATA_ROOT, demo_scale=DEMO_SCALE, fsdd=FSDD)
NB, QUICK, DATA_ROOT, DEVICE = S.nb, S.quick, S.data_root, S.device

# %%
from hdcid.notebook import describe_configs, pretrain_set, pretrained

# pretrained(variant, S): the tiny model from the checkpoint cache, keyed by configs and corpus, else trained now
print(describe_configs(QUICK))

# %%
from hdcid.data import read_ave

model = pretrained("hdcid", S).model
dcid = pretrained("dcid", S).model
ave_test = read_ave(DATA_ROOT, "test")
n_clips = min(MAX_CLIPS, 100) if QUICK else MAX_CLIPS
codes = analysis.encode_modalities(model, ave_test, ("video", "audio"), max_clips=n_clips, seed=SEED)
rows = codes["rows"]
seg_class = ave_test.segment_labels()[rows]  # (n, T): class per second, K = background
names = list(ave_test.classes) + ["background"]
print(f"H-DCID codes of {len(rows)} AVE test clips; levels: {codes['video']['indices'].shape[2]}")

# %% [markdown]
# ## What each level captures

# %%
targets = {"class (per second)": seg_class, "clip identity": np.asarray(rows)}
for key, values in ave_test.meta.items():  # within-class attributes when the corpus has them (voice, writer...)
    if key not in ("order", "split", "prompt"):
        targets[key] = np.asarray(values)[rows]
info = pd.concat(
    [analysis.level_information(codes[m]["indices"], targets).assign(modality=m) for m in ("video", "audio")]
)
fig = plots.level_information_bars(
    info[info.modality == "audio"], title="Audio codes: share of each target's\nentropy explained, per level"
)
plots.save_figure(fig, NB, "level-information")
display(fig)
info.pivot_table(index=["modality", "target"], columns="level", values=["nmi", "purity"]).round(3)

# %% [markdown]
# A bar is I(code; target) / H(target): how much of the class or of the clip identity a level's codes explain; a level that explains clip identity beyond the class carries within-class detail.

# %% [markdown]
# ## Cross-modal agreement per level

# %%
rows_agree = []
for level in range(2):
    a = analysis.agreement_matrix({m: codes[m]["indices"] for m in ("video", "audio")}, level=level)
    rows_agree.append({"model": "H-DCID", "level": level + 1, "video-audio agreement": a[0, 1]})
dc = analysis.encode_modalities(dcid, ave_test, ("video", "audio"), max_clips=n_clips, seed=SEED)
a = analysis.agreement_matrix({m: dc[m]["indices"] for m in ("video", "audio")})
rows_agree.append({"model": "DCID", "level": 1, "video-audio agreement": a[0, 1]})
pd.DataFrame(rows_agree).round(3)

# %% [markdown]
# The table gives, per model and level, the fraction of seconds at which video and audio chose the same code on held-out clips.

# %% [markdown]
# ## Co-occurrence of level-1 and level-2 codes

# %%
joint = analysis.level_cooccurrence(
    codes["audio"]["indices"][..., 0], codes["audio"]["indices"][..., 1], model.cfg.n_codes
)
fig = plots.cooccurrence_heatmap(joint, title="Audio: level-1 x level-2 code co-occurrence (log counts)")
plots.save_figure(fig, NB, "cooccurrence")
print(
    f"H(level 2 | level 1) = {analysis.conditional_entropy(joint):.2f} nats; "
    f"H(level 1 | level 2) = {analysis.conditional_entropy(joint.T):.2f} nats"
)
fig

# %% [markdown]
# Each row is a used level-1 code and each column a used level-2 code; many filled cells per row (a large H(level 2 | level 1)) mean level 2 splits a level-1 code into finer variants.

# %% [markdown]
# ## Level 2, cell by cell
#
# Before the maps, we write H-DCID's second level by hand on four pretraining clips and check with
# `torch.testing.assert_close` that the package computes the same (the level-1 pieces are written out
# in notebook 01 and [docs/method.md](../docs/method.md)).
#
# ### The level-2 input
# Level 2 re-applies the semantic / specific split to the level-1 **specific** feature. For audio,
# with $x_a$ the input features:
# $$s_a = \mathrm{ReLU}(W_s x_a + b_s)\ \text{(level-1 specific)},\qquad
#   z^{(2)}_a = \mathrm{ITRM}^{(2)}(s_a),\qquad k^{(2)} = \arg\min_k \lVert z^{(2)}_a - e^{(2)}_k\rVert^2$$
# $$s^{(2)}_a = \mathrm{ReLU}(W_2 s_a + b_2),\qquad \mathcal{L}^{\text{rec},2}_a = \mathrm{MSE}\big(W_o[\,W_p\hat z^{(2)}_a + b_p\,;\ s^{(2)}_a] + b_o,\ s_a\big)$$
# (video uses its pooled branch $c_v$ instead of $s_a$, text its $s_t$.) The tiny preset then centres
# (and scales) each modality's $z^{(2)}$ by running statistics before the nearest-code search,
# $\tilde z^{(2)}_a = (z^{(2)}_a - \mu^{(2)}_a)/\sigma^{(2)}_a$ (`ModelConfig.semantic_centering` /
# `semantic_scaling`, off in the paper preset; docs/method.md §6). Intuition: what level 1 left in
# the modality-specific feature is quantized again with its own codebook $E^{(2)}$, and the level-2
# decoder must rebuild the level-1 specific feature from it.

# %%
import torch
from torch.testing import assert_close

ps = pretrain_set(S)
xa = torch.as_tensor(np.asarray(ps.audio[:4]), dtype=torch.float32, device=DEVICE)  # (B=4, T, A), the model's device
enc = model.encoder
lin1, lin2 = enc.Audio_encoder.audio_linear, enc.Audio_encoder_2.input_linear
s_a = torch.relu(xa @ lin1.weight.T + lin1.bias)  # (B, T, Da) level-1 specific
with torch.no_grad():
    z2 = enc.audio_self_att_2(s_a)  # (B, T, D) the same ITRM block as level 1
if model.cfg.semantic_centering:  # the tiny preset's per-modality centring (and scaling), eval statistics
    z2 = z2 - enc.semantic_centre.running_mean[1, 0]  # level 2, audio (modality order a, v, t)
    if model.cfg.semantic_scaling:
        z2 = z2 / enc.semantic_centre.running_scale[1, 0]
E2 = model.codebooks()[1]  # (M, D) level-2 codebook
k2 = ((z2[:, :, None] - E2) ** 2).sum(-1).argmin(-1)  # (B, T)
ref = model.encode(xa, "audio")
assert_close(z2, ref.semantic[1])
assert torch.equal(k2, ref.indices[1])

s2 = torch.relu(s_a @ lin2.weight.T + lin2.bias)  # (B, T, Da) level-2 specific
dec = model.decoder.level2["audio"]
proj = E2[k2] @ dec.proj.weight.T + dec.proj.bias  # the code's projection
rec2 = torch.cat([proj, s2], -1) @ dec.out.weight.T + dec.out.bias  # (B, T, Da)
mine = ((rec2 - s_a) ** 2).mean()
with torch.no_grad():  # eval mode: no buffer changes
    xv, xt = (torch.as_tensor(np.asarray(x[:4]), dtype=torch.float32, device=DEVICE) for x in (ps.video, ps.text))
    out = model.forward_train(xv, xa, xt)
assert_close(mine.detach(), out.rec_loss[1]["audio"])
print(f"level-2 audio codes of clip 0: {k2[0].tolist()} | level-2 audio reconstruction MSE {float(mine.detach()):.4f}")

# %% [markdown]
# ### The level-2 loss and its 0.3 weight from epoch 3
# Level 2 has the same terms as level 1 (reconstruction, commitment, CLUB, Cross-CPC, and CMCM: the
# original H-DCID has none at either level, the tiny preset keeps DCID's at both,
# `ModelConfig.hdcid_cmcm`), on its own codebook:
# $$\mathcal{L} = \mathcal{L}^{(1)} + w\,[\text{epoch}\ge e_0]\,\mathcal{L}^{(2)},\qquad w = 0.3,\ e_0 = 3\ \text{(0-based, original)}$$
# Intuition: level 1 first settles on what the modalities share; only then is the finer level trained
# (its codebook still follows the features by EMA before). We run one real `train_step` of the tiny
# H-DCID just before and just at $e_0$ and rebuild both totals from the logged terms.

# %%
import tempfile

from hdcid.notebook import train_configs
from hdcid.train import Pretrainer

mcfg, tcfg = train_configs("hdcid", QUICK)
paper = TrainConfig.paper("hdcid")
tcfg = tcfg.replace(level2_start_epoch=paper.level2_start_epoch, level2_weight=paper.level2_weight)  # published e0, w
e0, w = tcfg.level2_start_epoch, tcfg.level2_weight
batch = [torch.as_tensor(np.asarray(x[:8]), dtype=torch.float32) for x in (ps.video, ps.audio, ps.text)]
with tempfile.TemporaryDirectory() as tmp:
    trainer = Pretrainer(mcfg, tcfg, ps, tmp, device="cpu")
    rows_l2 = {f"epoch {e}": trainer.train_step(*batch, epoch=e) for e in (e0 - 1, e0)}


def level_loss(row, sfx=""):
    """L = sum_m (rec + commit + MI) + CPC + CMCM of one level, rebuilt from the logged terms."""
    return (
        sum(row[f"{t}{sfx}_{s}"] for t in ("rec", "commit", "mi") for s in "avt") + row[f"cpc{sfx}"] + row[f"cmcm{sfx}"]
    )


before, after = rows_l2[f"epoch {e0 - 1}"], rows_l2[f"epoch {e0}"]
for r in (before, after):
    assert_close(torch.tensor(level_loss(r)), torch.tensor(r["loss1"]), rtol=1e-5, atol=1e-5)
    assert_close(torch.tensor(level_loss(r, "2")), torch.tensor(r["loss2"]), rtol=1e-5, atol=1e-5)
assert_close(torch.tensor(before["total"]), torch.tensor(level_loss(before)), rtol=1e-5, atol=1e-5)
assert_close(
    torch.tensor(after["total"]), torch.tensor(level_loss(after) + w * level_loss(after, "2")), rtol=1e-5, atol=1e-5
)
tiny = train_configs("hdcid", QUICK)[1]
print(
    f"these two steps: w = {w}, e0 = {e0} (the original's); the notebooks' tiny H-DCID trains level 2 "
    f"from epoch {tiny.level2_start_epoch} (TrainConfig.tiny: an untrained level 2 put every video second on one code) "
    f"with w = {tiny.level2_weight}"
)
pd.DataFrame(rows_l2).loc[["loss1", "loss2", "total", "level2"]].round(4)

# %% [markdown]
# ## Maps of the code vectors

# %%
vectors, points = analysis.code_points(
    model.codebooks(), {m: codes[m]["indices"] for m in ("video", "audio")}, seg_class, class_names=names
)
method = "pca" if QUICK else PROJECTION
proj = analysis.project_codes(
    vectors, method=method, seed=SEED, reason="quick mode" if QUICK and PROJECTION == "umap" else ""
)
print(
    f"{len(vectors)} distinct code vectors used by {len(points)} (segment, level, modality) points; "
    f"projection: {proj.note}{' (cached)' if proj.cached else ''}"
)
from matplotlib.figure import Figure

fig = Figure(figsize=(16, 4.6), layout="constrained")
for ax, colour in zip(fig.subplots(1, 3), ("class", "modality", "level")):
    plots.projection_scatter(proj.xy, points, colour_by=colour, ax=ax, title=f"{proj.note}: coloured by {colour}")
plots.save_figure(fig, NB, "code-maps")
fig

# %% [markdown]
# Every dot is one second of one clip in one modality at one level, placed at its code vector (jittered slightly): colour by class shows whether codes group by digit, by modality whether video and audio land on the same codes, by level how the two codebooks occupy the space.

# %%
from hdcid import widgets

explorer = widgets.umap_explorer(proj.xy, points, note=proj.note)
explorer

# %% [markdown]
# Static views of three fixed settings:

# %%
for level, modality, colour in [("1", "all", "modality"), ("2", "all", "modality"), ("all", "audio", "class")]:
    display(widgets.render_projection(proj.xy, points, level, modality, colour, note=proj.note))

# %% [markdown]
# Level 1 versus level 2 coloured by modality shows on which level video and audio share codes; the audio-only view coloured by class shows how each level's codes group the digits.

# %% [markdown]
# ## Summary
#
# Level 1 and level 2 are different codebooks with different jobs; mutual information against the
# class and against clip identity, per-level agreement and the co-occurrence table make that
# difference measurable, and the maps make it visible.

# %% [markdown]
# ## Exercises
#
# 1. Run with `PROJECTION = 'umap'` in full mode and compare with the PCA map.
# 2. Add the DCID codes to the map (`analysis.code_points` with `dcid.codebooks()`) and colour by level.
# 3. Which level's audio codes explain more of the clip identity, and what does that say about within-class detail?

# %%
print(finished(S))
