# %% [markdown]
# ## The downstream recipe, cell by cell
#
# The pretrained encoder is frozen. Every clip is encoded once into its codes $\hat z_t$ (one per second,
# the levels concatenated for H-DCID), a small head is trained on the codes of **one** modality and
# tested on the codes of the **other**: since both modalities share one codebook, a head that learned
# "video code $k$ means *dog*" should also read audio code $k$ as *dog*. We write the head, the loss and
# one training epoch by hand and check each against `hdcid.downstream`; `run_grid` then does the rest.
#
# ### Which clips each protocol uses
# The **honest** protocol trains on train, chooses the epoch (and TOC setting) on validation clips of
# the training modality, and scores the test clips once; the **original** protocol (as published)
# picks the epoch on the very clips it reports — for AVE, the training clips themselves.

# %%
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from hdcid.downstream import FitConfig, SegmentLoss, VideoLevelHead, build_splits, fit_head, video_loss
from hdcid.downstream.metrics import video_targets
from hdcid.downstream.protocol import EvalSet, selection_split
from hdcid.utils import seed_everything

ROLES = {"train": "trains the head", "val": "picks the epoch and TOC setting",
         "test_cross": "the reported cross-modal number", "test_same": "same-modality upper bound"}
split_rows = []
for protocol in ("honest", "original"):
    for key, sp in build_splits(TASK, "v2a", data, protocol).items():
        picks = " + picks the epoch" if key == selection_split(protocol) and key != "val" else ""
        split_rows.append({"protocol": protocol, "split": key, "clips": sp.clipset.name, "modality": sp.modality,
                           "n clips": len(sp.clipset), "role": ROLES[key] + picks})
splits = {p: build_splits(TASK, "v2a", data, p) for p in ("honest", "original")}
overlap = {p: len(set(s["train"].clipset.ids) & set(s["test_cross"].clipset.ids)) for p, s in splits.items()}
assert overlap["honest"] == 0  # the honest protocol never scores a clip the head was trained on
display(Markdown(f"Direction v2a (train on video codes, test on audio codes). Test clips also used for training: "
                 f"honest {overlap['honest']}, original {overlap['original']} of {len(splits['original']['test_cross'].clipset)}."))
pd.DataFrame(split_rows)

# %% [markdown]
# ### The head
# For AVE (and UCF <-> VGGSound) the head is affine per second, max-pooled over time, affine again:
# $$h = \max_{t}\,(W_1\hat z_t + b_1),\qquad \text{logits} = W_2 h + b_2$$
# Intuition: the max over seconds lets the event be recognised wherever it happens in the clip, and a
# purely affine head can only *read* the codes, not re-learn features.

# %%
enc = models["DCID"]
tr, va = splits["honest"]["train"].clipset, splits["honest"]["val"].clipset
x_tr = torch.cat(enc.encode(tr.video, "video").quantized, -1).cpu()     # (N, T, L*D) codes, levels concatenated
x_va = torch.cat(enc.encode(va.video, "video").quantized, -1).cpu()     # the hand-written head runs on the CPU
d, K = x_tr.shape[-1], len(tr.classes)
head = VideoLevelHead(d, K)
W1, b1, W2, b2 = (p.detach() for p in (head.proj.weight, head.proj.bias, head.out.weight, head.out.bias))
mine = (x_tr[:5] @ W1.T + b1).max(dim=1).values @ W2.T + b2            # (5, K)
assert_close(mine, head(x_tr[:5]).detach())
print(f"codes {tuple(x_tr.shape)} -> logits {tuple(mine.shape)}")

# %% [markdown]
# ### The loss
# The clip's class is read off its per-second labels $Y\in\{0,1\}^{T\times(K+1)}$ (last column =
# background) as $y = \max_t \arg\max_{c<K} Y_{tc}$ (the original's rule), and the head minimises the
# cross-entropy
# $$\mathcal{L}_\text{CE} = -\frac1B\sum_b \log\frac{e^{\text{logit}_{b,y_b}}}{\sum_c e^{\text{logit}_{bc}}}$$
# The per-second tasks (06, 07) use $\mathrm{BCE}(z, Y) + \mathrm{ExpLog}$ with
# $\mathrm{ExpLog} = -\frac1R\sum_r\sum_c Y_{rc}\,\log\mathrm{softmax}(z_r)_c\,e^{-\alpha_c}$ and a learnable $\alpha_c$ (initially 0.1).

