"""Data-parallel pretraining: `torch.distributed` DDP (gloo on CPU, NCCL on GPU), launched with torchrun.

    torchrun --standalone --nproc_per_node=4 -m hdcid.train_ddp --data-root /big/disk/hdcid_data \\
        --variant hdcid --preset paper --batch-size 80 --out checkpoints/ddp-hdcid

`DistributedPretrainer` is a `Pretrainer` (hdcid/train.py) whose global batch (`TrainConfig.batch_size`
clips, the same shuffled order on every rank) is split into one contiguous shard per rank. A step
equals the single-process step on the global batch (docs/method.md §6, "Data-parallel pretraining"):

* gradients: the main modules (text LSTM, encoder, CPCs, decoder) and the CLUB estimators are each
  wrapped in `DistributedDataParallel`, which averages gradients over ranks during backward; every
  loss term is the global-batch value on every rank (hdcid/distributed.py: means are all-reduced,
  CPC / CMCM / CLUB negatives use features gathered from every rank, with gradient), so the averaged
  gradient is the full-batch gradient and `clip_grad_norm_` per module acts on it;
* codebook: the MM-EMA counts and sums and the dead-code "used" sets are summed over ranks before
  the update, so every rank holds the same codebook; donors and noise of a reset, CPC's t* and CLUB's
  permutations (over the global batch, then sliced) come from the default RNG, identical on all ranks;
* dropout: a rank-local RNG stream (`RankStream`, reseeded per epoch), so masks differ between ranks;
  this is the one part that is not bitwise the single-process step (tests switch dropout off);
* checkpoints: only rank 0 writes (atomically), every rank resumes from the same file (a folder all
  ranks can read). Per-epoch code counts are summed over ranks; the log rows are global values.
"""

from __future__ import annotations

import argparse
import inspect
import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from hdcid.config import ModelConfig, TrainConfig
from hdcid.distributed import RankStream, all_batch_sizes, shard_sizes, sharded
from hdcid.modalities import CLUB_ORDER, MODALITIES
from hdcid.model.blocks import ITRM
from hdcid.model.checkpoint import load_checkpoint
from hdcid.model.network import EncoderOutputs
from hdcid.train import Pretrainer, PretrainResult

# torch 2.13 renamed DDP's `broadcast_buffers` to `forward_sync_buffers` (pyproject allows torch >= 2.4)
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


class _Replica(nn.Module):
    """The parameters one DDP instance averages (`parts`) and the forward it runs (`fn`)."""

    def __init__(self, parts: list[nn.Module], fn: Any) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self._fn = fn

    def forward(self, *args: Any) -> Any:
        return self._fn(*args)


