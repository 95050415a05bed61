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
# level-1 and level-2 codes co-occur, and 2-D maps (UMAP; PCA in quick mode) of the code vectors every
# segment maps to, coloured by class, modality and level, with a widget to pick the view.
#
# **Runtime** — quick (`HDCID_QUICK=1`): ~8 s on a 2-core CPU (with the checkpoints cached by 01; measured); full: ~19 s on a 2-core CPU (with the checkpoints cached by 01; measured). No GPU was used for these.

# %% tags=["parameters"]
# Parameters (papermill injects overrides after this cell). Literals only.
QUICK = None       # None: read HDCID_QUICK from the environment (1 = quick mode)
SEED = 0
DATA_ROOT = None   # None: hdcid.utils.demo_root(); the AV-Digits corpus is built there if missing
DEMO_SCALE = None  # None: 0.25 in quick mode, 1.0 otherwise (used only when building the corpus)
FSDD = None        # a folder of FSDD recordings: human speech mixed into the corpus audio (build --fsdd)
MAX_CLIPS = 300  # AVE test clips to analyse (quick mode: 100)
PROJECTION = "umap"  # "umap" or "pca"; quick mode uses PCA (UMAP first compiles numba code)

# %%
# %matplotlib inline
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import display

import hdcid
from hdcid import analysis, plots
from hdcid.config import ModelConfig, TrainConfig
from hdcid.notebook import finished, start
from hdcid.utils import cache_dir, output_dir

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
info = pd.concat([analysis.level_information(codes[m]["indices"], targets).assign(modality=m) for m in ("video", "audio")])
fig = plots.level_information_bars(info[info.modality == "audio"],
                                   title="Audio codes: share of each target's entropy explained, per level")
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
joint = analysis.level_cooccurrence(codes["audio"]["indices"][..., 0], codes["audio"]["indices"][..., 1], model.cfg.n_codes)
fig = plots.cooccurrence_heatmap(joint, title="Audio: level-1 x level-2 code co-occurrence (log counts)")
plots.save_figure(fig, NB, "cooccurrence")
print(f"H(level 2 | level 1) = {analysis.conditional_entropy(joint):.2f} nats; "
      f"H(level 1 | level 2) = {analysis.conditional_entropy(joint.T):.2f} nats")
fig

# %% [markdown]
# Each row is a used level-1 code and each column a used level-2 code; many filled cells per row (a large H(level 2 | level 1)) mean level 2 splits a level-1 code into finer variants.

# %% [markdown]
# ## Maps of the code vectors

# %%
vectors, points = analysis.code_points(model.codebooks(), {m: codes[m]["indices"] for m in ("video", "audio")},
                                       seg_class, class_names=names)
method = "pca" if QUICK else PROJECTION
proj = analysis.project_codes(vectors, method=method, cache_key=f"{NB}-hdcid", seed=SEED,
                              reason="quick mode" if QUICK and PROJECTION == "umap" else "")
print(f"{len(vectors)} distinct code vectors used by {len(points)} (segment, level, modality) points; "
      f"projection: {proj.note}{' (cached)' if proj.cached else ''}")
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
