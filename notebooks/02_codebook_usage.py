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
# # 02 · Codebook usage
#
# How is the unified codebook used? Per modality and level: code usage histograms, perplexity, dead
# codes and resets over training, which codes are shared by all modalities and which are owned by one,
# and the modality x modality agreement matrix — for DCID and both levels of H-DCID.
#
# **Runtime** — quick (`HDCID_QUICK=1`): ~8 s; full: ~8 s; measured on a 2-core CPU, no GPU, with the checkpoints cached by 01 (see `docs/runtimes.json`).

# %% tags=["parameters"]
# Parameters (papermill injects overrides after this cell). Literals only.
QUICK = None  # None: read HDCID_QUICK from the environment (1 = quick mode)
SEED = 0
DATA_ROOT = None  # None: hdcid.utils.demo_root(); the AV-Digits corpus is built there if missing
DEMO_SCALE = None  # None: 0.25 in quick mode, 1.0 otherwise (used only when building the corpus)
FSDD = None  # a folder of FSDD recordings: human speech mixed into the corpus audio (build --fsdd)
MAX_CLIPS = 400  # clips of the pretraining set to encode (quick mode: 120)

# %%
# %matplotlib inline

import numpy as np
import pandas as pd
from IPython.display import display

from hdcid import analysis, plots
from hdcid.notebook import finished, start

# seeds, builds the demo corpus if it is missing, prints the device and the folders
S = start("02_codebook_usage", quick=QUICK, seed=SEED, data_root=DATA_ROOT, demo_scale=DEMO_SCALE, fsdd=FSDD)
NB, QUICK, DATA_ROOT, DEVICE = S.nb, S.quick, S.data_root, S.device

# %%
from hdcid.notebook import describe_configs, pretrain_set, pretrained

# pretrained(variant, S): the tiny model from the checkpoint cache, keyed by configs and corpus, else trained now
print(describe_configs(QUICK))

# %%
res = {"DCID": pretrained("dcid", S), "H-DCID": pretrained("hdcid", S)}
models = {name: r.model for name, r in res.items()}
data = pretrain_set(S)
n_clips = min(MAX_CLIPS, 120) if QUICK else MAX_CLIPS
codes = {
    name: analysis.encode_modalities(m, data, ("video", "audio", "text"), max_clips=n_clips, seed=SEED)
    for name, m in models.items()
}
MODS = ["video", "audio", "text"]
M = models["DCID"].cfg.n_codes
print(f"encoded {n_clips} clips x {data.n_segments} seconds in {MODS}; {M} codes per level")

# %% [markdown]
# ## Usage histograms and perplexity

# %%
for name, c in codes.items():
    counts = analysis.usage_matrix({m: c[m]["indices"] for m in MODS}, M)  # (Mo, L, M)
    fig = plots.usage_histograms(counts, MODS, analysis.perplexity(counts), title=f"{name}: code usage")
    plots.save_figure(fig, NB, f"usage-{name}")
    display(fig)

# %% [markdown]
# Each bar is one code; a flat histogram (perplexity close to the number of codes) means the codebook is used evenly, a few tall bars mean a handful of codes carry most segments.

# %%
summary = pd.concat(
    [analysis.usage_summary({m: c[m]["indices"] for m in MODS}, M).assign(model=name) for name, c in codes.items()]
)
summary.pivot_table(index=["model", "level"], columns="modality", values=["perplexity", "dead"]).round(1)

# %% [markdown]
# ## Dead codes and resets over training

# %%
for name, r in res.items():
    over = analysis.usage_over_training(r.usage)
    fig = plots.usage_over_training(
        over[over.modality == "all"],
        columns=("dead", "resets", "perplexity"),
        title=f"{name}: codebook usage per epoch (all modalities)",
    )
    plots.save_figure(fig, NB, f"usage-over-training-{name}")
    display(fig)

# %% [markdown]
# Dead codes are codes no modality chose during an epoch; resets count how often the dead-code rule moved a code next to a used one; perplexity summarises how evenly the used codes share the segments.

# %% [markdown]
# ## Shared codes vs codes owned by one modality

# %%
own = {}
for name, c in codes.items():
    counts = analysis.usage_matrix({m: c[m]["indices"] for m in MODS}, M)
    for level in range(counts.shape[1]):
        table = analysis.code_ownership(counts[:, level], MODS)
        own[f"{name} L{level + 1}"] = analysis.ownership_summary(table)
