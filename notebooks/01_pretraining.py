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
# # 01 · Pretraining DCID and H-DCID
#
# We pretrain the tiny DCID and H-DCID models on the demo corpus (or load them from the checkpoint
# cache) and watch the loss terms live: reconstruction, commitment, Cross-CPC, CLUB and CMCM. Then we
# follow how often the three modalities of the same second choose the same code (cross-modal code
# agreement) as training proceeds. Later notebooks reuse these cached checkpoints.
#
# **Runtime** — quick (`HDCID_QUICK=1`): ~26 s on a 2-core CPU (including pretraining both tiny models; measured); full: ~2.7 min on a quiet 2-core CPU (159 s measured, including pretraining both tiny models, about 65 s DCID + 86 s H-DCID; about 10 min when the machine was shared). No GPU was used for these.

# %% tags=["parameters"]
# Parameters (papermill injects overrides after this cell). Literals only.
QUICK = None       # None: read HDCID_QUICK from the environment (1 = quick mode)
SEED = 0
DATA_ROOT = None   # None: hdcid.utils.demo_root(); the AV-Digits corpus is built there if missing
DEMO_SCALE = None  # None: 0.25 in quick mode, 1.0 otherwise (used only when building the corpus)

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
S = start("01_pretraining", quick=QUICK, seed=SEED, data_root=DATA_ROOT, demo_scale=DEMO_SCALE)
NB, QUICK, DATA_ROOT, DEVICE = S.nb, S.quick, S.data_root, S.device

# %%
from hdcid.notebook import describe_configs, pretrain_set, pretrained

# pretrained(variant, S): the tiny model from the checkpoint cache, keyed by configs and corpus, else trained now
print(describe_configs(QUICK))

# %% [markdown]
# ## Live pretraining
# The figure below refreshes every few steps while a model trains; if the checkpoint is cached it shows the stored history instead.

# %%
from hdcid.notebook import is_cached


def live_plot(variant, every=2 if QUICK else 16):  # fewer redraws in full mode: they take CPU time from pretraining
    """A Pretrainer callback that redraws the per-term loss curves every `every` steps."""
    rows, handle = [], display(plots.loss_curves(pd.DataFrame({"step": [0], "total": [np.nan]}),
                                                 title=f"{variant}: waiting for the first step"), display_id=True)

    def callback(row):
        rows.append(row)
        if len(rows) % every == 0:
            handle.update(plots.loss_curves(analysis.loss_terms(pd.DataFrame(rows)),
                                            title=f"{variant}: loss terms (live, step {row['step']})"))
    return callback


results = {}
for variant in ("dcid", "hdcid"):
    cached = is_cached(variant, S)
    results[variant] = pretrained(variant, S, callback=None if cached else live_plot(variant))
    print(variant, "history:", results[variant].history.shape, "| checkpoints:",
          [p.name for p in results[variant].checkpoints])

# %% [markdown]
# ## Loss terms per model

# %%
terms = {"DCID": analysis.loss_terms(results["dcid"].history), "H-DCID": analysis.loss_terms(results["hdcid"].history)}
fig = plots.loss_curves(terms, title="Pretraining losses per term (DCID vs H-DCID)")
plots.save_figure(fig, NB, "loss-terms")
fig

# %% [markdown]
# Each panel is one term summed over modalities; H-DCID has no CMCM (it is replaced by zero) and adds
# the same terms for level 2 (` L2`) once level-2 training starts.
# What each loss does:
# * **reconstruction** — decoders rebuild each modality's input from its code plus its specific features, so codes keep information;
# * **commitment** — pulls every semantic vector towards its own code and (more weakly) towards the codes the other modalities chose at the same second;
# * **CPC** — contrastive prediction of a future segment of one modality from the past of another: codes must carry shared, predictable content;
# * **CLUB (MI)** — an upper bound on the mutual information between semantic and modality-specific features, minimised to keep them apart;
# * **CMCM** — cross-modal code matching: the per-clip code distributions of two modalities must identify each other within the batch.

# %%
terms["DCID"].drop(columns=["step"]).groupby("epoch").mean().round(3)

# %% [markdown]
# The table gives the mean of each term per epoch for DCID, so you can read off which terms fall and which stay flat.

# %% [markdown]
# ## Cross-modal code agreement over training

# %%
h_d, h_h = results["dcid"].history, results["hdcid"].history
curves = {"DCID": h_d, "H-DCID level 1": h_h}
if "agreement2" in h_h.columns:
    curves["H-DCID level 2"] = h_h[["step", "agreement2"]].rename(columns={"agreement2": "agreement"})
fig = plots.agreement_curve(curves)
plots.save_figure(fig, NB, "agreement")
fig

# %% [markdown]
# The curves show, per training batch, the fraction of (clip, second) positions where audio, video
# **and text** picked the same code. Text positions are words of the prompt, not seconds, so this
# 3-way number is a weak signal; the section below measures what the method claims: audio and video
# of the same second, on held-out clips.

# %%
for name, df in curves.items():
    print(f"{name:15s} 3-way batch agreement: first step {df['agreement'].iloc[0]:.3f} -> last step {df['agreement'].iloc[-1]:.3f}")

# %% [markdown]
# ## Audio and video of the same second, on held-out clips, per epoch
# After every epoch (read back from its checkpoint, encoder in `eval()` mode, so the codebook is
# never touched) we encode the AVE **test** clips in audio and in video and count, on the seconds
# that show a digit (background seconds carry no shared event), how often both modalities pick the
# same code, and in how many clips the most frequent code is the same (the original's `equal_num`).

# %%
import json

from IPython.display import Markdown

from hdcid.data import read_ave

ave_test = read_ave(DATA_ROOT, "test")
per_epoch = {"DCID": analysis.agreement_over_epochs(results["dcid"].checkpoints, ave_test),
             "H-DCID": analysis.agreement_over_epochs(results["hdcid"].checkpoints, ave_test)}
fig = plots.heldout_agreement_curve(per_epoch)
plots.save_figure(fig, NB, "heldout-agreement")
fig

# %%
claims = analysis.agreement_claims(per_epoch)
print("CLAIMS " + json.dumps(claims))
pd.concat(per_epoch, names=["model"]).reset_index(level=0).round(3)

# %% [markdown]
# ## Summary

# %%
display(Markdown(
    "Both models were trained (or loaded) through the shared checkpoint cache, keyed by their configs. "
    f"On {len(ave_test)} held-out AVE test clips (foreground seconds, {'quick' if QUICK else 'full'} mode):\n\n"
    + "\n".join(f"* {c['sentence']}" for c in claims)
    + f"\n\n(\"share codes\" means a same-second agreement of at least {analysis.unified.SHARED_AT:.1f}.)"))

# %% [markdown]
# ## Exercises
#
# 1. Retrain DCID with `ModelConfig.tiny('dcid').faithful()` (no per-modality centring, a new cache key): what happens to the held-out audio-video agreement?
# 2. Set `ModelConfig.tiny('dcid', commitment=1.0)` and compare the commitment curve.
# 3. Use `TrainConfig.faithful()` for H-DCID (6 encoder forwards per step) and compare the number of code resets in notebook 02.

# %%
print(finished(S))