# %%
y_tr = torch.as_tensor(tr.labels[..., :K].argmax(-1).max(-1), dtype=torch.long)   # (N,)
assert torch.equal(y_tr, torch.as_tensor(video_targets(tr.labels)))
logits = head(x_tr[:16]).detach()
mine = -(logits.log_softmax(-1)[torch.arange(16), y_tr[:16]]).mean()
assert_close(mine, video_loss(logits, y_tr[:16]))

z = torch.randn(4, 10, K + 1, generator=torch.Generator().manual_seed(SEED))    # per-second logits
Y = torch.as_tensor(tr.labels[:4])                                               # (4, T, K+1)
bce = -(Y * F.logsigmoid(z) + (1 - Y) * F.logsigmoid(-z)).mean()
explog = -(Y * z.log_softmax(-1) * torch.exp(torch.tensor(-0.1))).sum(-1).mean()
assert_close(bce + explog, SegmentLoss(K + 1)(z, Y).detach())
print(f"cross-entropy of the untrained head: {float(mine):.3f} (ln K = {np.log(K):.3f})")

# %% [markdown]
# ### One epoch, written out
# Adam (learning rate $4\cdot10^{-4}$), shuffled batches of 80 clips, gradient norm clipped to 0.5, the
# learning rate halved after epochs 10, 20 and 30; after every epoch the metric on the selection split
# is recorded and the best epoch's head is kept. Here is epoch 1 by hand, on the same initial weights and
# batch order as `fit_head` (seeded by the run seed), compared with `fit_head(epochs=1)`.

# %%
fc = FitConfig(epochs=1)
seed_everything(SEED)                                               # fit_head seeds, then builds the head
params = [p.detach().clone().requires_grad_(True)
          for lin in (torch.nn.Linear(d, d), torch.nn.Linear(d, K)) for p in (lin.weight, lin.bias)]
opt = torch.optim.Adam(params, lr=fc.lr)
order = torch.randperm(len(y_tr), generator=torch.Generator().manual_seed(SEED))
epoch_loss = 0.0
for s in range(0, len(y_tr), fc.batch_size):
    b = order[s:s + fc.batch_size]
    W1, b1, W2, b2 = params
    logits = (x_tr[b] @ W1.T + b1).max(dim=1).values @ W2.T + b2
    loss = -(logits.log_softmax(-1)[torch.arange(len(b)), y_tr[b]]).mean()
    opt.zero_grad()
    loss.backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in params))          # clip the global gradient norm
    for p in params:
        p.grad.mul_(torch.clamp(fc.clip / (norm + 1e-6), max=1.0))
    opt.step()
    epoch_loss += float(loss.detach()) * len(b)

ref = fit_head("video", [x_tr], torch.as_tensor(tr.labels), {"val": EvalSet(x_va, torch.as_tensor(va.labels))},
               cfg=fc, protocol="honest", select_metric="top1", seed=SEED, device="cpu")
ref_params = [ref.head.proj.weight, ref.head.proj.bias, ref.head.out.weight, ref.head.out.bias]
for mine_p, ref_p in zip(params, ref_params):
    assert_close(mine_p.detach(), ref_p.detach(), rtol=1e-4, atol=1e-5)
assert_close(epoch_loss / len(y_tr), float(ref.history["train/loss"].iloc[0]), rtol=1e-4, atol=1e-5)
print(f"epoch 1: mean training loss {epoch_loss / len(y_tr):.4f} (mine) = {ref.history['train/loss'].iloc[0]:.4f} "
      f"(fit_head); validation top-1 {ref.history['val/top1'].iloc[0]:.1f} %")