own = pd.DataFrame(own).T.fillna(0).astype(int)
fig = plots.ownership_bars(own)
plots.save_figure(fig, NB, "ownership")
display(fig)
own

# %% [markdown]
# A code is *shared* when all three modalities use it, *owned* by a modality when only that modality uses it; a unified codebook should be dominated by shared codes.

# %% [markdown]
# ## Modality x modality agreement

# %%
from matplotlib.figure import Figure

panels = [(name, level) for name, c in codes.items() for level in range(c["video"]["indices"].shape[2])]
fig = Figure(figsize=(4.2 * len(panels), 3.6), layout="constrained")
for ax, (name, level) in zip(fig.subplots(1, len(panels)), panels):
    mat = analysis.agreement_matrix({m: codes[name][m]["indices"] for m in MODS}, level=level)
    plots.agreement_heatmap(mat, MODS, title=f"{name} level {level + 1}", ax=ax)
plots.save_figure(fig, NB, "agreement-matrix")
fig

# %% [markdown]
# Each cell is the fraction of co-located seconds (same clip, same second) at which the row and column modality chose the same code; the diagonal is 1 by definition.

# %% [markdown]
# ## Per digit: the codes audio and video use most
# On held-out clips (AVE test split, seconds that show a digit, `eval()` mode): for every digit the
# three codes each modality uses most (most used first), the codes in both lists, and the share of
# that digit's seconds where audio and video picked the same code. The last row, *background*, does
# the same over the seconds without a digit: a segment head (notebook 06) trained on one modality can
# only tell event seconds from background seconds in the other if both put their background seconds
# on the same codes.

# %%
import json

from IPython.display import Markdown

from hdcid.data import read_ave

ave_test = read_ave(DATA_ROOT, "test")
seg = ave_test.segment_labels()  # (N, T), background = ave_test.n_classes
seg = np.where(seg == ave_test.n_classes, -1, seg)
digit_tables, held = {}, {}
for name, m in models.items():
    enc = analysis.encode_modalities(m, ave_test, ("audio", "video"))
    for level in range(m.cfg.n_levels):
        ia, iv = enc["audio"]["indices"][..., level], enc["video"]["indices"][..., level]
        key = f"{name} L{level + 1}"
        digit_tables[key] = analysis.digit_top_codes(ia, iv, seg, m.cfg.n_codes, k=3, background=True)
        held[key] = analysis.unified_summary(ia, iv, m.cfg.n_codes, seg >= 0)
for key, t in digit_tables.items():
    print(key)
    display(t[["audio top", "video top", "overlap", "agreement"]].round(2))

# %%
lines = []
for key, t in digit_tables.items():
    h, digits = held[key], t.drop(index="background", errors="ignore")
    bg = (
        f"; on background seconds they agree on {t.loc['background', 'agreement']:.0%}"
        if "background" in t.index
        else ""
    )
    lines.append(
        f"* {key}: the top-3 code lists of audio and video overlap for {int((digits.n_overlap > 0).sum())} of "
        f"{len(digits)} digits; audio and video pick the same code on {h['agreement']:.0%} of the foreground "
        f"seconds ({analysis.sharing_verdict(h['agreement'])}) and agree on the most frequent code in "
        f"{h['clip_agreement']:.0%} of the clips{bg}."
    )
print(
    "CLAIMS "
    + json.dumps(
        {
            k: dict(
                held[k],
                overlap_digits=int((t.drop(index="background", errors="ignore").n_overlap > 0).sum()),
                sharing=analysis.sharing_verdict(held[k]["agreement"]),
            )
            for k, t in digit_tables.items()
        }
    )
)

# %% [markdown]
# ## Summary

# %%
display(
    Markdown(
        "Usage statistics come from the same cached checkpoints as notebook 01. Per-modality histograms, "
        "perplexity and dead codes say how much of each codebook is alive; ownership and the agreement matrix "
        f"say how *unified* it is. On {len(ave_test)} held-out AVE test clips "
        f"({'quick' if QUICK else 'full'} mode):\n\n" + "\n".join(lines)
    )
)

# %% [markdown]
# ## Exercises
#
# 1. Encode the AVE test split instead of the pretraining set: does agreement drop on held-out clips?
# 2. Compute `analysis.usage_summary` on the training-mode codes (`model.train()`): what changes and why must analysis use `eval()`?
# 3. Which modality owns the most codes in H-DCID level 2, and why might level 2 be less shared?

# %%
print(finished(S))
