"""CLUB mutual-information upper bound between quantized semantic and specific features (docs/method.md §2.8).

A variational Gaussian q(y | x) = N(mu(x), exp(logvar(x))) is fitted per time step by maximising
its (unnormalised) log-likelihood (`loglik_loss`, minimised by the estimator's own optimiser on
detached features); the sampled, time-averaged upper bound `mi_est` is added to the main loss and
sends gradients into both x (through the straight-through codes) and y.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hdcid.distributed import batch_mean, gather_batch, local_rows


def _mlp(x_dim: int, hidden: int, y_dim: int) -> list[nn.Module]:
    return [
        nn.Linear(x_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, y_dim),
    ]


class CLUBSample(nn.Module):
    """Sampled CLUB estimator; `hidden` is the MLP width (the original's hidden_size // 2).

    p_mu:     Lin(x, h) ReLU Lin(h, h) ReLU Lin(h, h) ReLU Lin(h, y)
    p_logvar: the same followed by tanh (log-variance in (-1, 1)).
    Inputs x (B, T, x_dim), y (B, T, y_dim).
    """

    def __init__(self, x_dim: int, y_dim: int, hidden: int) -> None:
        super().__init__()
        self.x_dim, self.y_dim, self.hidden = x_dim, y_dim, hidden
        self.p_mu = nn.Sequential(*_mlp(x_dim, hidden, y_dim))
        self.p_logvar = nn.Sequential(*_mlp(x_dim, hidden, y_dim), nn.Tanh())

    def _check(self, x: Tensor, y: Tensor) -> None:
        if (
            x.dim() != 3
            or y.dim() != 3
            or x.shape[-1] != self.x_dim
            or y.shape[-1] != self.y_dim
            or x.shape[:2] != y.shape[:2]
        ):
            raise ValueError(
                f"CLUBSample expects x (B, T, {self.x_dim}) and y (B, T, {self.y_dim}) with "
                f"equal B, T; got x {tuple(x.shape)} and y {tuple(y.shape)}"
            )

    def mu_logvar(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, x_dim) -> mu (B, T, y_dim), logvar (B, T, y_dim)."""
        return self.p_mu(x), self.p_logvar(x)

    def loglik_loss(self, x: Tensor, y: Tensor) -> Tensor:
        """Estimator loss -(1/N) sum_{b,t} sum_d [-(mu - y)^2 / exp(logvar) - logvar] / 2, N = B T."""
        self._check(x, y)
        mu, logvar = self.mu_logvar(x)  # (B, T, y_dim)
        ll = (-((mu - y) ** 2) / logvar.exp() - logvar).sum(dim=-1)  # (B, T)
        return batch_mean(-ll.mean() / 2)  # data-parallel: over the global batch

    def mi_est(self, x: Tensor, y: Tensor, perm: Tensor | None = None) -> Tensor:
        """Sampled, time-averaged CLUB bound (1/B) sum_b sum_d (pos - neg) / 2 (docs/method.md §2.8).

        pos[b,d] = -mean_t (mu - y)^2 / exp(mean_t logvar); neg uses y[perm[b]] with perm a
        permutation of the batch (torch.randperm from the global RNG unless given; fixed points allowed).
        Data-parallel (hdcid/distributed.py): perm permutes the global batch, y is gathered from every
        rank and each rank reads its own rows of perm, so the bound equals the single-process one.
        """
        self._check(x, y)
        pool = gather_batch(y)  # (B, T, y_dim): y itself in a single process
        B = pool.shape[0]
        if perm is None:
            perm = torch.randperm(B, device=x.device)
        elif perm.shape != (B,):
            raise ValueError(f"CLUBSample.mi_est perm must have shape ({B},), got {tuple(perm.shape)}")
        mu, logvar = self.mu_logvar(x)  # (B, T, y_dim)
        var = logvar.mean(dim=1).exp()  # (B, y_dim)
        pos = -((mu - y) ** 2).mean(dim=1) / var  # (B, y_dim)
        neg = -((mu - pool[local_rows(perm)]) ** 2).mean(dim=1) / var  # (B, y_dim)
        return batch_mean((pos.sum(dim=-1) - neg.sum(dim=-1)).mean() / 2)
