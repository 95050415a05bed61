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
# First we write each piece of one pretraining step by hand on small tensors — distances, MM-EMA,
# the dead-code reset, commitment, straight-through, CMCM, Cross-CPC, CLUB and the assembled loss —
# each checked against the package with `torch.testing.assert_close`. Then we pretrain the tiny DCID and H-DCID models on the demo corpus (or load them from the checkpoint
# cache) and watch the loss terms live: reconstruction, commitment, Cross-CPC, CLUB and CMCM. Then we
# follow how often the three modalities of the same second choose the same code (cross-modal code
# agreement) as training proceeds. Later notebooks reuse these cached checkpoints.
#
# **Runtime** — quick (`HDCID_QUICK=1`): ~24 s; full: ~2 min; measured on a 2-core CPU, no GPU, including pretraining both tiny models (see `docs/runtimes.json`).

# %% tags=["parameters"]
# Parameters (papermill injects overrides after this cell). Literals only.
QUICK = None  # None: read HDCID_QUICK from the environment (1 = quick mode)
SEED = 0
DATA_ROOT = None  # None: hdcid.utils.demo_root(); the AV-Digits corpus is built there if missing
DEMO_SCALE = None  # None: 0.25 in quick mode, 1.0 otherwise (used only when building the corpus)
FSDD = None  # a folder of FSDD recordings: human speech mixed into the corpus audio (build --fsdd)

# %%
# %matplotlib inline

import numpy as np
import pandas as pd
from IPython.display import display

from hdcid import analysis, plots
from hdcid.notebook import finished, start

# seeds, builds the demo corpus if it is missing, prints the device and the folders
S = start("01_pretraining", quick=QUICK, seed=SEED, data_root=DATA_ROOT, demo_scale=DEMO_SCALE, fsdd=FSDD)
NB, QUICK, DATA_ROOT, DEVICE = S.nb, S.quick, S.data_root, S.device

# %%
from hdcid.notebook import describe_configs, pretrain_set, pretrained

# pretrained(variant, S): the tiny model from the checkpoint cache, keyed by configs and corpus, else trained now
print(describe_configs(QUICK))

# %% [markdown]
# ## The method, cell by cell
#
# Before the package trains anything, we write every piece of one pretraining step by hand on small
# tensors and check with `torch.testing.assert_close` that `hdcid` computes the same numbers. From
# then on we trust the package. Notation (as in [docs/method.md](../docs/method.md)): $z_m\in\mathbb{R}^D$ is
# a semantic feature of modality $m\in\{a, v, t\}$ (audio, video, text) at one (clip, second),
# $E\in\mathbb{R}^{M\times D}$ is the unified codebook shared by all three modalities.

# %%
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from torch.testing import assert_close

from hdcid.model.quantizer import UnifiedCodebook, cmcm_loss, nearest_codes, squared_distances

MODS = ("audio", "video", "text")
PARTNERS = {"audio": ("video", "text"), "video": ("audio", "text"), "text": ("audio", "video")}
g = torch.Generator().manual_seed(SEED)
B, T, D, M = 3, 4, 2, 5  # 3 clips x 4 seconds, 2-D features, 5 codes
z = {m: torch.randn(B, T, D, generator=g) for m in MODS}  # m -> (B, T, D)
E0 = torch.randn(M, D, generator=g)  # (M, D) a codebook to quantize against
print({m: tuple(v.shape) for m, v in z.items()}, "codebook", tuple(E0.shape))

# %% [markdown]
# ### 1. Distances and the nearest code
# $$d_{nk} = \lVert z_n - e_k\rVert^2 = \lVert e_k\rVert^2 + \lVert z_n\rVert^2 - 2\,\langle z_n, e_k\rangle, \qquad k_n = \arg\min_k d_{nk}$$
# Every feature is replaced by its nearest code; the expanded form costs one matrix product for all pairs.

# %%
zf = z["audio"].reshape(-1, D)  # (N, D), N = B*T
d_mine = ((zf[:, None, :] - E0[None, :, :]) ** 2).sum(-1)  # (N, M) by broadcasting
k_mine = d_mine.argmin(dim=1)  # (N,)
assert_close(d_mine, squared_distances(zf, E0))
assert torch.equal(k_mine.reshape(B, T), nearest_codes(z["audio"], E0))
print("nearest codes of the audio features:\n", k_mine.reshape(B, T))

