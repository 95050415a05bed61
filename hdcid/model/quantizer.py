"""The unified (cross-modal) codebook of DCID / H-DCID: MM-EMA, dead-code reset, commitment, CMCM.

Method: docs/method.md §2.2-2.6 (quantizer, CMCM), §3.1 (two-level codebook) and §6 (vectorised
bookkeeping, what differs from the original). Shown in the notebooks on the codebook (usage, resets).

One training-mode `UnifiedCodebook.forward(z_a, z_v, z_t, level)` does, in the original's order:

1. squared distances (expanded form) of every position to every code, (N, M);
2. the CMCM loss from the grad-carrying features (zero when `use_cmcm` is False);
3. argmin assignment (first index on ties) and codes q = E[k] from the PRE-update codebook;
4. MM-EMA (train mode only): sequential updates a -> v -> t, each adding count 1 and mass
   0.5 own + 0.25 + 0.25 co-located partner features, Laplace renormalisation, E = W / c;
5. dead-code reset: per-call counters, codes unused for more than `reset_after` calls get a donor
   code (used within `donor_window` calls) plus U(-noise, noise);
6. commitment losses 2b own + b/2 each other modality, against the pre-update codes;
7. straight-through outputs z + sg(q - z).

Differences from the original (all documented, switchable where they change numbers):
* eval mode never changes any buffer (the original ticks counters and resets codes in eval mode
  too); `reset_in_eval=True` (`ModelConfig.reset_in_eval`, `ModelConfig.faithful()`) restores that.
* `reset_updates_ema=True` (default) also writes `ema_weight[k] = E_new[k] * ema_count[k]` so a reset
  survives the next EMA step; `False` writes only `embedding` as the original (overwritten by the next
  EMA step, docs/method.md §2.4). `ema_count` is never changed by a reset.
* a reset with no donor code is skipped (the original raises in `random.randint(0, -1)`); in practice
  it cannot happen, because every code used in the current call is a donor.
* CMCM clamps squared distances at 0 before `sqrt` (the original does not and can produce NaN).
* the reset draws donors and noise from torch's global RNG on the codebook's device (the original
  uses Python's `random` for donors), so checkpointing torch's RNG state makes a resume exact.
* vectorised (docs/method.md §6): one distance product per modality serves CMCM (grad) and argmin (detached);
  EMA sums by `index_add_` on CPU and a dense one-hot product on CUDA (deterministic); the reset
  bookkeeping is a few tensor ops with one host sync (`R.sum()`).
* data-parallel steps (hdcid/train_ddp.py): the MM-EMA statistics and the used-code sets are summed
  over ranks and CMCM's soft assignments gathered (hdcid/distributed.py), so every rank holds the
  same codebook; outside such a step these calls change nothing.
* `text_partner`, `cross_commitment` and `partner_share` (`ModelConfig.text_partner`,
  `cross_commitment`, `ema_partner_share`; the original: True, 0.5, 0.25) choose the co-located
  partners, the commitment to their codes and each partner's share of the MM-EMA mass.
* `init_pending` (set by the training loop for `TrainConfig.data_init`; the original's codebooks
  always start at U(-1/M, 1/M)): a level's first training call first sets its codebook to k-means
  centres of the batch's audio and video features (`kmeans_codes`).
* `equal_num` takes each sample's mode over time as the smallest most-frequent code (the original's
  `torch.mode` tie-breaking is backend-dependent; it is a diagnostic only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hdcid.distributed import batch_mean, codes_used_anywhere, gather_batch, sum_over_ranks
from hdcid.modalities import MODALITIES, PARTNERS

_LOG_EPS = 1e-10  # inside log(P + 1e-10) of CMCM and of the perplexity (original)
_CMCM_DENOM_EPS = 1e-5  # added to the CMCM softmax denominator (original)


@dataclass
class QuantizerOutput:
    """Everything one quantizer call produces (modality keys: 'audio', 'video', 'text').

    quantized:  m -> (B, T, D) straight-through codes (value = code, gradient = identity to z_m)
    indices:    m -> (B, T) long code indices (pre-update codebook)
    commitment: m -> scalar, 2b MSE(z_m, sg q_m) + b/2 sum over the two other modalities' codes
    cmcm:       scalar CMCM loss (zero when use_cmcm is False)
    agreement:  scalar, fraction of (b, t) positions where all three modalities pick the same code
    equal_num:  scalar long, number of samples whose per-sample modes over time agree (original log)
    perplexity: m -> scalar exp(entropy) of the code usage of that modality
    reset:      (M,) bool, codes reset by this call (all False in eval mode or when none)
    """

    quantized: dict[str, Tensor]
    indices: dict[str, Tensor]
    commitment: dict[str, Tensor]
    cmcm: Tensor
    agreement: Tensor
    equal_num: Tensor
    perplexity: dict[str, Tensor]
    reset: Tensor


# ----------------------------------------------------------------------------------------------
# pure functions
# ----------------------------------------------------------------------------------------------
def squared_distances(z: Tensor, E: Tensor) -> Tensor:
    """Squared Euclidean distances in the expanded form ||E_k||^2 + ||z_n||^2 - 2 <z_n, E_k>.

    z: (N, D), E: (M, D) -> (N, M). May be slightly negative through rounding (as the original).
    """
    if z.dim() != 2 or E.dim() != 2 or z.shape[1] != E.shape[1]:
        raise ValueError(
            f"squared_distances expects z (N, D) and E (M, D) with equal D, got z {tuple(z.shape)} "
            f"and E {tuple(E.shape)}"
        )
    E = E.to(z.dtype)
    sq = torch.sum(E**2, dim=1) + torch.sum(z**2, dim=1, keepdim=True)  # (N, M)
    return torch.addmm(sq, z, E.t(), beta=1.0, alpha=-2.0)  # (N, M)


def nearest_codes(z: Tensor, E: Tensor) -> Tensor:
    """Index of the nearest code (first index on ties) for every position; no state anywhere.

    z: (..., D), E: (M, D) -> (...) long.
    """
    flat = z.detach().reshape(-1, z.shape[-1])  # (N, D)
    return torch.argmin(squared_distances(flat, E), dim=1).reshape(z.shape[:-1])


def kmeans_codes(x: Tensor, n_codes: int, generator: torch.Generator, iters: int = 10) -> Tensor:
    """k-means++ seeding then `iters` Lloyd steps on x (N, D) -> (n_codes, D) centres, on x's device
    and dtype. Draws only from `generator` (a CPU generator: the same centres on every device). A
    centre left without points keeps its place; with N < n_codes some centres repeat a point."""
    x64 = x.detach().double().cpu()  # (N, D)
    N = x64.shape[0]
    first = int(torch.randint(N, (1,), generator=generator))
    picks = [first]
    d = (x64 - x64[first]).pow(2).sum(1)  # (N,) squared distance to the nearest pick
    for _ in range(n_codes - 1):
        if d.sum() > 0:  # the next pick with probability ~ squared distance
            j = int(torch.multinomial(d, 1, generator=generator))
        else:  # every point is already a pick
            j = int(torch.randint(N, (1,), generator=generator))
        picks.append(j)
        d = torch.minimum(d, (x64 - x64[j]).pow(2).sum(1))
    C = x64[picks].clone()  # (M, D)
    for _ in range(iters):
        a = torch.cdist(x64, C).argmin(1)  # (N,)
        n = torch.bincount(a, minlength=n_codes).to(x64.dtype)  # (M,)
        s = torch.zeros_like(C).index_add_(0, a, x64)  # (M, D)
        C = torch.where(n[:, None] > 0, s / n.clamp(min=1)[:, None], C)
    return C.to(device=x.device, dtype=x.dtype)


def _time_mean_soft_assignment(d: Tensor, B: int, T: int) -> Tensor:
    """P[b] = mean_t softmax_k(-sqrt(max(d[(b,t), k], 0))): d (B*T, M) -> (B, M)."""
    p = F.softmax(-torch.sqrt(d.clamp_min(0.0)), dim=1)  # (BT, M)
    return p.reshape(B, T, -1).mean(dim=1)  # (B, M)


def _cmcm_pair(P_x: Tensor, P_y: Tensor, logP_x: Tensor, logP_y: Tensor) -> Tensor:
    """Contrastive loss of one modality pair from time-mean soft assignments P (B, M) -> scalar.

    logP_m = log(P_m + 1e-10). S[i, j] = sum_k P_x[i,k] logP_y[j,k] + sum_k P_y[i,k] logP_x[j,k];
    L = -mean_i log(exp(S_ii - s0) / (sum_j exp(S_ij - s0) + 1e-5)), s0 = min S (original's shift).
    """
    S = P_x @ logP_y.t() + P_y @ logP_x.t()  # (B, B)
    ES = torch.exp(S - S.min())  # (B, B)
    ratio = torch.diagonal(ES) / (ES.sum(dim=1) + _CMCM_DENOM_EPS)  # (B,)
    return -torch.log(ratio).mean()


def cmcm_loss(z_a: Tensor, z_v: Tensor, z_t: Tensor, E: Tensor) -> Tensor:
    """Cross-modal code matching loss (docs/method.md §2.6), L = 0.5 (L_av + L_at + L_tv).

    z_m: (B, T, D) grad-carrying semantic features; E: (M, D) codebook (treated as a constant).
    Returns a scalar in z's dtype. Squared distances are clamped at 0 before sqrt (the original has
    no clamp and can produce NaN when a distance rounds below zero).
    """
    B, T, D = z_a.shape
    E = E.detach()
    d = [squared_distances(z.reshape(B * T, D), E) for z in (z_a, z_v, z_t)]  # 3 x (BT, M)
    return _cmcm_from_distances(*d, B=B, T=T)


def _cmcm_from_distances(d_a: Tensor, d_v: Tensor, d_t: Tensor, B: int, T: int) -> Tensor:
    """CMCM from grad-carrying squared distances d_m (B*T, M) -> scalar. Data-parallel: the soft
    assignments of every rank's clips are gathered (hdcid/distributed.py), so each rank computes the
    global-batch loss."""
    P = [gather_batch(_time_mean_soft_assignment(d, B, T)) for d in (d_a, d_v, d_t)]  # 3 x (B, M)
    (P_a, P_v, P_t), (L_a, L_v, L_t) = P, [torch.log(p + _LOG_EPS) for p in P]
    return 0.5 * (_cmcm_pair(P_a, P_v, L_a, L_v) + _cmcm_pair(P_a, P_t, L_a, L_t) + _cmcm_pair(P_t, P_v, L_t, L_v))


def code_agreement(k_a: Tensor, k_v: Tensor, k_t: Tensor, n_codes: int) -> tuple[Tensor, Tensor]:
    """Cross-modal agreement of code choices; k_m (B, T) long.

    Returns (agreement, equal_num): the fraction of (b, t) positions where the three modalities pick
    the same code (float scalar), and the number of samples whose modes over time agree (long
    scalar; the mode is the smallest most-frequent code of the sample).
    """
    same = (k_a == k_v) & (k_v == k_t)  # (B, T)
    agreement = same.to(torch.float64).mean() if same.numel() else torch.zeros((), dtype=torch.float64)

    def mode(k: Tensor) -> Tensor:  # (B, T) -> (B,)
        counts = torch.zeros(k.shape[0], n_codes, dtype=torch.long, device=k.device)
        counts.scatter_add_(1, k, torch.ones_like(k))  # (B, M) code counts over time
        return counts.argmax(dim=1)  # first (smallest) index among the most frequent

    m_a, m_v, m_t = mode(k_a), mode(k_v), mode(k_t)
    equal_num = ((m_a == m_v) & (m_v == m_t)).sum()
    return agreement, equal_num


def _code_counts(k: Tensor, n_codes: int, dtype: torch.dtype) -> Tensor:
    """How often each code occurs in k (N,) -> (M,) in `dtype` (exact for N < 2^24; no host sync)."""
    counts = torch.zeros(n_codes, dtype=dtype, device=k.device)
    return counts.scatter_add_(0, k, torch.ones_like(k, dtype=dtype))


def usage_perplexity(k: Tensor, n_codes: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """exp(-sum_k p_k log(p_k + 1e-10)) of the code-usage frequencies p of indices k (any shape)."""
    p = _code_counts(k.reshape(-1), n_codes, dtype) / max(k.numel(), 1)  # (M,)
    return torch.exp(-torch.sum(p * torch.log(p + _LOG_EPS)))


# ----------------------------------------------------------------------------------------------
# the module
# ----------------------------------------------------------------------------------------------
class UnifiedCodebook(nn.Module):
    """Unified codebook shared by audio, video and text, with `levels` independent levels.

    Buffers (original names, so released checkpoints load):
      levels == 1: embedding (M, D) ~ U(-1/M, 1/M), ema_weight (M, D) copy, ema_count (M,) zeros,
                   unactivated_count (M,) = -1;
      levels == 2: the same stacked on a leading level axis, (2, M, D) and (2, M).

    Construction: `UnifiedCodebook(n_codes=M, dim=D, levels=L, ...)` with explicit keyword sizes,
    or `UnifiedCodebook.from_config(cfg)` with a `ModelConfig` (levels = cfg.n_levels).
    """

    def __init__(
        self,
        *,
        n_codes: int,
        dim: int,
        levels: int = 1,
        commitment: float = 0.25,
        decay: float = 0.99,
        eps: float = 1e-5,
        reset_after: int = 300,
        donor_window: int = 100,
        reset_noise: float = 1.0 / 1024,
        reset_updates_ema: bool = True,
        use_cmcm: bool = True,
        reset_in_eval: bool = False,
        cross_commitment: float = 0.5,
        text_partner: bool = True,
        partner_share: float = 0.25,
    ) -> None:
        super().__init__()
        if n_codes < 1 or dim < 1:
            raise ValueError(f"n_codes and dim must be >= 1, got n_codes={n_codes}, dim={dim}")
        if levels not in (1, 2):
            raise ValueError(f"levels must be 1 (DCID) or 2 (H-DCID), got {levels}")
        self.n_codes, self.dim, self.levels = n_codes, dim, levels
        self.commitment, self.decay, self.eps = commitment, decay, eps
        self.reset_after, self.donor_window, self.reset_noise = reset_after, donor_window, reset_noise
        self.reset_updates_ema, self.use_cmcm, self.reset_in_eval = reset_updates_ema, use_cmcm, reset_in_eval
        self.cross_commitment = cross_commitment  # x beta per other modality (original 0.5)
        # original True: text is a same-position partner of audio and video (MM-EMA mass and
        # cross-modal commitment); False: only audio and video partner each other, text's share of
        # the MM-EMA mass goes to the modality's own features (text positions are words, not seconds)
        self.text_partner = text_partner
        n_partners = 2 if text_partner else 1
        if not 0.0 <= partner_share <= 1.0 / (n_partners + 1):
            raise ValueError(
                f"partner_share must lie in [0, {1.0 / (n_partners + 1):.4g}] with {n_partners} partner(s) per "
                f"modality (text_partner={text_partner}), so no partner outweighs the modality's own feature; "
                f"got {partner_share}"
            )
        self.partner_share = partner_share  # each partner's share of the MM-EMA mass (original 0.25)
        # per-level EMA decay overrides set by the training loop (TrainConfig.warmup_decay /
        # level2_warmup_decay); not state: empty = `decay` at every level
        self.decay_override: dict[int, float] = {}
        # levels whose codebook is set from the data at their next training call, level -> seed
        # (TrainConfig.data_init, set by the training loop; emptied as they are done); not state
        self.init_pending: dict[int, int] = {}
        self.partners = (
            PARTNERS if text_partner else {m: tuple(o for o in PARTNERS[m] if "text" not in (o, m)) for m in MODALITIES}
        )

        lead = () if levels == 1 else (levels,)
        embedding = torch.empty(*lead, n_codes, dim).uniform_(-1.0 / n_codes, 1.0 / n_codes)
        self.register_buffer("embedding", embedding)  # (M, D) | (L, M, D)
        self.register_buffer("ema_weight", embedding.clone())  # (M, D) | (L, M, D)
        self.register_buffer("ema_count", torch.zeros(*lead, n_codes))  # (M,) | (L, M)
        self.register_buffer("unactivated_count", -torch.ones(*lead, n_codes))  # (M,) | (L, M)

    @classmethod
    def from_config(cls, cfg) -> UnifiedCodebook:
        """Build from a `hdcid.config.ModelConfig` (levels = cfg.n_levels, use_cmcm = cfg.use_cmcm)."""
        return cls(
            n_codes=cfg.n_codes,
            dim=cfg.hidden_dim,
            levels=cfg.n_levels,
            commitment=cfg.commitment,
            decay=cfg.ema_decay,
            eps=cfg.ema_eps,
            reset_after=cfg.reset_after,
            donor_window=cfg.donor_window,
            reset_noise=cfg.reset_noise,
            reset_updates_ema=cfg.reset_updates_ema,
            use_cmcm=cfg.use_cmcm,
            reset_in_eval=cfg.reset_in_eval,
            cross_commitment=cfg.cross_commitment,
            text_partner=cfg.text_partner,
            partner_share=cfg.ema_partner_share,
        )

    def extra_repr(self) -> str:
        return (
            f"n_codes={self.n_codes}, dim={self.dim}, levels={self.levels}, decay={self.decay}, "
            f"reset_after={self.reset_after}, use_cmcm={self.use_cmcm}"
        )

    # -- views ------------------------------------------------------------------------------------
    def _check_level(self, level: int) -> None:
        if not isinstance(level, int) or not 0 <= level < self.levels:
            raise ValueError(
                f"level must be an int in [0, {self.levels - 1}] for this {self.levels}-level codebook, got {level!r}"
            )

    def _state(self, level: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Views (E (M,D), W (M,D), c (M,), u (M,)) of one level; in-place writes reach the buffers."""
        self._check_level(level)
        if self.levels == 1:
            return self.embedding, self.ema_weight, self.ema_count, self.unactivated_count
        return (self.embedding[level], self.ema_weight[level], self.ema_count[level], self.unactivated_count[level])

    def codebook(self, level: int = 0) -> Tensor:
        """A detached copy of one level's codebook, (M, D)."""
        return self._state(level)[0].detach().clone()

    def codebooks(self) -> Tensor:
        """Detached copy of all codebooks, (L, M, D)."""
        return self.embedding.detach().clone().reshape(self.levels, self.n_codes, self.dim)

    def _check_input(self, z: Tensor, name: str, ref: Tensor | None = None) -> None:
        if z.dim() != 3 or z.shape[-1] != self.dim:
            raise ValueError(f"UnifiedCodebook expects {name} of shape (B, T, {self.dim}), got {tuple(z.shape)}")
        if ref is not None and z.shape != ref.shape:
            raise ValueError(
                f"UnifiedCodebook expects z_a, z_v, z_t of equal shape; z_a is "
                f"{tuple(ref.shape)} but {name} is {tuple(z.shape)}"
            )

    # -- single-modality, pure ---------------------------------------------------------------------
    def nearest(self, z: Tensor, level: int = 0) -> Tensor:
        """Nearest-code indices of z (..., D) -> (...) long. Never touches any buffer."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"UnifiedCodebook.nearest expects z (..., {self.dim}), got {tuple(z.shape)}")
        return nearest_codes(z, self._state(level)[0])

    def lookup(self, z: Tensor, level: int = 0) -> tuple[Tensor, Tensor]:
        """Quantize one modality: z (B, T, D) -> (straight-through codes (B, T, D), indices (B, T)).

        Never touches any buffer (safe in train or eval mode).
        """
        self._check_input(z, "z")
        k = self.nearest(z, level)  # (B, T)
        q = self._state(level)[0].detach()[k].to(z.dtype)  # (B, T, D)
        return z + (q - z).detach(), k

    # -- the training step ---------------------------------------------------------------------------
    def forward(
        self, z_a: Tensor, z_v: Tensor, z_t: Tensor, level: int = 0, *, diagnostics: bool = True
    ) -> QuantizerOutput:
        """Quantize the three modalities' semantic features z_m (B, T, D) with codebook `level`.

        In train mode updates the codebook (MM-EMA) and the dead-code counters / resets; in eval
        mode changes no buffer unless `reset_in_eval`. Step order as docs/method.md §2.2-2.5 (module docstring).
        diagnostics: False skips what only the loss and the log read (CMCM, commitment, agreement,
        equal_num, perplexity: returned as zeros) for a forward whose losses are unused; codes,
        indices, buffer updates and resets are the same.
        """
        self._check_input(z_a, "z_a")
        self._check_input(z_v, "z_v", z_a)
        self._check_input(z_t, "z_t", z_a)
        E, W, c, u = self._state(level)
        B, T, D = z_a.shape
        z = {"audio": z_a, "video": z_v, "text": z_t}
        if self.training and level in self.init_pending:
            self._init_from_data(E, W, c, z, self.init_pending.pop(level))
        E0 = E.detach().to(z_a.dtype).clone()  # (M, D) pre-update codebook (safe from in-place writes)

        # 1-3. distances (one product per modality: grad-carrying for CMCM, detached for argmin —
        # the same values as the original's two separate products), CMCM, assignment
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.use_cmcm):
            d = {m: squared_distances(z[m].reshape(B * T, D), E0) for m in MODALITIES}  # (BT, M)
        if self.use_cmcm and diagnostics:
            cmcm = _cmcm_from_distances(d["audio"], d["video"], d["text"], B=B, T=T)
        else:
            cmcm = z_a.new_zeros(())
        k = {m: torch.argmin(d[m].detach(), dim=1).reshape(B, T) for m in MODALITIES}  # (B, T)
        q = {m: E0[k[m]] for m in MODALITIES}  # m -> (B, T, D), pre-update codes
        if diagnostics:
            agreement, equal_num = code_agreement(k["audio"], k["video"], k["text"], self.n_codes)
            agreement = batch_mean(agreement)  # data-parallel: over the global batch (equal_num: per rank)

        reset = torch.zeros(self.n_codes, dtype=torch.bool, device=E.device)
        with torch.no_grad():
            if self.training:
                self._mm_ema(
                    E,
                    W,
                    c,
                    {m: z[m].detach().reshape(B * T, D) for m in MODALITIES},
                    {m: k[m].reshape(-1) for m in MODALITIES},
                    self.decay_override.get(level, self.decay),
                )
            if self.training or self.reset_in_eval:
                reset = self._dead_code_reset(E, W, c, u, torch.cat([k[m].reshape(-1) for m in MODALITIES]))

        # 6-7. commitment from pre-update codes, straight-through outputs
        quantized = {m: z[m] + (q[m] - z[m]).detach() for m in MODALITIES}
        if not diagnostics:
            zero = z_a.new_zeros(())
            return QuantizerOutput(
                quantized,
                k,
                {m: zero for m in MODALITIES},
                cmcm,
                zero,
                torch.zeros((), dtype=torch.long, device=z_a.device),
                {m: zero for m in MODALITIES},
                reset,
            )
        own, other = 2.0 * self.commitment, self.cross_commitment * self.commitment
        commitment = {
            m: batch_mean(own * F.mse_loss(z[m], q[m]) + sum(other * F.mse_loss(z[m], q[o]) for o in self.partners[m]))
            for m in MODALITIES
        }
        perplexity = {m: usage_perplexity(k[m], self.n_codes, z_a.dtype) for m in MODALITIES}
        return QuantizerOutput(quantized, k, commitment, cmcm, agreement, equal_num, perplexity, reset)

    def _init_from_data(self, E: Tensor, W: Tensor, c: Tensor, z: dict[str, Tensor], seed: int) -> None:
        """`TrainConfig.data_init`: E = k-means centres of the (global) batch's audio and video
        features (text positions are words, not seconds), W = E, c = 1: the EMA then starts from
        codes that lie among the features instead of U(-1/M, 1/M) near the origin."""
        D = E.shape[-1]
        x = torch.cat([gather_batch(z[m].detach()).reshape(-1, D) for m in ("audio", "video")])  # (2BT, D)
        C = kmeans_codes(x, self.n_codes, torch.Generator().manual_seed(seed)).to(E.dtype)  # (M, D)
        with torch.no_grad():
            E.copy_(C)
            W.copy_(C)
            c.fill_(1.0)

    def _mm_ema(
        self, E: Tensor, W: Tensor, c: Tensor, z: dict[str, Tensor], k: dict[str, Tensor], decay: float | None = None
    ) -> None:
        """Sequential MM-EMA a -> v -> t in place on E, W, c. z: m -> (N, D) detached, k: m -> (N,).
        The statistics (counts, H_m^T mass) depend only on z and k: computed first, summed over
        ranks in a data-parallel step (one collective), then applied in the original order."""
        g, M = self.decay if decay is None else decay, self.n_codes
        zw = {m: v.to(W.dtype) for m, v in z.items()}
        counts, dws = [], []
        for m in MODALITIES:
            counts.append(_code_counts(k[m], M, c.dtype))  # (M,) = colsum(H_m)
            s = self.partner_share
            if self.text_partner:  # the original (s = 0.25): 0.5 own + 0.25 each co-located partner
                o1, o2 = PARTNERS[m]
                mass = (1.0 - 2.0 * s) * zw[m] + s * zw[o1] + s * zw[o2]  # (N, D)
            else:  # text is nobody's partner: its share goes to the modality's own features
                mass = (1.0 - s * len(self.partners[m])) * zw[m] + sum(s * zw[o] for o in self.partners[m])
            if W.is_cuda:  # deterministic dense one-hot product (index_add_ uses atomics on CUDA)
                dws.append(F.one_hot(k[m], M).to(W.dtype).t() @ mass)  # (M, D) = H_m^T mass
            else:
                dws.append(torch.zeros_like(W).index_add_(0, k[m], mass))  # (M, D) = H_m^T mass
        stats = sum_over_ranks(*counts, *dws)
        for count, dw in zip(stats[:3], stats[3:]):
            c.mul_(g).add_(count, alpha=1.0 - g)
            s = c.sum()
            c.copy_((c + self.eps) * s / (s + M * self.eps))  # Laplace renormalisation
            W.mul_(g).add_(dw, alpha=1.0 - g)
        E.copy_(W / c.unsqueeze(-1))  # only the last E = W / c survives the three updates

    def _dead_code_reset(self, E: Tensor, W: Tensor, c: Tensor, u: Tensor, used: Tensor) -> Tensor:
        """Tick counters, revive codes unused for > reset_after calls from donors. Returns (M,) bool."""
        u.add_(1.0)
        used = codes_used_anywhere(used, self.n_codes)  # data-parallel: used on any rank
        u.index_fill_(0, used, 0.0)  # duplicates write the same value: no unique() needed
        R = u > self.reset_after  # (M,) to reset
        A = (u >= 0) & (u < self.donor_window)  # (M,) donors
        n_reset = int(R.sum())  # the only host sync of a training call
        if n_reset == 0:
            return R
        n_donor = int(A.sum())
        if n_donor == 0:  # no donor: skip (the original raises); the counters keep ticking
            return torch.zeros_like(R)
        donors = E[A]  # (|A|, D) snapshot of post-EMA donor codes
        j = torch.randint(n_donor, (n_reset,), device=E.device)  # (|R|,)
        noise = torch.empty(n_reset, self.dim, dtype=E.dtype, device=E.device)
        noise.uniform_(-self.reset_noise, self.reset_noise)  # (|R|, D)
        E[R] = donors[j] + noise
        if self.reset_updates_ema:  # keep E = W / c for the reset rows so the reset survives EMA
            W[R] = E[R] * c[R].unsqueeze(-1)
        u.masked_fill_(R, 0.0)
        return R
