"""Benchmark: one quantizer training-mode forward (distances, CMCM, argmin, MM-EMA, reset bookkeeping,
commitment, straight-through) -- hdcid's vectorised `UnifiedCodebook` vs a faithful re-creation of
the original's loop style (docs/method.md §2.3-2.4 and §6), at equal settings
(B=80, T=10, M=400, D=256), in float64 (the original's precision) and float32.

    python benchmarks/bench_quantizer.py [--quick] [--device cpu|cuda] [--repeats N] [--threads N]

Before timing, checks on the same input that both give the same indices, losses and buffers
(no reset), and the same set of reset codes when some codes are due for a reset.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from hdcid.model.quantizer import UnifiedCodebook
from hdcid.utils import get_device, seed_everything


class OriginalLoopCodebook(nn.Module):
    """The original `Cross_VQEmbeddingEMA_AVT` forward written the original's way: two distance
    products per modality, Python loop over the batch in CMCM, dense one-hot EMA products (three per
    modality), `.item()` loop over every index for the counters, loop over the M counters, Python
    `random` donor draw per reset code. Same buffers as `UnifiedCodebook(levels=1)`."""

    def __init__(self, n_codes: int, dim: int, commitment=0.25, decay=0.99, eps=1e-5) -> None:
        super().__init__()
        self.commitment_cost, self.decay, self.epsilon = commitment, decay, eps
        embedding = torch.empty(n_codes, dim).uniform_(-1 / n_codes, 1 / n_codes)
        self.register_buffer("embedding", embedding)
        self.register_buffer("ema_weight", embedding.clone())
        self.register_buffer("ema_count", torch.zeros(n_codes))
        self.register_buffer("unactivated_count", -torch.ones(n_codes))

    def _dist(self, x_flat):
        E = self.embedding
        return torch.addmm(
            torch.sum(E**2, dim=1) + torch.sum(x_flat**2, dim=1, keepdim=True), x_flat, E.t(), alpha=-2.0, beta=1.0
        )

    def _cmcm_pair(self, pH_x, pH_y, B):
        S = pH_x @ torch.log(pH_y.t() + 1e-10) + pH_y @ torch.log(pH_x.t() + 1e-10)
        ES = torch.exp(S + torch.max(-S))
        ES_sum = torch.sum(ES, dim=1)
        L = 0
        for i in range(B):
            L -= torch.log(ES[i, i] / (ES_sum[i] + self.epsilon))
        return L / B

    def forward(self, audio, video, text):
        B, T, D = audio.shape
        M = self.embedding.shape[0]
        flat = {m: x.detach().reshape(-1, D) for m, x in (("a", audio), ("v", video), ("t", text))}
        flat_g = {m: x.reshape(-1, D) for m, x in (("a", audio), ("v", video), ("t", text))}
        dist = {m: self._dist(flat[m]) for m in "avt"}
        # CMCM (no clamp before sqrt, as the original)
        pH = {m: F.softmax(-torch.sqrt(self._dist(flat_g[m])), dim=1).reshape(B, T, M).mean(dim=1) for m in "avt"}
        cmcm = 0.5 * (
            self._cmcm_pair(pH["a"], pH["v"], B)
            + self._cmcm_pair(pH["a"], pH["t"], B)
            + self._cmcm_pair(pH["t"], pH["v"], B)
        )
        idx = {m: torch.argmin(dist[m], dim=-1) for m in "avt"}
        enc = {m: F.one_hot(idx[m], M).to(audio.dtype) for m in "avt"}
        q = {m: F.embedding(idx[m], self.embedding).view_as(audio) for m in "avt"}
        modes = [torch.mode(idx[m].reshape(B, T), dim=-1)[0] for m in "avt"]
        equal_num = int(torch.sum((modes[0] == modes[1]) & (modes[1] == modes[2])))
        if self.training:
            partners = {"a": "vt", "v": "at", "t": "av"}
            for m in "avt":
                o1, o2 = partners[m]
                self.ema_count = self.decay * self.ema_count + (1 - self.decay) * torch.sum(enc[m], dim=0)
                n = torch.sum(self.ema_count)
                self.ema_count = (self.ema_count + self.epsilon) / (n + M * self.epsilon) * n
                dw = torch.matmul(enc[m].t(), flat[m])
                dw1 = torch.matmul(enc[m].t(), flat[o1])
                dw2 = torch.matmul(enc[m].t(), flat[o2])
                self.ema_weight = (
                    self.decay * self.ema_weight
                    + 0.5 * (1 - self.decay) * dw
                    + 0.25 * (1 - self.decay) * dw1
                    + 0.25 * (1 - self.decay) * dw2
                )
                self.embedding = self.ema_weight / self.ema_count.unsqueeze(-1)
        # reset bookkeeping (the original also runs it in eval mode)
        self.unactivated_count += 1
        for m in "avt":
            for i in idx[m]:
                self.unactivated_count[i.item()] = 0
        activated, unactivated = [], []
        for i, x in enumerate(self.unactivated_count):
            if x > 300:
                unactivated.append(i)
                self.unactivated_count[i] = 0
            elif x >= 0 and x < 100:
                activated.append(i)
        donors = F.embedding(torch.tensor(activated, dtype=torch.long, device=audio.device), self.embedding)
        for i in unactivated:
            self.embedding[i] = donors[random.randint(0, len(activated) - 1)] + torch.empty(
                D, dtype=self.embedding.dtype, device=audio.device
            ).uniform_(-1 / 1024, 1 / 1024)
        z = {"a": audio, "v": video, "t": text}
        partners = {"a": "vt", "v": "at", "t": "av"}
        beta = self.commitment_cost
        commit = {
            m: 2 * beta * F.mse_loss(z[m], q[m].detach())
            + 0.5 * beta * F.mse_loss(z[m], q[partners[m][0]].detach())
            + 0.5 * beta * F.mse_loss(z[m], q[partners[m][1]].detach())
            for m in "avt"
        }
        st = {m: z[m] + (q[m] - z[m]).detach() for m in "avt"}
        probs = {m: torch.mean(enc[m], dim=0) for m in "avt"}
        perplexity = {m: torch.exp(-torch.sum(p * torch.log(p + 1e-10))) for m, p in probs.items()}
        return st, idx, commit, cmcm, equal_num, perplexity, unactivated


def _pair(dtype, device, seed=0):
    seed_everything(seed)
    ours = UnifiedCodebook(n_codes=400, dim=256).to(device=device, dtype=dtype).train()
    base = OriginalLoopCodebook(400, 256).to(device=device, dtype=dtype).train()
    base.load_state_dict(ours.state_dict())
    return ours, base


def _inputs(dtype, device, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(80, 10, 256, generator=g, dtype=dtype).to(device).requires_grad_(True) for _ in range(3)]


def sanity_check(device) -> dict:
    """Same input, same state: same indices, losses, buffers; same reset set when codes are due."""
    dtype = torch.float64
    ours, base = _pair(dtype, device)
    z = _inputs(dtype, device)
    report = {}
    for call in range(2):  # two calls: the second uses the EMA-updated codebook
        o = ours(*z)
        st, idx, commit, cmcm, equal_num, _, reset = base(*z)
        for m, key in zip("avt", ("audio", "video", "text")):
            assert torch.equal(o.indices[key].reshape(-1), idx[m]), f"indices differ ({key}, call {call})"
            torch.testing.assert_close(o.commitment[key], commit[m], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(o.cmcm, cmcm, rtol=1e-12, atol=1e-14)
        for n in ("embedding", "ema_weight", "ema_count", "unactivated_count"):
            torch.testing.assert_close(getattr(ours, n), getattr(base, n), rtol=1e-9, atol=1e-12)
        report[f"call{call}"] = dict(
            cmcm=o.cmcm.item(), commit_a=o.commitment["audio"].item(), equal_num=(int(o.equal_num), equal_num)
        )
    # make some codes due for a reset: both reset exactly the same codes
    # inputs exactly on codes 100..109 (so codes 0..49 are not used) and codes 0..49 due for a reset
    zr = ours.embedding[100:110].detach()[torch.arange(800) % 10].reshape(80, 10, 256)
    for q in (ours, base):
        q.unactivated_count[:50] = 400.0
    o = ours(zr, zr, zr)
    reset = base(zr, zr, zr)[-1]
    assert reset == list(range(50)), reset
    assert o.reset.nonzero().reshape(-1).tolist() == reset, "different reset sets"
    report["reset_codes"] = len(reset)
    return report


def _time(fn, repeats: int, device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--device", default=None, help="default: hdcid.utils.get_device()")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device(args.device)
    repeats = args.repeats or (5 if args.quick else 30)
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"B=80 T=10 M=400 D=256, median of {repeats} repeats (after 2 warm-up calls)"
    )
    print("sanity:", sanity_check(device))
    rows = []
    for dtype in (torch.float64, torch.float32):
        ours, base = _pair(dtype, device)
        z = _inputs(dtype, device)
        for q in (ours, base):
            q(*z), q(*z)  # warm-up
        t_ours = _time(lambda q=ours, z=z: q(*z), repeats, device)
        t_base = _time(lambda q=base, z=z: q(*z), repeats, device)
        rows.append(
            dict(
                dtype=str(dtype).replace("torch.", ""),
                loop_ms=1e3 * t_base,
                vectorised_ms=1e3 * t_ours,
                speedup=t_base / t_ours,
            )
        )
    print(f"{'dtype':<8} {'original loops (ms)':>20} {'hdcid vectorised (ms)':>22} {'speed-up':>9}")
    for r in rows:
        print(f"{r['dtype']:<8} {r['loop_ms']:>20.2f} {r['vectorised_ms']:>22.2f} {r['speedup']:>8.1f}x")
    return rows


if __name__ == "__main__":
    main()