def default_device() -> torch.device:
    """cuda:LOCAL_RANK when CUDA is available (torchrun sets LOCAL_RANK), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


class DistributedPretrainer(Pretrainer):
    """`Pretrainer` for one rank of an initialised process group; same arguments and `fit()`.

    `train_step(video, audio, words, epoch, ...)` takes this rank's shard of a global batch (shards
    may differ in size by any amount, each >= 1 clip); `fit()` shards every batch itself."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        dataset: Any,
        out_dir: str | Path,
        device: str | torch.device | None = None,
    ) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError(
                "DistributedPretrainer needs torch.distributed initialised "
                "(launch with `torchrun --nproc_per_node=N -m hdcid.train_ddp ...`)"
            )
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        _check_batches(len(dataset), train_cfg, self.world)
        super().__init__(model_cfg, train_cfg, dataset, out_dir, device=device or default_device())
        # device_ids=None: DDP leaves the step's inputs where they are; find_unused_parameters: level 2
        # trains only from level2_start_epoch, the original's dead modules never, CLUB levels by step.
        # The codebook and centring buffers are kept equal by summed statistics, never broadcast.
        ddp = dict(device_ids=None, find_unused_parameters=True, **_NO_BUFFER_SYNC)
        self._main_ddp = DistributedDataParallel(
            _Replica(self.model.main_modules(), partial(Pretrainer._step_terms, self)), **ddp
        )
        self._club_ddp = DistributedDataParallel(_Replica([self.model.club], self._club_losses), **ddp)
        self._dropout_rng = RankStream(self.device, self._stream_seed(0))
        self._stream_epoch = 0

    # ------------------------------------------------------------------ RNG streams
    def _stream_seed(self, epoch: int) -> int:
        return (self.train_cfg.seed * 1_000_003 + epoch) * 65_537 + self.rank + 1

    def _enter_rank_stream(self, module: nn.Module, args: Any) -> None:
        self._dropout_rng.__enter__()

    def _leave_rank_stream(self, module: nn.Module, args: Any, output: Any) -> None:
        self._dropout_rng.__exit__()

    def _rank_stream_hooks(self) -> list:
        """Swap the rank-local stream in around every ITRM (the self-attention layers carry every
        dropout of the model); registered for one step only, so the model never keeps them."""
        handles = []
        for mod in self.model.modules():
            if isinstance(mod, ITRM):
                handles.append(mod.register_forward_pre_hook(self._enter_rank_stream))
                handles.append(mod.register_forward_hook(self._leave_rank_stream))
        return handles

    # ------------------------------------------------------------------ one step
    def _batch(self, idx: np.ndarray) -> tuple[torch.Tensor, ...]:
        """This rank's contiguous shard of the global batch `idx`."""
        sizes = shard_sizes(len(idx), self.world)
        start = sum(sizes[: self.rank])
        return super()._batch(idx[start : start + sizes[self.rank]])

    def train_step(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        words: torch.Tensor,
        epoch: int,
        counts: list[dict] | None = None,
        resets: list | None = None,
    ) -> dict[str, float]:
        """One optimizer step on this rank's shard; returns the logged row (global-batch values, equal
        on every rank). Code counts added to `counts` are this rank's (summed over ranks per epoch)."""
        if epoch != self._stream_epoch:
            self._dropout_rng.reseed(self._stream_seed(epoch))
            self._stream_epoch = epoch
        hooks = self._rank_stream_hooks()
        try:
            with sharded(all_batch_sizes(len(video), video.device)):
                return super().train_step(video, audio, words, epoch, counts, resets)
        finally:
            for h in hooks:
                h.remove()

    def _step_terms(self, video, audio, words, level2, counts, resets) -> dict[str, torch.Tensor]:
        return self._main_ddp(video, audio, words, level2, counts, resets)  # Pretrainer._step_terms

    def _club_losses(self, enc: EncoderOutputs, levels: list[int]) -> dict[int, list[torch.Tensor]]:
        """CLUB likelihood losses (global-batch means) of every active estimator on detached pairs."""
        out = {}
        for lv in levels:
            pairs = self.model.club_pairs(enc, lv)
            out[lv] = [self.model.club[lv][m].loglik_loss(*(t.detach() for t in pairs[m])) for m in CLUB_ORDER]
        return out

    def _club_step(self, enc: EncoderOutputs, levels: list[int]) -> dict[int, torch.Tensor]:
        """One likelihood step of every active CLUB estimator: the estimators are independent, so one
        DDP backward of their summed losses gives each its own (rank-averaged) gradient."""
        losses = self._club_ddp(enc, levels)
        opts = [self.club_opts[(lv, m)] for lv in levels for m in CLUB_ORDER]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        torch.stack([x for lv in levels for x in losses[lv]]).sum().backward()
        for opt in opts:
            opt.step()
        return {lv: sum(x.detach() for x in losses[lv]) for lv in levels}

    # ------------------------------------------------------------------ checkpoints and the loop
    def fit(self, progress: bool = True, callback: Any = None, stop_after_epoch: int | None = None) -> PretrainResult:
        """As `Pretrainer.fit` on every rank (progress bar on rank 0 only)."""
        return super().fit(progress=progress and self.rank == 0, callback=callback, stop_after_epoch=stop_after_epoch)

    def _save(self, epoch: int) -> Path:
        """Sum the epoch's code counts over ranks; rank 0 writes the checkpoint; every rank waits."""
        usage = self.usage[-1]
        stacked = torch.stack([c[m] for c in usage["counts"] for m in MODALITIES]).to(self.device)  # (L*3, M)
        dist.all_reduce(stacked)
        flat = iter(stacked.cpu())
        usage["counts"] = [{m: next(flat) for m in MODALITIES} for _ in usage["counts"]]
        path = super()._save(epoch) if self.rank == 0 else self.out_dir / f"epoch-{epoch}.pt"
        dist.barrier()
        return path

    def _resume(self, path: Path) -> None:
        super()._resume(path)
        if self.device.type == "cuda":  # the shared stream: rank 0's device generator (cuda:0 under torchrun)
            saved = load_checkpoint(path)["rng_state"].get("cuda")
            if saved:
                torch.cuda.set_rng_state(saved[0].cpu(), self.device)