# %% [markdown]
# ### 2. MM-EMA: the codebook follows the features of all three modalities
# The codebook is not learned by gradients but by exponential moving averages. For each modality in
# turn ($a$, then $v$, then $t$) with one-hot assignments $H_m\in\{0,1\}^{N\times M}$:
# $$c \leftarrow \gamma c + (1-\gamma)\,\mathbf{1}^\top H_m,\qquad
#   c \leftarrow (c+\epsilon)\,\frac{\sum_k c_k}{\sum_k c_k + M\epsilon}\ \text{(Laplace smoothing)}$$
# $$W \leftarrow \gamma W + (1-\gamma)\,H_m^\top\big(0.5\,z_m + 0.25\,z_{o_1} + 0.25\,z_{o_2}\big),\qquad E = W / c$$
# where $o_1, o_2$ are the two other modalities at the same (clip, second). Intuition: a code chosen
# by an audio feature is pulled towards a mix of half that audio feature and a quarter each of the
# video and text features of the same second, so one code ends up describing all three.


# %%
def mm_ema(E, W, c, z, gamma, eps):
    """From scratch: one training call of MM-EMA. z: m -> (N, D); returns new (E, W, c)."""
    M = E.shape[0]
    k = {m: ((z[m][:, None] - E[None]) ** 2).sum(-1).argmin(1) for m in MODS}  # pre-update assignment
    for m in MODS:  # sequential a -> v -> t
        H = F.one_hot(k[m], M).to(W.dtype)  # (N, M)
        c = gamma * c + (1 - gamma) * H.sum(0)
        c = (c + eps) * c.sum() / (c.sum() + M * eps)  # Laplace
        o1, o2 = PARTNERS[m]
        W = gamma * W + (1 - gamma) * H.T @ (0.5 * z[m] + 0.25 * z[o1] + 0.25 * z[o2])
    return W / c[:, None], W, c


vq = UnifiedCodebook(n_codes=M, dim=D, decay=0.9, reset_after=10**6).train()  # tiny codebook, no reset yet
vq.embedding.copy_(E0)
vq.ema_weight.copy_(E0)
vq.ema_count.fill_(1.0)  # count 1 per code, so E = W / c
E, W, c = E0.clone(), E0.clone(), torch.ones(M)
for _call in range(3):  # three training calls
    E, W, c = mm_ema(E, W, c, {m: z[m].reshape(-1, D) for m in MODS}, gamma=0.9, eps=vq.eps)
    vq(z["audio"], z["video"], z["text"])
assert_close(E, vq.embedding)
assert_close(W, vq.ema_weight)
assert_close(c, vq.ema_count)
print("after 3 calls, mine == hdcid: codebook\n", E.round(decimals=3))

# %% [markdown]
# On a 2-D toy the same update is visible: three clusters of co-located audio / video / text
# features (one cluster per "class") and four codes starting near the origin.

# %%
toy = torch.Generator().manual_seed(SEED)
centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])  # (3, 2) one centre per class


def toy_batch(n=30):
    """n co-located (audio, video, text) triples around the three centres: m -> (n, 1, 2)."""
    cls = torch.randint(3, (n,), generator=toy)
    return {m: (centres[cls] + 0.35 * torch.randn(n, 2, generator=toy))[:, None] for m in MODS}


vq2 = UnifiedCodebook(n_codes=4, dim=2, decay=0.8, reset_after=10**6).train()
vq2.embedding.copy_(torch.tensor([[0.3, 0.1], [-0.2, 0.3], [-0.1, -0.3], [0.1, 0.0]]))
vq2.ema_weight.copy_(vq2.embedding)
vq2.ema_count.fill_(1.0)
path, batches = [vq2.codebook()], []
for _ in range(12):
    batches.append(toy_batch())
    vq2(batches[-1]["audio"], batches[-1]["video"], batches[-1]["text"])
    path.append(vq2.codebook())
