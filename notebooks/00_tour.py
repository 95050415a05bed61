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
# # 00 · A tour of hdcid
#
# This collection re-implements three methods for **multimodal unified discrete representations**:
# **DCID** (one codebook shared by video, audio and text, trained so that the three modalities of the
# same second pick the same code), **H-DCID** (two hierarchical codebooks: level 1 aligns what the
# modalities share, level 2 aligns what is left in their modality-specific features) and **TOC**
# (a training-free choice of which codebook dimensions a downstream head should look at).
# You will see the AV-Digits demo corpus (a few clips: a digit image, its video feature grid, the audio
# features and the text prompt), the size of every model preset, and how to point the notebooks at the
# real features and at a released checkpoint.
#
# **Runtime** — quick (`HDCID_QUICK=1`): ~17 s (a 2-core CPU shared with other jobs, load average ~5.5, no GPU); full: ~11 s (a 2-core CPU, no GPU); measured, with the demo corpus already built (see `docs/runtimes.json`).

# %% tags=["parameters"]
# Parameters (papermill injects overrides after this cell). Literals only.
QUICK = None       # None: read HDCID_QUICK from the environment (1 = quick mode)
SEED = 0
DATA_ROOT = None   # None: hdcid.utils.demo_root(); the AV-Digits corpus is built there if missing
DEMO_SCALE = None  # None: 0.25 in quick mode, 1.0 otherwise (used only when building the corpus)
REAL_DATA_ROOT = "data/real"  # the original release layout (AVE-ECCV18-master/, AVVP/, ...)
RELEASED_CHECKPOINT = "checkpoints/released/nips2023_AVT_vgg40k_size400.pt"  # DCID (CMG release)

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
S = start("00_tour", quick=QUICK, seed=SEED, data_root=DATA_ROOT, demo_scale=DEMO_SCALE)
NB, QUICK, DATA_ROOT, DEVICE = S.nb, S.quick, S.data_root, S.device

# %% [markdown]
# ## The method in one paragraph
# Each modality is encoded per one-second segment into a semantic vector `z` (B, T, D). A vector
# quantizer snaps `z` to the nearest of `M` code vectors of a **unified codebook**, updated by a
# multimodal EMA (each code moves towards the features of *all* modalities that chose it, plus their
# co-located partners) and by dead-code resets. Cross-modal CPC predicts the future of one modality
# from the past of another, CLUB minimises mutual information between the semantic and the
# modality-specific parts, and (DCID only) CMCM pulls the code distributions of the modalities
# together. Downstream, a small head trained on one modality's **codes** is tested on another
# modality's codes: cross-modal generalisation. Each of these pieces is written out by hand on small
# tensors and checked against the package in notebook 01 (pretraining), 04 (H-DCID's second level)
# and 05 (the downstream head); [docs/method.md](../docs/method.md) collects the equations.

# %% [markdown]
# ## The demo corpus: a few clips

# %%
from hdcid.data import read_ave
from hdcid.data.pretrain import read_prompts
from hdcid.demo.video import DigitVideo

ave = read_ave(DATA_ROOT, "train")
print(ave.summary())
y = ave.video_labels()
picks = [int(np.flatnonzero(y == c)[0]) for c in range(4)]  # one clip of each of 4 classes
digits = DigitVideo()
images = np.stack([digits.images[digits.pools["train"][c][0]] for c in range(4)])  # example digit images
prompts = read_prompts(DATA_ROOT)
prompt_list = list(prompts.values())[:4]
fig = plots.clip_gallery(images, ave.video[picks], ave.audio[picks],
                         [ave.classes[y[i]] for i in picks], prompts=prompt_list)
plots.save_figure(fig, NB, "clips")
fig

# %% [markdown]
# Each column is one class: the top row is an example handwritten digit of that class, the middle row the (7, 7) video feature grid of one second (channel mean) and the bottom row the audio features over the ten seconds, which change where the event starts and ends.

# %%
for name, prompt in list(prompts.items())[:3]:
    print(f"{name!r}: {prompt!r}")

# %% [markdown]
# ## Model sizes of each preset
# Built on PyTorch's `meta` device, so counting the 80-million-parameter paper model costs no memory.

# %%
sizes = analysis.model_sizes({
    "DCID paper": ModelConfig.paper("dcid"), "H-DCID paper": ModelConfig.paper("hdcid"),
    "DCID tiny": ModelConfig.tiny("dcid"), "H-DCID tiny": ModelConfig.tiny("hdcid"),
})
sizes.round(3)

# %% [markdown]
# The paper presets reproduce the released encoders (142 and 262 state-dict keys); the tiny presets are what every other notebook trains on the demo corpus.

# %% [markdown]
# ## Pointing the notebooks at real features and a released checkpoint
# Every notebook takes `DATA_ROOT` as a parameter: set it (or `HDCID_DEMO_ROOT`) to a folder with the
# original release layout (`AVE-ECCV18-master/data/*.h5`, `AVVP/...`, `AVE_AVVP/...`, `UCF101/...`,
# `vggsound40k/...`) and the same readers load it. A released encoder checkpoint loads with
# `hdcid.load_original_checkpoint(path)` (DCID or H-DCID is detected from its keys). The cell below does
# both when the files exist and otherwise says what it looked for.

# %%
from hdcid.utils import repo_root

real_root, released = (p if p.is_absolute() else repo_root() / p for p in (Path(REAL_DATA_ROOT), Path(RELEASED_CHECKPOINT)))
if released.exists():
    model = hdcid.load_original_checkpoint(released)
    print(f"loaded {released}: variant {model.cfg.variant}, codebooks {tuple(model.codebooks().shape)}")
    if real_root.exists():
        real_ave = read_ave(real_root, "test")
        enc = model.encode(real_ave.audio[:4], "audio")
        print("codes of 4 real AVE test clips (audio, level 1):", enc.indices[0][:, :5].tolist())
else:
    print(f"no released checkpoint at {released.resolve()} - download it and set RELEASED_CHECKPOINT")
if not real_root.exists():
    print(f"no real features at {real_root.resolve()} - set REAL_DATA_ROOT (or DATA_ROOT in any notebook)")

# %% [markdown]
# ## Summary
#
# The demo corpus stores every dataset in the original file formats, so the readers, models and tasks
# used here run unchanged on the real features; the tiny presets keep the sizes CPU-friendly.

# %% [markdown]
# ## Exercises
#
# 1. Print `ave.labels[picks[0]]` and find the seconds where the event is present.
# 2. Change the `model_sizes` call to a `ModelConfig.tiny('dcid', n_codes=128)`: which parts grow?
# 3. Read the AVVP visual annotations with `hdcid.data.read_avvp(DATA_ROOT, 'visual')` and count multi-event clips.

# %%
print(finished(S))
