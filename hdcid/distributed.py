"""Data-parallel building blocks: the batch-wide operations of a training step over all ranks.

A data-parallel step (hdcid/train_ddp.py) splits the global batch of B clips into one contiguous
shard per rank and runs inside `sharded(sizes)`. There the model's batch-wide operations call:

* `batch_mean(x)`   x: a mean over this rank's clips -> the mean over the global batch, equal on
                    every rank, differentiable (an all-reduce of x * B_r / B whose backward is an
                    all-reduce of the gradient). Reconstruction, commitment, CLUB likelihood and
                    bound, semantic centring statistics, agreement diagnostics.
* `gather_batch(x)` x (B_r, ...) -> (B, ...) every rank's rows in rank order (the single-process
                    batch order), differentiable; ranks may hold different B_r. CPC negatives,
                    CMCM, CLUB negative pairs.
* `local_rows(x)`   (B, ...) -> this rank's rows (B_r, ...). A CLUB permutation drawn over B.
* `sum_over_ranks(x)` / `codes_used_anywhere(k, M)`: no-grad sums for the codebook's MM-EMA
                    statistics and dead-code counters, so every rank holds the same codebook.

Outside `sharded(...)` (no process group, or a single-process `Pretrainer`) every helper returns
its input unchanged and issues no collective: the single-process step is bitwise what it was.
`RankStream` keeps a rank-local RNG stream for dropout while every other draw (CPC's t*, CLUB
permutations, dead-code donors and noise) comes from the default generators, identical on all
ranks. Depends only on torch (the model imports it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class Shard:
    """This rank's part of the global batch: sizes[r] = clips of rank r (rank order = batch order)."""

    rank: int
    sizes: tuple[int, ...]
    group: Any = None  # process group; None = the default (WORLD) group

    @property
    def world(self) -> int:
        return len(self.sizes)

    @property
    def size(self) -> int:
        return self.sizes[self.rank]

    @property
    def total(self) -> int:
        return sum(self.sizes)

    @property
    def offset(self) -> int:
        return sum(self.sizes[: self.rank])


_ACTIVE: Shard | None = None


def active_shard() -> Shard | None:
    """The shard of the running data-parallel step, None outside one."""
    return _ACTIVE


@contextlib.contextmanager
def sharded(sizes: tuple[int, ...] | list[int], group: Any = None) -> Iterator[Shard]:
    """Run a training step as this rank's shard of a global batch; sizes: clips per rank (each >= 1)."""
    global _ACTIVE
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("hdcid.distributed.sharded needs an initialised torch.distributed process group")
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != dist.get_world_size(group) or min(sizes) < 1:
        raise ValueError(
            f"sharded: need one batch size >= 1 per rank ({dist.get_world_size(group)} ranks), got {sizes}; "
            "a global batch must hold at least one clip per rank"
        )
    previous, _ACTIVE = _ACTIVE, Shard(dist.get_rank(group), sizes, group)
    try:
        yield _ACTIVE
    finally:
        _ACTIVE = previous