fig = plots.ema_trajectories(
    torch.stack(path),
    torch.cat([b["audio"] for b in batches])[:, 0],
    title="MM-EMA on a 2-D toy: codes move to the class clusters",
)
plots.save_figure(fig, NB, "mm-ema-toy")
fig

# %%
gone = [k for k in range(path[-1].shape[0]) if path[-1][k].norm() > 10]
display(
    Markdown(
        f"Each line is one code over {len(path) - 1} training calls (circle = start, square = end); grey dots "
        f"are the features. Codes that win features walk to a cluster centre. "
        + (
            f"Code(s) {gone} won no feature, so their count $c_k$ fell to about $\\epsilon$ and $E=W/c$ threw them "
            f"out of view: dead codes, which only the reset below brings back."
            if gone
            else "Every code won features here; a code that wins none gets $c_k\\approx\\epsilon$ and $E=W/c$ throws it "
            "far away (a dead code, next section)."
        )
    )
)

# %% [markdown]
# ### 3. The dead-code reset
# A counter $u_k$ counts the training calls since code $k$ was last chosen by any modality. Codes with
# $u_k > $ `reset_after` are moved next to a random *donor* (a code used within the last
# `donor_window` calls) plus a little uniform noise:
# $$e_k \leftarrow e_{j} + \xi,\quad j \sim \mathcal{U}\{\text{donors}\},\quad \xi\sim\mathcal{U}(-\tfrac{1}{1024}, \tfrac{1}{1024})^D$$
# Intuition: a code nobody uses is wasted capacity, so it is re-planted where the data are.


# %%
def reset_dead(E, u, used, reset_after, donor_window, noise):
    """From scratch: tick counters, revive dead codes from donors (same RNG calls as hdcid)."""
    E, u = E.clone(), u + 1
    u[used] = 0
    dead = u > reset_after
    donors = (u >= 0) & (u < donor_window)
    if dead.any():
        j = torch.randint(int(donors.sum()), (int(dead.sum()),))
        xi = torch.empty(int(dead.sum()), E.shape[1]).uniform_(-noise, noise)
        E[dead] = E[donors][j] + xi
        u[dead] = 0
    return E, u


far = E0.clone()
far[4] = torch.tensor([50.0, 50.0])  # code 4 sits far from every feature
vq3 = UnifiedCodebook(
    n_codes=M, dim=D, reset_after=2, donor_window=2, reset_in_eval=True
).eval()  # eval: reset only, no EMA
vq3.embedding.copy_(far)
E, u = far.clone(), -torch.ones(M)
for call in range(4):
    used = torch.cat([nearest_codes(z[m], E).reshape(-1) for m in MODS])
    torch.manual_seed(100 + call)
    E, u = reset_dead(E, u, used, 2, 2, 1 / 1024)
    torch.manual_seed(100 + call)
    out3 = vq3(z["audio"], z["video"], z["text"])
    print(f"call {call}: counters {u.tolist()}  reset {out3.reset.nonzero().flatten().tolist()}")
assert_close(E, vq3.embedding)
assert_close(u, vq3.unactivated_count)

# %%
vq4 = UnifiedCodebook(n_codes=4, dim=2, decay=0.8, reset_after=3, donor_window=2).train()
vq4.embedding.copy_(torch.tensor([[0.3, 0.1], [-0.2, 0.3], [-0.1, -0.3], [6.0, 6.0]]))  # code 3: dead
vq4.ema_weight.copy_(vq4.embedding)
vq4.ema_count.fill_(1.0)
torch.manual_seed(SEED)
path4, wins = [vq4.codebook()], []
for b in batches:
    o = vq4(b["audio"], b["video"], b["text"])
    path4.append(vq4.codebook())
    wins.append(torch.bincount(torch.cat([o.indices[m].reshape(-1) for m in MODS]), minlength=4))
fig = plots.reset_revival(
    torch.stack(path4), torch.stack(wins), dead=3, features=torch.cat([b["audio"] for b in batches])[:, 0]
)
plots.save_figure(fig, NB, "reset-toy")
fig

