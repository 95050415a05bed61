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
# **Runtime** — quick (`HDCID_QUICK=1`): ~13 s; full: ~81 s; measured on a 2-core CPU, no GPU, with the demo corpus already built (see `docs/runtimes.json`).

# %% tags=["parameters"]
# Parameters (papermill injects overrides after this cell). Literals only.
QUICK = None  # None: read HDCID_QUICK from the environment (1 = quick mode)
SEED = 0
DATA_ROOT = None  # None: hdcid.utils.demo_root(); the AV-Digits corpus is built there if missing
DEMO_SCALE = None  # None: 0.25 in quick mode, 1.0 otherwise (used only when building the corpus)
FSDD = None  # a folder of FSDD recordings: human speech mixed into the corpus audio (build --fsdd)
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
from hdcid.config import ModelConfig
from hdcid.notebook import finished, start
from hdcid.utils import output_dir

# seeds, builds the demo corpus if it is missing, prints the device and the folders
S = start("00_tour", quick=QUICK, seed=SEED, data_root=DATA_ROOT, demo_scale=DEMO_SCALE, fsdd=FSDD)
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
fig = plots.clip_gallery(
    images,
    ave.video[picks],
    ave.audio[picks],
    [ave.classes[y[i]] for i in picks],
    prompts=prompt_list,
    title=f"A few demo clips\naudio: {S.audio_sources}",
)
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
sizes = analysis.model_sizes(
    {
        "DCID paper": ModelConfig.paper("dcid"),
        "H-DCID paper": ModelConfig.paper("hdcid"),
        "DCID tiny": ModelConfig.tiny("dcid"),
        "H-DCID tiny": ModelConfig.tiny("hdcid"),
    }
)
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

real_root, released = (
    p if p.is_absolute() else repo_root() / p for p in (Path(REAL_DATA_ROOT), Path(RELEASED_CHECKPOINT))
)
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
# ## Real human speech: does the demo's audio transfer?
# The corpus's audio is synthetic (espeak-ng, flite and festival voices through simulated rooms and
# channels, `scripts/render_audio.py`). Every source is cut to the **telephone band** (resampled to
# 8 kHz, nothing above 4 kHz) before the 128-d features are computed, so 8 kHz recordings of real
# people land in the same space: `hdcid.demo.audio_features(waves, sample_rate)` returns rows like
# `read_ave(...).audio[i, t]`. Set `FSDD` (or `HDCID_FSDD`) to a folder of Free Spoken Digit Dataset
# recordings to compare a human and a synthetic "seven" and to measure, per human speaker the corpus
# never trained on, (a) raw-feature nearest-centroid accuracy with centroids from the synthetic bank
# and (b) V->A transfer: a head trained on video codes of AVE-like train clips, tested on the test
# clips with every spoken second replaced by that speaker's recording (honest protocol).

# %%
from IPython.display import Audio, Markdown

from hdcid.data.speech import read_speech
from hdcid.demo.audio import log_spectrogram
from hdcid.demo.sources import assets_dir, load_audio_bank, read_audio_sources
from hdcid.demo.transfer import default_fsdd_dir, human_features, nearest_centroid_to_human, with_human_audio

with np.load(assets_dir() / "example_seven.npz") as z:
    synth = {k: z[k].astype(np.float32) / 32768 for k in z.files if k != "sample_rate"}
    synth_sr = int(z["sample_rate"])
fsdd_dir = Path(FSDD) if FSDD else default_fsdd_dir()
speech = None
if fsdd_dir is None or not Path(fsdd_dir).exists():
    print(
        f"human speech skipped: no FSDD recordings found (FSDD = {FSDD!r}; looked at "
        f"{fsdd_dir or '$HDCID_FSDD and <repo>/../shared/data/fsdd'}); only the synthetic examples are shown"
    )
else:
    speech = read_speech(fsdd_dir)
    if QUICK:  # quick mode: 10 recordings per digit and speaker
        speech = speech.subset(np.array([int(p.stem.split("_")[-1]) < 10 for p in speech.paths]))
    print(speech.summary())
names = [k for k in synth if not k.startswith("festival")]
panels = [log_spectrogram(synth[k], synth_sr) for k in names]
titles = [f'synthetic "seven" ({k})' for k in names]
if speech is not None:
    i7 = int(np.flatnonzero(speech.digit == 7)[0])
    panels.insert(0, log_spectrogram(speech.waves[i7], speech.sample_rate))
    titles.insert(0, f'human "seven" ({speech.speaker[i7]}, FSDD)')
fig = plots.spectrogram_panels(panels, titles, suptitle="what the features see: 0-4 kHz (telephone band)")
plots.save_figure(fig, NB, "human-vs-synthetic-seven")
fig

# %%
if speech is not None:
    print(titles[0])
    display(Audio(speech.waves[i7], rate=speech.sample_rate))
for k in names:
    print(f"synthetic: {k}")
    display(Audio(synth[k], rate=synth_sr))

# %%
if speech is not None:
    from hdcid.downstream import TaskOptions, run_task
    from hdcid.notebook import pretrained

    bank = load_audio_bank()
    human = human_features(speech, bank)
    nc = nearest_centroid_to_human(bank, human)
    pools = (read_audio_sources(DATA_ROOT) or {}).get("human") or {}
    unseen = [sp for sp in speech.speakers if sp not in pools.get("train", [])]
    dcid = pretrained("dcid", S, progress=False).model
    ave_data = {s: read_ave(DATA_ROOT, s) for s in ("train", "val", "test")}
    seeds = (0,)  # one head seed per speaker keeps this section under a minute (the benchmark uses 3)
    v2a = {}
    for sp in unseen + ["heldout voices"]:
        d = dict(ave_data)
        if sp != "heldout voices":
            d["test"] = with_human_audio(ave_data["test"], human, sp, np.random.default_rng(0))
        res = run_task("ave", "v2a", dcid, d, options=TaskOptions(protocol="honest", seeds=seeds, quick=QUICK))
        v2a[sp] = float(res[res["eval"] == "cross"]["value"].mean())
    table = pd.DataFrame(
        {
            "raw nearest-centroid (synthetic bank centroids) %": {k: nc[k] for k in v2a},
            "V->A transfer, DCID tiny, honest %": v2a,
        }
    ).round(1)
    display(table)
    mean_h = table.drop(index="heldout voices").mean()
    display(
        Markdown(
            f"On this corpus ({S.audio_sources}; {'quick' if QUICK else 'full'} mode, head seed 0), over the "
            f"{len(unseen)} human speaker(s) it never trained on, raw nearest-centroid reaches "
            f"{mean_h.iloc[0]:.1f} % and V->A transfer {mean_h.iloc[1]:.1f} % (chance 10 %); held-out "
            f"synthetic voices: {v2a['heldout voices']:.1f} %. `python benchmarks/speech_transfer.py` repeats "
            "this leave-one-speaker-out for a corpus built without and with `--fsdd`."
        )
    )
    bench = output_dir("speech_transfer") / "speech_transfer_full.csv"
    if bench.exists():
        b = pd.read_csv(bench)
        b["held_out"] = np.where(
            b["held_out"].str.startswith("heldout voices"), "held-out synthetic voices", "held-out human speakers"
        )
        print(f"from {bench} (full mode):")
        display(b.groupby(["measure", "corpus", "held_out"], sort=False)["value"].mean().unstack().round(1))

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
