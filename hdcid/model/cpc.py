"""Cross-modal contrastive predictive coding (Cross-CPC, docs/method.md §2.9).

Each modality summarises its semantic sequence up to a random step t* with a 2-layer LSTM and
predicts the NEXT step's feature with a linear head. For a target modality x and a predicting
modality y the logits are L = Y_x P_y^T (B, B) (rows = target clip, columns = predicting clip) and the
term is the mean over rows of -log_softmax(L, dim=1)[i, i]: each target picks its own clip's
prediction among the B predictions of the batch. Loss = 6 cross pairs (weight 1) + 3 self pairs
(weight 0.1), in the original's code order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hdcid.distributed import gather_batch
from hdcid.modalities import MODALITIES, SHORT

# (target x, predictor y) in the original's code order: a<-v, a<-t, v<-t, v<-a, t<-a, t<-v, then self
CROSS_PAIRS = (
    ("audio", "video"),
    ("audio", "text"),
    ("video", "text"),
    ("video", "audio"),
    ("text", "audio"),
    ("text", "video"),
)
SELF_PAIRS = (("audio", "audio"), ("video", "video"), ("text", "text"))
SELF_WEIGHT = 0.1


@dataclass
class CPCOutput:
    """loss: scalar; accuracies: 'a<-v' ... -> float in [0, 1]; terms: same keys -> scalar term;
    t_star: the context end step used."""

    loss: Tensor
    accuracies: dict[str, float]
    terms: dict[str, Tensor]
    t_star: int


def cpc_term(Y_x: Tensor, P_y: Tensor) -> Tensor:
    """term(x <- y) = mean_i -log_softmax(Y_x P_y^T, dim=1)[i, i]; Y_x, P_y (B, D) -> scalar."""
    logits = Y_x @ P_y.t()  # (B, B) rows = targets, columns = predictions
    return -torch.diagonal(F.log_softmax(logits, dim=1)).mean()


def cpc_accuracy(Y_x: Tensor, P_y: Tensor) -> float:
    """Original's log-only accuracy: for each column j, argmax over rows of softmax(L, dim=1) == j."""
    with torch.no_grad():
        probs = F.softmax(Y_x @ P_y.t(), dim=1)  # (B, B)
        hits = probs.argmax(dim=0) == torch.arange(probs.shape[1], device=probs.device)
        return float(hits.to(torch.float64).mean())


class CrossCPC(nn.Module):
    """Cross-CPC over audio, video and text semantic features.

    dim: feature width D; hidden: LSTM width; layers: LSTM depth; max_offset: t* in 1..max_offset.
    forward(z_a, z_v, z_t (B, T, D), t_star=None) -> CPCOutput; requires T >= t* + 2.
    """

    def __init__(self, dim: int, hidden: int = 256, layers: int = 2, max_offset: int = 8) -> None:
        super().__init__()
        if max_offset < 1:
            raise ValueError(f"CrossCPC max_offset must be >= 1, got {max_offset}")
        self.dim, self.hidden, self.layers, self.max_offset = dim, hidden, layers, max_offset
        self.lstm = nn.ModuleDict({m: nn.LSTM(dim, hidden, num_layers=layers, batch_first=True) for m in MODALITIES})
        self.predictor = nn.ModuleDict({m: nn.Linear(hidden, dim) for m in MODALITIES})

    def forward(self, z_a: Tensor, z_v: Tensor, z_t: Tensor, t_star: int | None = None) -> CPCOutput:
        z = {"audio": z_a, "video": z_v, "text": z_t}
        for m, x in z.items():
            if x.dim() != 3 or x.shape[-1] != self.dim or x.shape != z_a.shape:
                raise ValueError(
                    f"CrossCPC expects z_a, z_v, z_t of equal shape (B, T, {self.dim}); "
                    f"z_a is {tuple(z_a.shape)}, {m} is {tuple(x.shape)}"
                )
        B, T, _ = z_a.shape
        if t_star is None:
            t_star = 1 + int(torch.randint(self.max_offset, (1,)))  # global torch RNG
        if not 0 <= t_star <= T - 2:
            raise ValueError(f"CrossCPC t_star must be in [0, T-2] = [0, {T - 2}] for T={T}, got {t_star}")

        Y, P = {}, {}
        for m in MODALITIES:
            x = z[m]
            # zero initial states (nn.LSTM default), no packing
            out, _ = self.lstm[m](x[:, : t_star + 1])  # (B, t*+1, hidden)
            # data-parallel: every rank's clips, so negatives span the global batch (hdcid/distributed.py)
            P[m] = gather_batch(self.predictor[m](out[:, t_star]))  # (B, D) prediction of step t*+1
            Y[m] = gather_batch(x[:, t_star + 1])  # (B, D) target
        terms, acc = {}, {}
        for x, y in CROSS_PAIRS + SELF_PAIRS:
            key = f"{SHORT[x]}<-{SHORT[y]}"
            terms[key] = cpc_term(Y[x], P[y])
            acc[key] = cpc_accuracy(Y[x], P[y])
        cross = sum(terms[f"{SHORT[x]}<-{SHORT[y]}"] for x, y in CROSS_PAIRS)
        selfs = sum(terms[f"{SHORT[x]}<-{SHORT[y]}"] for x, y in SELF_PAIRS)
        return CPCOutput(cross + SELF_WEIGHT * selfs, acc, terms, t_star)