# %%
first_win = next((i + 1 for i, w in enumerate(wins) if w[3] > 0), None)
display(
    Markdown(
        f"Code 3 starts far from the data and is never chosen; after `reset_after` = {vq4.reset_after} idle calls "
        f"it is re-planted next to a donor, and it wins its first feature at call {first_win} "
        f"(right: how many of the {3 * len(batches[0]['audio'])} features of each call chose each code)."
    )
)

# %% [markdown]
# ### 4. Commitment, with cross-modal terms
# $$\mathcal{L}^{c}_m = 2\beta\,\mathrm{MSE}(z_m, \mathrm{sg}[q_m]) + \tfrac{\beta}{2}\sum_{o\neq m}\mathrm{MSE}(z_m, \mathrm{sg}[q_o]),\qquad \beta = 0.25$$
# with $q_o$ the code modality $o$ chose at the same (clip, second), taken from the codebook *before*
# this call's EMA update and $\mathrm{sg}$ = stop-gradient. Intuition: each feature is pulled to its own
# code and, four times more weakly, to the codes its partners chose, which pushes the modalities to
# agree.

# %%
vq5 = UnifiedCodebook(n_codes=M, dim=D).train()
vq5.embedding.copy_(E0)
vq5.ema_weight.copy_(E0)
zg = {m: v.clone().requires_grad_(True) for m, v in z.items()}
out5 = vq5(zg["audio"], zg["video"], zg["text"])
beta = vq5.commitment
q = {m: E0[nearest_codes(z[m], E0)] for m in MODS}  # m -> (B, T, D) pre-update codes
for m in MODS:
    mine = 2 * beta * ((z[m] - q[m]) ** 2).mean() + beta / 2 * sum(((z[m] - q[o]) ** 2).mean() for o in PARTNERS[m])
    assert_close(mine, out5.commitment[m])
print({m: round(float(v.detach()), 4) for m, v in out5.commitment.items()})

# %% [markdown]
# These are the original's partners and weights (`UnifiedCodebook`'s defaults). The notebooks' tiny
# presets depart in three switches (README "Faithful vs default"; `faithful()` restores them): text
# positions are words, not seconds, so text is no same-position partner of audio and video (its share
# of the MM-EMA mass goes to the modality's own feature); the commitment to the other modality's
# code is stronger, so that the two modalities' background seconds end on one code; and in H-DCID the
# partner's feature weighs as much as the modality's own in a code's MM-EMA mass
# (`ModelConfig.ema_partner_share`), which draws the code audio uses at a second towards the video
# feature of that second and back, so neither modality keeps codes of its own:

# %%
from hdcid.config import ModelConfig

for variant in ("dcid", "hdcid"):
    tiny_cfg = ModelConfig.tiny(variant)
    vq_tiny = UnifiedCodebook.from_config(tiny_cfg)
    share = tiny_cfg.ema_partner_share
    display(
        Markdown(
            f"Tiny {variant.upper().replace('HDCID', 'H-DCID')} preset: text a same-position partner: "
            f"{tiny_cfg.text_partner}; MM-EMA mass of audio {1 - share:.2f} z_audio + {share:.2f} z_video (original "
            f"0.5 z_audio + 0.25 z_video + 0.25 z_text); weight of each other modality's code "
            f"{tiny_cfg.cross_commitment * tiny_cfg.commitment:.3f} (= {tiny_cfg.cross_commitment} x beta; original "
            f"{0.5 * tiny_cfg.commitment:.3f}), own code {2 * tiny_cfg.commitment:.3f}; partners used: "
            + ", ".join(f"{m} <- {', '.join(p) or 'none'}" for m, p in vq_tiny.partners.items())
            + "."
        )
    )

# %% [markdown]
# Where the codes start is a fourth departure. The original draws them from $\mathcal U(-1/M, 1/M)$, near
# the origin, and the EMA then drags them towards the features with a lag; in the benchmark runs of
# docs/unified-codes.md DCID's audio and H-DCID's level 2 still sat mostly on one code after the first
# epoch. `TrainConfig.data_init` instead sets every level's codebook,
# at the first training step, to k-means centres of that batch's audio and video features
# (`hdcid.model.quantizer.kmeans_codes`). The run below uses:

# %%
from hdcid.notebook import train_configs