def _check_batches(n: int, tc: TrainConfig, world: int) -> None:
    """Every global batch must give each rank at least one clip."""
    if tc.batch_size < world:
        raise ValueError(f"TrainConfig.batch_size ({tc.batch_size}) must be >= the number of ranks ({world})")
    n_batches = -(-n // tc.batch_size)
    last = n - (n_batches - 1) * tc.batch_size
    if last < world and (tc.max_steps_per_epoch is None or tc.max_steps_per_epoch >= n_batches):
        raise ValueError(
            f"{n} clips in batches of {tc.batch_size} leave a last batch of {last} clip(s) for {world} ranks; "
            "choose a batch_size for which the last batch has at least one clip per rank"
        )


def main(argv: list[str] | None = None) -> None:
    """`torchrun --nproc_per_node=N -m hdcid.train_ddp --data-root DIR --out DIR [...]`."""
    p = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=N -m hdcid.train_ddp", description=__doc__.split("\n")[0]
    )
    p.add_argument("--data-root", required=True, help="folder holding vggsound40k/ (hdcid.data.read_pretrain)")
    p.add_argument("--text-features", help="PrecomputedText .npz of the prompts (default: the demo's MiniLM file)")
    p.add_argument("--variant", choices=["dcid", "hdcid"], default="dcid")
    p.add_argument("--preset", choices=["paper", "tiny"], default="paper")
    p.add_argument("--faithful", action="store_true", help="the original's float64 and 6 H-DCID forwards")
    p.add_argument("--batch-size", type=int, help="GLOBAL batch (split over ranks); default: the preset's")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps-per-epoch", type=int)
    p.add_argument("--backend", choices=["gloo", "nccl"], help="default: nccl with CUDA, else gloo")
    p.add_argument("--out", required=True, help="checkpoint folder (resumed from if it holds checkpoints)")
    a = p.parse_args(argv)

    from hdcid.data import read_pretrain  # data layer: only the entry point needs it
    from hdcid.data.text import PrecomputedText

    device = default_device()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(a.backend or ("nccl" if device.type == "cuda" else "gloo"))
    try:
        mc = getattr(ModelConfig, a.preset)(a.variant)
        over = {k: v for k, v in [("batch_size", a.batch_size), ("epochs", a.epochs)] if v is not None}
        if a.max_steps_per_epoch is not None:
            over["max_steps_per_epoch"] = a.max_steps_per_epoch
        tc = getattr(TrainConfig, a.preset)(a.variant, **over)
        if a.faithful:
            mc, tc = mc.faithful(), tc.faithful()
        data = read_pretrain(a.data_root, PrecomputedText(a.text_features) if a.text_features else None)
        result = DistributedPretrainer(mc, tc, data, a.out, device=device).fit()
        if dist.get_rank() == 0:
            last = result.history.iloc[-1]
            print(
                f"{len(result.history)} steps on {dist.get_world_size()} ranks; last total {last['total']:.4f}; "
                f"checkpoints in {a.out}"
            )
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
