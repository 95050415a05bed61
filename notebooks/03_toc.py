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
# # 03 · TOC: training-free codebook dimension selection
#
# TOC scores every dimension of a codebook from the codebook alone: dimensions where codes share a
# common offset (high *similarity*) are penalised, dimensions where codes differ (high *variance*) are
# rewarded, and a head then sees only the kept dimensions. You will see the criterion per dimension,
# the chosen dimensions, the code-to-code cosine heatmaps before and after selection, an interactive
# explorer with sliders for `choose_channel`, `toc_max_num`, `toc_min_num` and the similarity/variance
# weight (with a live cross-modal probe accuracy), and a sweep of accuracy against kept dimensions.
#
# **Runtime** — quick (`HDCID_QUICK=1`): ~6 s; full: ~7 s; measured on a 2-core CPU, no GPU, with the checkpoints cached by 01 (see `docs/runtimes.json`).

# %% tags=["parameters"]
# Parameters (papermill injects overrides after this cell). Literals only.
QUICK = None  # None: read HDCID_QUICK from the environment (1 = quick mode)
SEED = 0
DATA_ROOT = None  # None: hdcid.utils.demo_root(); the AV-Digits corpus is built there if missing
DEMO_SCALE = None  # None: 0.25 in quick mode, 1.0 otherwise (used only when building the corpus)
FSDD = None  # a folder of FSDD recordings: human speech mixed into the corpus audio (build --fsdd)
VARIANT = "hdcid"  # whose codebooks the explorer uses ("dcid" or "hdcid")

# %%
# %matplotlib inline

from IPython.display import display

from hdcid import analysis, plots
from hdcid.notebook import finished, start
from hdcid.utils import cache_dir

# seeds, builds the demo corpus if it is missing, prints the device and the folders
S = start("03_toc", quick=QUICK, seed=SEED, data_root=DATA_ROOT, demo_scale=DEMO_SCALE, fsdd=FSDD)
NB, QUICK, DATA_ROOT, DEVICE = S.nb, S.quick, S.data_root, S.device

# %%
from hdcid.notebook import describe_configs, pretrained

# pretrained(variant, S): the tiny model from the checkpoint cache, keyed by configs and corpus, else trained now
print(describe_configs(QUICK))

# %%
from hdcid.downstream import encode_cached, load_task_data
from hdcid.toc import cosine_summary, cosine_views, toc_select

model = pretrained(VARIANT, S).model
codebooks = model.codebooks().detach().cpu()  # (L, M, D)
L, M, D = codebooks.shape
ave = load_task_data("ave", DATA_ROOT)
code_dir = cache_dir() / "codes"
train_codes = encode_cached(model, ave["train"], "video", code_dir)  # Codes: quantized (N, T, L, D)
test_codes = encode_cached(model, ave["test"], "audio", code_dir)
y_train, y_test = ave["train"].video_labels(), ave["test"].video_labels()
print(
    f"{VARIANT}: codebooks {tuple(codebooks.shape)}; AVE train video {train_codes.quantized.shape}, "
    f"test audio {test_codes.quantized.shape}"
)

# %% [markdown]
# ## The criterion per dimension

# %%
C0 = D // 2
sim, var, score = analysis.toc_terms(codebooks[0])
chosen = toc_select(codebooks[0], C0, 1, 0)
fig = plots.toc_criterion(sim, var, score, chosen, title=f"TOC criterion, level 1 (keep {C0} of {D} best)")
plots.save_figure(fig, NB, "criterion")
fig

# %% [markdown]
# Left: every dimension's similarity (mean product of two different codes) against its variance across codes, with the kept dimensions in red; right: the score `-0.7 sim + 0.3 var` sorted, so the kept dimensions are the left-most bars.

# %% [markdown]
# ## Cosine similarity of the codes before and after TOC (the original's `ave_cosine` figure)

# %%
before, after = cosine_views(codebooks[0], chosen)
fig = plots.cosine_heatmaps(before, after)
plots.save_figure(fig, NB, "cosine-heatmaps")
print({k: round(v, 3) for k, v in cosine_summary(before, after).items()})
fig

# %% [markdown]
# Each heatmap is the (M, M) cosine similarity between code vectors; the printed means show how much TOC changes the typical similarity between two different codes.

# %% [markdown]
# ## Interactive explorer
# Move the sliders: the readout lists the kept dimensions per level, the heatmap shows level 1 after selection, and the probe accuracy is a nearest-centroid classifier trained on AVE-train **video** codes and tested on AVE-test **audio** codes (cached codes, so it responds in well under a second). Budgets not divisible by `toc_max_num + toc_min_num` show a message instead of crashing.

# %%
from hdcid import widgets

explorer = widgets.toc_explorer(codebooks, train_codes, test_codes, y_train, y_test, direction="AVE video -> audio")
explorer

# %% [markdown]
# Static views of three fixed settings (so the point survives without a kernel):

# %%
for c, a, b, w_sim in [(D // 2, 1, 0, 0.7), (3 * D // 4, 3, 1, 0.7), (D // 2, 1, 0, 0.0)]:
    text, fig, acc = widgets.render_toc(explorer.state, c, a, b, w_sim)
    print(text, "\n")
    if fig is not None:
        display(fig)
print(widgets.render_toc(explorer.state, D // 2 + 1, 1, 1, 0.7)[0])
print(f"last slider callback: {explorer.seconds:.2f} s")

# %% [markdown]
# The three settings keep the best half, a 3:1 mix of best and worst dimensions, and the best half by variance alone (w_sim = 0); the last line shows the message an invalid budget produces.

# %% [markdown]
# ## Sweep: probe accuracy against kept dimensions

# %%
budgets = [D // 8, D // 4, D // 2, 3 * D // 4, D] if QUICK else list(range(D // 8, D + 1, D // 8))
sweep = analysis.toc_sweep(codebooks, train_codes.quantized, y_train, test_codes.quantized, y_test, budgets, seed=SEED)
fig = plots.sweep_plot(
    sweep, chance=100 / len(ave["train"].classes), title=f"{VARIANT}: AVE video -> audio probe vs kept dims"
)
plots.save_figure(fig, NB, "sweep")
display(fig)
sweep.pivot(index="kept", columns="method", values="accuracy").round(1)

# %% [markdown]
# Each line is one way of choosing the kept dimensions (TOC's best, TOC's worst, random); where the TOC-best line lies above the random one, the criterion finds dimensions that transfer across modalities. Notebooks 05-08 repeat the comparison with trained heads.

# %% [markdown]
# ## Summary
#
# TOC needs only the codebook; its criterion is a closed form of per-dimension mean and variance.
# The explorer makes the three knobs of the original scripts (`choose_channel`, `toc_max_num`,
# `toc_min_num`) and the hard-coded 0.7 / 0.3 weights tangible, and the sweep checks whether the
# kept dimensions actually help a cross-modal probe.

# %% [markdown]
# ## Exercises
#
# 1. Set `VARIANT = 'dcid'` and compare the sweep with H-DCID's.
# 2. Find a setting where keeping *worst* dimensions (toc_min_num > 0) helps the probe.
# 3. Check the closed form: compare `hdcid.toc.toc_scores_loop(codebooks[0][:50])` with `toc_scores`.

# %%
print(finished(S))