display(
    Markdown(
        "Codebook start: "
        + "; ".join(
            f"{v.upper().replace('HDCID', 'H-DCID')} "
            + ("k-means centres of the first batch" if train_configs(v, QUICK)[1].data_init else "U(-1/M, 1/M)")
            for v in ("dcid", "hdcid")
        )
        + " (the runs behind it: docs/unified-codes.md, third and fourth rounds)."
    )
)

# %% [markdown]
# ### 5. Straight-through
# $$\hat z_m = z_m + \mathrm{sg}[q_m - z_m]\quad\Rightarrow\quad \hat z_m = q_m,\qquad \frac{\partial \hat z_m}{\partial z_m} = I$$
# The decoder sees the code, and its gradient passes through the non-differentiable argmin as if the
# quantizer were the identity.

# %%
w = torch.randn(B, T, D, generator=g)  # an arbitrary upstream gradient
zhat = zg["audio"] + (q["audio"] - zg["audio"]).detach()  # mine
assert_close(zhat, out5.quantized["audio"])  # value = the code
(w * out5.quantized["audio"]).sum().backward()
assert_close(zg["audio"].grad, w)  # gradient = identity
print(
    f"largest |value - code| = {float((out5.quantized['audio'].detach() - q['audio']).abs().max()):.1e}; gradient passed unchanged"
)

# %% [markdown]
# ### 6. CMCM: cross-modal code matching (DCID only)
# Soft assignments averaged over time, $P_m[b,k] = \frac1T\sum_t \mathrm{softmax}_k(-\sqrt{d_{(b,t)k}})$, and for a pair of modalities
# $$S_{ij} = \sum_k P_x[i,k]\log P_y[j,k] + P_y[i,k]\log P_x[j,k],\qquad
#   \mathcal{L}_{xy} = -\frac1B\sum_i \log\frac{e^{S_{ii}-s_0}}{\sum_j e^{S_{ij}-s_0}+10^{-5}},\ s_0=\min S$$
# $$\mathcal{L}_\text{cmcm} = \tfrac12(\mathcal{L}_{av} + \mathcal{L}_{at} + \mathcal{L}_{tv})$$
# Intuition: the code distribution of a clip's audio must pick out the same clip's video (and text)
# among all clips of the batch.


# %%
def soft_assign(zm, E):  # (B, T, D) -> (B, M)
    d = ((zm[:, :, None] - E) ** 2).sum(-1)  # (B, T, M)
    return torch.softmax(-d.sqrt(), dim=-1).mean(1)


def cmcm_pair(Px, Py):
    Lx, Ly = (Px + 1e-10).log(), (Py + 1e-10).log()
    S = Px @ Ly.T + Py @ Lx.T  # (B, B)
    e = (S - S.min()).exp()
    return -(e.diagonal() / (e.sum(1) + 1e-5)).log().mean()


P = {m: soft_assign(z[m], E0) for m in MODS}
mine = 0.5 * (cmcm_pair(P["audio"], P["video"]) + cmcm_pair(P["audio"], P["text"]) + cmcm_pair(P["text"], P["video"]))
assert_close(mine, cmcm_loss(z["audio"], z["video"], z["text"], E0))
assert_close(mine, out5.cmcm.detach())  # the quantizer's forward computes the same
print(f"CMCM = {float(mine):.4f}  (at initialisation about 1.5 ln B = {1.5 * np.log(B):.4f})")

# %% [markdown]
# ### 7. Cross-CPC: predict the next second of one modality from another
# Each modality summarises its semantic sequence up to a random step $t^*$ with an LSTM and predicts
# step $t^*+1$ linearly, $p_m = W_m\,\mathrm{LSTM}_m(z_{m,\le t^*})$. For target $x$ and predictor $y$ the
# logits are $L = Y_x P_y^\top\in\mathbb{R}^{B\times B}$ with $Y_x[b] = z_{x, t^*+1}$:
# $$\ell(x\leftarrow y) = -\frac1B\sum_i \log\mathrm{softmax}(L_{i,:})_i,\qquad
#   \mathcal{L}_\text{cpc} = \sum_{x\neq y}\ell(x\leftarrow y) + 0.1\sum_{x}\ell(x\leftarrow x)$$
# Intuition: the future of the audio must be predictable from the past of the video (and text), so
# the semantic features keep what the modalities share.