def shard_sizes(n: int, world: int) -> list[int]:
    """Split a global batch of n clips into `world` contiguous shards (sizes differ by at most 1)."""
    return [n // world + (r < n % world) for r in range(world)]


def all_batch_sizes(local: int, device: torch.device | None = None, group: Any = None) -> list[int]:
    """Every rank's local batch size (one small all-gather; NCCL needs `device`, this rank's GPU)."""
    t = torch.tensor([local], dtype=torch.long)
    if dist.get_backend(group) == "nccl":
        t = t.to(device if device is not None else torch.device("cuda", torch.cuda.current_device()))
    out = [torch.zeros_like(t) for _ in range(dist.get_world_size(group))]
    dist.all_gather(out, t, group=group)
    return [int(x) for x in out]


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; the gradient of every rank's input is the sum of every rank's output gradient."""

    @staticmethod
    def forward(ctx, x: Tensor, group: Any) -> Tensor:
        ctx.group = group
        y = x.detach().clone().contiguous()
        dist.all_reduce(y, group=group)
        return y

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        g = grad.detach().clone().contiguous()
        dist.all_reduce(g, group=ctx.group)
        return g, None


class _GatherRows(torch.autograd.Function):
    """(B_r, ...) per rank -> (B, ...) in rank order; backward: summed gradient rows of this rank."""

    @staticmethod
    def forward(ctx, x: Tensor, shard: Shard) -> Tensor:
        ctx.shard = shard
        n = max(shard.sizes)
        x = x.detach().contiguous()
        padded = x.new_zeros((n, *x.shape[1:]))  # all_gather needs equal shapes
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in shard.sizes]
        dist.all_gather(parts, padded, group=shard.group)
        return torch.cat([p[:s] for p, s in zip(parts, shard.sizes)])  # (B, ...)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        sh = ctx.shard
        g = grad.detach().clone().contiguous()  # (B, ...) this rank's loss gradient
        dist.all_reduce(g, group=sh.group)  # every rank's loss reads these rows
        return g[sh.offset : sh.offset + sh.size], None


def batch_mean(x: Tensor) -> Tensor:
    """x: a mean over this rank's clips (each clip weighted equally) -> the global-batch mean (same on
    every rank, differentiable). Identity outside `sharded`."""
    sh = _ACTIVE
    if sh is None:
        return x
    return _AllReduceSum.apply(x * (sh.size / sh.total), sh.group)


def gather_batch(x: Tensor) -> Tensor:
    """This rank's rows x (B_r, ...) -> the global batch (B, ...), differentiable. Identity outside `sharded`."""
    sh = _ACTIVE
    if sh is None:
        return x
    return _GatherRows.apply(x, sh)


def local_rows(x: Tensor) -> Tensor:
    """Rows of the global batch (B, ...) -> this rank's rows (B_r, ...). Identity outside `sharded`."""
    sh = _ACTIVE
    if sh is None:
        return x
    return x[sh.offset : sh.offset + sh.size]


def sum_over_ranks(*xs: Tensor) -> tuple[Tensor, ...]:
    """No-grad sums over ranks of tensors of one dtype and device (one collective). Identity outside `sharded`."""
    sh = _ACTIVE
    if sh is None:
        return xs
    flat = torch.cat([x.detach().reshape(-1) for x in xs])
    dist.all_reduce(flat, group=sh.group)
    out, i = [], 0
    for x in xs:
        out.append(flat[i : i + x.numel()].reshape(x.shape))
        i += x.numel()
    return tuple(out)


def codes_used_anywhere(used: Tensor, n_codes: int) -> Tensor:
    """Code indices used on this rank (N,) -> the distinct codes used on any rank. Identity outside `sharded`."""
    if _ACTIVE is None:
        return used
    mask = torch.zeros(n_codes, dtype=torch.long, device=used.device)
    mask.index_fill_(0, used, 1)
    (mask,) = sum_over_ranks(mask)
    return torch.nonzero(mask).reshape(-1)


class RankStream:
    """A rank-local RNG stream (CPU and, on CUDA, this rank's device), swapped in by `with stream:`.

    The default generators stay identical on all ranks (same seed, same draws); only what runs inside
    `with stream:` (dropout) draws from this stream, so dropout masks differ between ranks without
    making the shared draws diverge. `reseed(seed)` restarts it (e.g. per epoch, for exact resume)."""

    def __init__(self, device: torch.device, seed: int) -> None:
        self.device = device
        self._saved: tuple | None = None
        self.reseed(seed)

    def _capture(self) -> tuple:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _restore(self, state: tuple) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.device)

    def reseed(self, seed: int) -> None:
        outer = self._capture()
        torch.manual_seed(seed)
        if self.device.type == "cuda":
            with torch.cuda.device(self.device):
                torch.cuda.manual_seed(seed)
        self.state = self._capture()
        self._restore(outer)

    def __enter__(self) -> RankStream:
        self._saved = self._capture()
        self._restore(self.state)
        return self

    def __exit__(self, *exc: object) -> None:
        self.state = self._capture()
        self._restore(self._saved)
        self._saved = None
