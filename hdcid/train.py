"""Pretraining loop of DCID (docs/method.md §2.10) and H-DCID (§3.3-3.4), resumable exactly.

    result = Pretrainer(ModelConfig.tiny("dcid"), TrainConfig.tiny("dcid"), clipset, "ckpt/dcid").fit()
    result.history.plot(x="step", y=["total", "cpc"])          # one row per optimizer step

One step: BiLSTM text features; `encoder_forwards_per_step - 1` extra no-grad encoder forwards
(original H-DCID: 5, each followed by one CLUB step on fresh features; they also tick the codebook
EMA and reset counters); the main forward; the remaining CLUB inner steps on its detached features
(default: all `club_steps` reuse the one forward, as DCID); CLUB MI bounds on the non-detached
pairs; loss L1 (+ level2_weight * L2 from level2_start_epoch for H-DCID); backward; per-module
`clip_grad_norm_`; main Adam step. A non-finite loss term or gradient norm stops training before
the optimizer step with `NonFiniteTrainingError` (step, term, batch clip ids); no checkpoint is
written from that state. Every epoch writes `out_dir/epoch-{k}.pt` (k 0-based) with model,
optimizers, RNG states, history and usage; `fit()` on a folder with checkpoints resumes from the
latest (only `epochs` may differ, and only grow: a finished run can be extended). Shown in
notebooks 01_pretraining and 04_hierarchical_alignment. The checks before a run and a step are
`hdcid.train_checks`; the run folder (its checkpoints, resume and load-or-train tests) is
`hdcid.train_folder`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from hdcid.config import ModelConfig, TrainConfig
from hdcid.distributed import batch_mean
from hdcid.modalities import CLUB_ORDER, MODALITIES, PAIRS, SHORT
from hdcid.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from hdcid.model.network import CrossModalModel, EncoderOutputs, TrainOutputs
from hdcid.train_checks import NonFiniteTrainingError, check_dataset, module_names, stop_if_nonfinite
from hdcid.train_folder import list_checkpoints, resume_differences, same_run
from hdcid.utils import get_device, get_rng_state, seed_everything, set_rng_state

__all__ = ["Pretrainer", "PretrainResult", "load_or_pretrain", "NonFiniteTrainingError", "list_checkpoints"]


@dataclass
class PretrainResult:
    """model (eval mode); history: one row per optimizer step (epoch, step, total and every loss
    term); usage: one dict per epoch {'epoch', 'counts': [ {m: (M,) int64} per level ],
    'resets': [(M,) int64 per level] (how often each code was reset)}; checkpoints: epoch files."""

    model: CrossModalModel
    history: pd.DataFrame
    usage: list[dict] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)


def _level_terms(
    terms: dict[str, torch.Tensor],
    out: TrainOutputs,
    lv: int,
    mi: dict[str, torch.Tensor],
    ll: dict[int, torch.Tensor],
    cmcm_weight: float = 1.0,
) -> torch.Tensor:
    """Add level `lv`'s logged terms to `terms` (suffix "" for level 1, "2" for level 2) and return
    its loss: sum over modalities of reconstruction + commitment + CLUB MI, plus CPC and
    `cmcm_weight` x CMCM (original: weight 1; the logged `cmcm` term is unweighted)."""
    lo = out.enc.levels[lv]
    sfx = "" if lv == 0 else str(lv + 1)
    parts = []
    for m in MODALITIES:
        s = SHORT[m]
        terms[f"rec{sfx}_{s}"] = out.rec_loss[lv][m]
        terms[f"commit{sfx}_{s}"] = lo.quant.commitment[m]
        terms[f"mi{sfx}_{s}"] = mi[m]
        parts += [out.rec_loss[lv][m], lo.quant.commitment[m], mi[m]]
    terms[f"cpc{sfx}"] = out.cpc[lv].loss
    terms[f"cmcm{sfx}"] = lo.quant.cmcm
    loss = sum(parts) + out.cpc[lv].loss + cmcm_weight * lo.quant.cmcm  # x 1.0 is exact: the original's loss
    terms[f"loss{sfx or 1}"] = loss
    terms[f"agreement{sfx}"] = lo.quant.agreement.to(loss.dtype)
    k = lo.indices
    for x, y in PAIRS:  # pairwise agreement, (B,T) (data-parallel: over the global batch)
        terms[f"agree{sfx}_{SHORT[x]}{SHORT[y]}"] = batch_mean((k[x] == k[y]).to(loss.dtype).mean())
    terms[f"club_ll{sfx}"] = ll.get(lv, torch.zeros((), device=loss.device)).to(loss.dtype)
    return loss


def adam_kernel(device: torch.device) -> dict[str, bool]:
    """Adam's implementation for `device`: {"foreach": True} on the CPU (one multi-tensor kernel per
    operation, bit-identical to the per-tensor loop); {"fused": True} on CUDA, where the other
    implementations read every parameter's step counter with `.item()`, one host-device
    synchronisation each (1,532 per tiny H-DCID step with its CLUB optimizers), while the fused
    kernel keeps the counters on the device."""
    return {"fused": True} if torch.device(device).type == "cuda" else {"foreach": True}


class Pretrainer:
    """Pretrain a `CrossModalModel` on a `ClipSet` with video, audio and text (word) features."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        dataset: Any,
        out_dir: str | Path,
        device: str | torch.device | None = None,
    ) -> None:
        check_dataset(dataset, model_cfg)
        self.model_cfg, self.train_cfg, self.dataset = model_cfg, train_cfg, dataset
        self.out_dir = Path(out_dir)
        self.device = get_device(device)
        self.dtype = train_cfg.torch_dtype
        seed_everything(train_cfg.seed)
        self.model = CrossModalModel(model_cfg).to(device=self.device, dtype=self.dtype)
        main_params = [p for mod in self.model.main_modules() for p in mod.parameters()]
        kind = adam_kernel(self.device)
        self.main_opt = torch.optim.Adam(main_params, lr=train_cfg.lr, **kind)
        self.club_opts = {
            (lv, m): torch.optim.Adam(self.model.club[lv][m].parameters(), lr=train_cfg.mi_lr, **kind)
            for lv in range(model_cfg.n_levels)
            for m in CLUB_ORDER
        }
        self.rows: list[dict] = []
        self.usage: list[dict] = []
        self.step = 0
        self.next_epoch = 0

    # ------------------------------------------------------------------ checkpoints
    def _optimizers(self) -> dict:
        opts = {"main": self.main_opt}
        opts.update({f"club{lv}_{m}": o for (lv, m), o in self.club_opts.items()})
        return opts

    def _save(self, epoch: int) -> Path:
        return save_checkpoint(
            self.out_dir / f"epoch-{epoch}.pt",
            self.model,
            train_cfg=self.train_cfg,
            optimizers=self._optimizers(),
            step=self.step,
            epoch=epoch,
            history=self.rows,
            rng_state=get_rng_state(),
            extra={"usage": self.usage, "n_clips": len(self.dataset)},
        )

    def _resume(self, path: Path) -> None:
        ck = load_checkpoint(path)
        diff = resume_differences(ck, self.model_cfg, self.train_cfg)
        if diff:
            raise CheckpointError(
                f"{path}: was written with other settings; use another out_dir or delete it "
                f"(only `epochs` may grow on resume). Differences (stored -> wanted):\n  " + "\n  ".join(diff)
            )
        self.model.load_state_dict(ck["model_state"])
        for name, opt in self._optimizers().items():
            opt.load_state_dict(ck["optimizers"][name])
        self.rows = ck["history"].to_dict("records")
        self.usage = list(ck["extra"].get("usage", []))
        self.step, self.next_epoch = int(ck["step"]), int(ck["epoch"]) + 1
        set_rng_state(ck["rng_state"])

    # ------------------------------------------------------------------ one step
    def _batch(self, idx: np.ndarray) -> tuple[torch.Tensor, ...]:
        ds = self.dataset
        return tuple(
            torch.as_tensor(np.asarray(x[idx])).to(self.device, self.dtype) for x in (ds.video, ds.audio, ds.text)
        )

    def _club_step(self, enc: EncoderOutputs, levels: list[int]) -> dict[int, torch.Tensor]:
        """One likelihood step of every active CLUB estimator on detached pairs (video, text, audio)."""
        ll = {}
        for lv in levels:
            pairs = self.model.club_pairs(enc, lv)
            total = 0.0
            for m in CLUB_ORDER:
                x, y = pairs[m]
                opt = self.club_opts[(lv, m)]
                opt.zero_grad(set_to_none=True)
                loss = self.model.club[lv][m].loglik_loss(x.detach(), y.detach())
                loss.backward()
                opt.step()
                total = total + loss.detach()
            ll[lv] = total
        return ll

    def train_step(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        words: torch.Tensor,
        epoch: int,
        counts: list[dict] | None = None,
        resets: list | None = None,
    ) -> dict[str, float]:
        """One optimizer step on a batch; returns the logged row (floats).

        1. forwards and CLUB likelihood steps (`_forwards`); 2. loss terms per level and the total
        (`_loss_terms`); 3. backward, per-module clipping, the one host sync, a non-finite check and
        the optimizer step (`_optimizer_step`)."""
        level2 = self.model_cfg.n_levels > 1 and epoch >= self.train_cfg.level2_start_epoch
        terms = self._step_terms(video, audio, words, level2, counts, resets)
        return {**self._optimizer_step(terms, epoch), "level2": float(level2)}

    def _step_terms(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        words: torch.Tensor,
        level2: bool,
        counts: list[dict] | None,
        resets: list | None,
    ) -> dict[str, torch.Tensor]:
        """Forwards, CLUB steps and loss terms of one batch: the forward a data-parallel replica runs
        (hdcid/train_ddp.py)."""
        out, ll = self._forwards(video, audio, words, [0, 1] if level2 else [0], resets)
        return self._loss_terms(out, ll, level2, counts)

    def _forwards(
        self, video: torch.Tensor, audio: torch.Tensor, words: torch.Tensor, active: list[int], resets: list | None
    ) -> tuple[TrainOutputs, dict[int, torch.Tensor]]:
        """The step's encoder forwards (the last with grad, through decoders and CPC) and its CLUB
        likelihood steps on the `active` levels; returns (train outputs, CLUB log-likelihood per level)."""
        model, tc = self.model, self.train_cfg
        x_t = model.text_features(words)  # (B,T,2H), grad
        ll: dict[int, torch.Tensor] = {}
        # original H-DCID: a fresh encoder forward per CLUB step. Its dropout-free part (video convs,
        # VSE, specific branches) is the same in every forward of the step: computed once (with grad,
        # for the main forward); the extra forwards skip the quantizer's loss/diagnostic terms.
        shared = model.encoder.shared_features(video, audio, x_t) if tc.encoder_forwards_per_step > 1 else None
        for i in range(tc.encoder_forwards_per_step - 1):
            with torch.no_grad():
                enc = model.encoder(video, audio, x_t, shared=shared, diagnostics=False)
            self._count_resets(enc, resets)
            if i < tc.club_steps:
                ll = self._club_step(enc, active)
        out = model.forward_train(video, audio, None, text_features=x_t, shared=shared)
        self._count_resets(out.enc, resets)
        for _ in range(max(tc.club_steps - (tc.encoder_forwards_per_step - 1), 0)):
            ll = self._club_step(out.enc, active)
        return out, ll

    def _loss_terms(
        self, out: TrainOutputs, ll: dict[int, torch.Tensor], level2: bool, counts: list[dict] | None
    ) -> dict[str, torch.Tensor]:
        """Every logged term (scalars, in log-column order) and `total` = L1 (+ level2_weight * L2
        once level 2 trains). Level-2 MI terms carry no gradient before then. Adds code counts."""
        terms: dict[str, torch.Tensor] = {}
        level_loss = []
        for lv, lo in enumerate(out.enc.levels):
            if lv == 1 and not level2:
                with torch.no_grad():
                    mi = self.model.mi_terms(out.enc, lv)
            else:
                mi = self.model.mi_terms(out.enc, lv)
            level_loss.append(_level_terms(terms, out, lv, mi, ll, self.train_cfg.cmcm_weight))
            if counts is not None:
                for m in MODALITIES:
                    counts[lv][m] += torch.bincount(lo.indices[m].reshape(-1), minlength=self.model_cfg.n_codes)
        terms["total"] = level_loss[0] + (self.train_cfg.level2_weight * level_loss[1] if level2 else 0.0)
        return terms

    def _optimizer_step(self, terms: dict[str, torch.Tensor], epoch: int) -> dict[str, float]:
        """Backward of terms["total"], per-module clipping, one host sync for all logged values,
        stop on a non-finite one (before the step), optimizer step; returns {term: float}."""
        model, tc = self.model, self.train_cfg
        names = list(terms)
        logged = torch.stack([terms[k].detach().reshape(()).to(torch.float64) for k in names])  # (n_terms,)
        self.main_opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        norms = torch.stack(
            [
                torch.nn.utils.clip_grad_norm_(mod.parameters(), tc.grad_clip)  # per module
                for mod in model.main_modules()
            ]
        ).to(torch.float64)  # (n_modules,)
        values = torch.cat([logged, norms]).tolist()  # the step's one host sync
        stop_if_nonfinite(
            values,
            [f"loss term {k!r}" for k in names] + [f"gradient norm of {k!r}" for k in module_names(model)],
            self.step + 1,
            epoch,
        )
        self.main_opt.step()
        return dict(zip(names, values[: len(names)]))

    def _recalibrate_centre(self) -> None:
        """`TrainConfig.recalibrate_centring`: the centring running mean from the first N clips at
        the epoch's final weights (the same clips on every data-parallel rank; no random draw)."""
        idx = np.arange(min(len(self.dataset), self.train_cfg.recalibrate_centring))
        video, audio, words = Pretrainer._batch(self, idx)
        model = self.model
        with torch.no_grad():
            was = model.training
            model.eval()
            x_t = model.text_features(words)
            model.train(was)
        model.encoder.recalibrate_centre({"audio": audio, "video": video, "text": x_t})

    def _warmup_decays(self, epoch: int) -> dict[int, float]:
        """level -> EMA decay for this epoch (`TrainConfig.warmup_decay` / `level2_warmup_decay` in
        the first epoch each level trains); empty: `ModelConfig.ema_decay` at every level."""
        tc, out = self.train_cfg, {}
        if tc.warmup_decay is not None and epoch == 0:
            out[0] = tc.warmup_decay
        level2 = tc.warmup_decay if tc.level2_warmup_decay is None else tc.level2_warmup_decay
        if self.model_cfg.n_levels > 1 and level2 is not None and epoch == tc.level2_start_epoch:
            out[1] = level2
        return out

    @staticmethod
    def _count_resets(enc: EncoderOutputs, resets: list | None) -> None:
        if resets is not None:
            for lv, lo in enumerate(enc.levels):
                resets[lv] += lo.quant.reset.to(resets[lv].dtype)

    # ------------------------------------------------------------------ the loop
    def fit(
        self, progress: bool = True, callback: Callable[[dict], Any] | None = None, stop_after_epoch: int | None = None
    ) -> PretrainResult:
        """Train (or resume from the latest `epoch-{k}.pt` in out_dir) up to `train_cfg.epochs`.

        stop_after_epoch: return after finishing that 0-based epoch (its checkpoint written), e.g.
        to test exact resume. callback(row) is called after every step with the logged row.
        """
        existing = list_checkpoints(self.out_dir)
        if existing and self.step == 0 and self.next_epoch == 0:
            self._resume(existing[-1])
        tc, cfg = self.train_cfg, self.model_cfg
        n = len(self.dataset)
        for epoch in range(self.next_epoch, tc.epochs):
            self.model.train()
            quantizer = self.model.encoder.Cross_quantizer
            quantizer.decay_override = self._warmup_decays(epoch)
            if tc.data_init and epoch == 0:  # every level's codebook from the first batch (k-means)
                quantizer.init_pending = {lv: tc.seed + lv for lv in range(cfg.n_levels)}
            gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + epoch)
            perm = torch.randperm(n, generator=gen).numpy()
            batches = [perm[i : i + tc.batch_size] for i in range(0, n, tc.batch_size)]
            if tc.max_steps_per_epoch is not None:
                batches = batches[: tc.max_steps_per_epoch]
            counts = [
                {m: torch.zeros(cfg.n_codes, dtype=torch.long, device=self.device) for m in MODALITIES}
                for _ in range(cfg.n_levels)
            ]
            resets = [torch.zeros(cfg.n_codes, dtype=torch.long, device=self.device) for _ in range(cfg.n_levels)]
            bar = tqdm(batches, desc=f"{cfg.variant} epoch {epoch + 1}/{tc.epochs}", disable=not progress, leave=False)
            for idx in bar:
                try:
                    row = self.train_step(*self._batch(idx), epoch, counts, resets)
                except NonFiniteTrainingError as e:
                    ids = getattr(self.dataset, "ids", None)
                    clip_ids = [ids[i] for i in idx] if ids is not None else idx.tolist()
                    done = list_checkpoints(self.out_dir)
                    raise NonFiniteTrainingError(
                        f"{e}; batch clip ids {clip_ids}. Training stopped before the optimizer step; "
                        f"no checkpoint was written from this state (latest good one: "
                        f"{done[-1] if done else 'none'})"
                    ) from None
                self.step += 1
                row = {"epoch": epoch, "step": self.step, **row}
                self.rows.append(row)
                bar.set_postfix(total=f"{row['total']:.3f}", agree=f"{row['agreement']:.2f}")
                if callback is not None:
                    callback(row)
            quantizer.decay_override = {}
            quantizer.init_pending = {}
            if tc.recalibrate_centring:
                self._recalibrate_centre()
            self.usage.append(
                {
                    "epoch": epoch,
                    "counts": [{m: c[m].cpu() for m in MODALITIES} for c in counts],
                    "resets": [r.cpu() for r in resets],
                }
            )
            self._save(epoch)
            self.next_epoch = epoch + 1
            if stop_after_epoch is not None and epoch >= stop_after_epoch:
                break
        return PretrainResult(
            self.model.eval(), pd.DataFrame(self.rows), list(self.usage), list_checkpoints(self.out_dir)
        )


def load_or_pretrain(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    dataset: Any,
    out_dir: str | Path,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> PretrainResult:
    """For notebooks: the final checkpoint in `out_dir` if it exists with the same configs, else
    train (resuming from the latest checkpoint there). Raises if out_dir holds other configs."""
    out_dir = Path(out_dir)
    final = out_dir / f"epoch-{train_cfg.epochs - 1}.pt"
    if final.exists():
        ck = load_checkpoint(final)
        if same_run(ck, model_cfg, train_cfg):
            model = ck["model"].to(get_device(device)).eval()
            return PretrainResult(model, ck["history"], list(ck["extra"].get("usage", [])), list_checkpoints(out_dir))
    return Pretrainer(model_cfg, train_cfg, dataset, out_dir, device=device).fit(progress=progress)