# %%
from hdcid.model.cpc import CrossCPC

torch.manual_seed(SEED)
Bc, Tc, Dc = 6, 6, 8
zc = {m: torch.randn(Bc, Tc, Dc, generator=g) for m in MODS}
cpc = CrossCPC(Dc, hidden=12, layers=2, max_offset=3)
t_star = 2
Y, Pr = {}, {}
for m in MODS:
    h, _ = cpc.lstm[m](zc[m][:, : t_star + 1])  # (B, t*+1, hidden)
    Pr[m] = cpc.predictor[m](h[:, t_star])  # (B, D) prediction of step t*+1
    Y[m] = zc[m][:, t_star + 1]  # (B, D) target


def nce(Yx, Py):
    L = Yx @ Py.T  # (B, B) rows = targets
    return -(L.diagonal() - L.logsumexp(dim=1)).mean()


mine = sum(nce(Y[x], Pr[y]) for x in MODS for y in MODS if x != y) + 0.1 * sum(nce(Y[x], Pr[x]) for x in MODS)
ref = cpc(zc["audio"], zc["video"], zc["text"], t_star=t_star)
assert_close(mine, ref.loss)
print(f"CPC = {float(mine):.3f}  (untrained: about 6.3 ln B = {6.3 * np.log(Bc):.3f})")

# %% [markdown]
# ### 8. CLUB: keeping the semantic code and the modality-specific feature apart
# A variational Gaussian $q(y\mid x)=\mathcal{N}(\mu(x), e^{\log\sigma^2(x)})$ (two small MLPs) is fitted
# to pairs $x=\hat z_m$ (the code), $y$ = the modality-specific feature, by maximising
# $$\log q(y\mid x) \doteq -\tfrac12\sum_d \Big[\frac{(\mu_d(x)-y_d)^2}{\sigma^2_d(x)} + \log\sigma^2_d(x)\Big]$$
# (the estimator's own optimiser minimises its negative mean over all (clip, second)).

# %%
from hdcid.model.club import CLUBSample

club = CLUBSample(x_dim=Dc, y_dim=5, hidden=16)
xc, yc = torch.randn(Bc, Tc, Dc, generator=g), torch.randn(Bc, Tc, 5, generator=g)
mu, logvar = club.p_mu(xc), club.p_logvar(xc)  # (B, T, 5) each
mine = -(-((mu - yc) ** 2) / logvar.exp() - logvar).sum(-1).mean() / 2
assert_close(mine, club.loglik_loss(xc, yc))
print(f"negative log-likelihood = {float(mine):.4f}")

# %% [markdown]
# Then the sampled CLUB upper bound on the mutual information, with one permutation $\pi$ of the
# batch giving the negatives (time-averaged as in the original):
# $$\widehat{\mathrm{MI}} = \frac1{B}\sum_b\sum_d \frac{1}{2}\Big[-\frac{\overline{(\mu-y_b)^2}}{\overline{\sigma^2}} + \frac{\overline{(\mu-y_{\pi(b)})^2}}{\overline{\sigma^2}}\Big]_d$$
# ($\overline{\cdot}$: mean over time; $\overline{\sigma^2} = \exp(\mathrm{mean}_t\log\sigma^2)$). Intuition: if the code predicts its
# own clip's specific feature better than another clip's, they share information; the main loss
# minimises this bound.

# %%
perm = torch.randperm(Bc, generator=g)
var = logvar.mean(1).exp()  # (B, 5)
pos = -((mu - yc) ** 2).mean(1) / var
neg = -((mu - yc[perm]) ** 2).mean(1) / var
mine = (pos - neg).sum(-1).mean() / 2
assert_close(mine, club.mi_est(xc, yc, perm=perm))
print(f"MI bound = {float(mine):.4f} (an untrained estimator: near 0)")

# %% [markdown]
# ### 9. One training step: the loss assembled
# $$\mathcal{L}_\text{DCID} = \sum_{m}\big(\mathcal{L}^\text{rec}_m + \mathcal{L}^c_m + \widehat{\mathrm{MI}}_m\big) + \mathcal{L}_\text{cpc} + \mathcal{L}_\text{cmcm}$$
# All weights are 1 (the $\beta$ factors and CMCM's $\tfrac12$ sit inside the terms): each term pulls the
# features its own way and one Adam step descends their plain sum. We run one real
# `Pretrainer.train_step` of the tiny DCID on 8 clips and rebuild its total from the logged terms.

# %%
import tempfile

from hdcid.notebook import train_configs
from hdcid.train import Pretrainer

mcfg, tcfg = train_configs("dcid", QUICK)
with tempfile.TemporaryDirectory() as tmp:
    trainer = Pretrainer(mcfg, tcfg, pretrain_set(S), tmp, device="cpu")
    ds = pretrain_set(S)
    batch = [torch.as_tensor(np.asarray(x[:8]), dtype=torch.float32) for x in (ds.video, ds.audio, ds.text)]
    row = trainer.train_step(*batch, epoch=0)
mine = sum(row[f"{t}_{s}"] for t in ("rec", "commit", "mi") for s in "avt") + row["cpc"] + row["cmcm"]
assert_close(torch.tensor(mine), torch.tensor(row["total"]), rtol=1e-5, atol=1e-5)
pd.Series({k: row[k] for k in row if k.split("_")[0] in ("rec", "commit", "mi", "cpc", "cmcm", "total")}).round(
    4
).to_frame("value").T

# %% [markdown]
# ## Live pretraining
# The figure below refreshes every few steps while a model trains; if the checkpoint is cached it shows the stored history instead.

# %%
from hdcid.notebook import is_cached


def live_plot(variant, every=2 if QUICK else 16):  # fewer redraws in full mode: they take CPU time from pretraining
    """A Pretrainer callback that redraws the per-term loss curves every `every` steps."""
    rows, handle = (
        [],
        display(
            plots.loss_curves(
                pd.DataFrame({"step": [0], "total": [np.nan]}), title=f"{variant}: waiting for the first step"
            ),
            display_id=True,
        ),
    )

    def callback(row):
        rows.append(row)
        if len(rows) % every == 0:
            handle.update(
                plots.loss_curves(
                    analysis.loss_terms(pd.DataFrame(rows)), title=f"{variant}: loss terms (live, step {row['step']})"
                )
            )

    return callback


results = {}
for variant in ("dcid", "hdcid"):
    cached = is_cached(variant, S)
    results[variant] = pretrained(variant, S, callback=None if cached else live_plot(variant))
    print(
        variant,
        "history:",
        results[variant].history.shape,
        "| checkpoints:",
        [p.name for p in results[variant].checkpoints],
    )

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
    print(
        f"{name:15s} 3-way batch agreement: first step {df['agreement'].iloc[0]:.3f} -> last step {df['agreement'].iloc[-1]:.3f}"
    )

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
per_epoch = {
    "DCID": analysis.agreement_over_epochs(results["dcid"].checkpoints, ave_test),
    "H-DCID": analysis.agreement_over_epochs(results["hdcid"].checkpoints, ave_test),
}
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
display(
    Markdown(
        "Both models were trained (or loaded) through the shared checkpoint cache, keyed by their configs. "
        f"On {len(ave_test)} held-out AVE test clips (foreground seconds, {'quick' if QUICK else 'full'} mode):\n\n"
        + "\n".join(f"* {c['sentence']}" for c in claims)
        + f'\n\n("share codes" means a same-second agreement of at least {analysis.unified.SHARED_AT:.1f}.)'
    )
)

# %% [markdown]
# ## Exercises
#
# 1. Retrain DCID with `ModelConfig.tiny('dcid').faithful()` (no per-modality centring, the original's reset bookkeeping, a new cache key): what happens to the held-out audio-video agreement?
# 2. Set `ModelConfig.tiny('dcid', commitment=1.0)` and compare the commitment curve.
# 3. Use `TrainConfig.faithful()` for H-DCID (6 encoder forwards per step) and compare the number of code resets in notebook 02.

# %%
print(finished(S))
