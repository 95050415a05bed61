"""Does the unified codebook unify? Audio-video code agreement and who uses which code (issue 8).

Pure functions of code indices (numpy or torch) and per-second labels. Everything can be
restricted to a boolean `mask` (N, T) of seconds, e.g. the foreground seconds of a clip, because
background seconds carry no shared event. Shown in notebooks 01 (agreement per epoch), 02 (per
digit top codes) and measured by `benchmarks/unified_codes.py`.

Shapes: `N` clips, `T` segments (seconds), `M` codes. Indices are (N, T) for one level.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hdcid.analysis._arrays import _np


def _pair(idx_a, idx_b, mask=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = _np(idx_a).astype(np.int64), _np(idx_b).astype(np.int64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"agreement needs co-located (N, T) indices, got {a.shape} and {b.shape}")
    m = np.ones(a.shape, bool) if mask is None else _np(mask).astype(bool)
    if m.shape != a.shape:
        raise ValueError(f"mask must have the indices' shape {a.shape}, got {m.shape}")
    return a, b, m


def same_second_agreement(idx_a, idx_b, mask=None) -> float:
    """Fraction of (clip, second) positions (within `mask`) where both modalities pick the same code.

    idx_a, idx_b: (N, T) codes of the same clips; mask: (N, T) bool or None (all). NaN if empty.
    """
    a, b, m = _pair(idx_a, idx_b, mask)
    return float((a == b)[m].mean()) if m.any() else float("nan")


def clip_modes(idx, n_codes: int, mask=None) -> np.ndarray:
    """Most frequent code of each clip over the seconds in `mask` (smallest on ties, as
    `hdcid.model.quantizer.code_agreement`); -1 for a clip without any second in the mask.

    idx: (N, T) -> (N,) int64.
    """
    k = _np(idx).astype(np.int64)
    m = np.ones(k.shape, bool) if mask is None else _np(mask).astype(bool)
    counts = np.zeros((k.shape[0], n_codes), np.int64)  # (N, M)
    rows = np.broadcast_to(np.arange(k.shape[0])[:, None], k.shape)
    np.add.at(counts, (rows[m], k[m]), 1)
    mode = counts.argmax(1)
    mode[counts.sum(1) == 0] = -1
    return mode


def clip_agreement(idx_a, idx_b, n_codes: int, mask=None) -> float:
    """Share of clips whose most frequent code is the same in both modalities (the original's
    `equal_num` per clip, on two modalities; seconds restricted to `mask`). NaN if no clip."""
    a, b, m = _pair(idx_a, idx_b, mask)
    ma, mb = clip_modes(a, n_codes, m), clip_modes(b, n_codes, m)
    keep = ma >= 0
    return float((ma[keep] == mb[keep]).mean()) if keep.any() else float("nan")


def code_shares(idx, n_codes: int, mask=None) -> np.ndarray:
    """Share of the seconds (within `mask`) that each code takes: (N, T) -> (M,) summing to 1."""
    k = _np(idx).astype(np.int64)
    m = np.ones(k.shape, bool) if mask is None else _np(mask).astype(bool)
    c = np.bincount(k[m], minlength=n_codes).astype(np.float64)
    return c / max(c.sum(), 1.0)


def modality_usage(indices: Mapping[str, object], n_codes: int, mask=None) -> pd.DataFrame:
    """One row per modality: codes used, max share of one code (collapse when near 1), perplexity,
    and codes owned (used by this modality and by none of the others given).

    indices: {m: (N, T)} codes of one level (same clips when a mask is given).
    """
    shares = {m: code_shares(v, n_codes, mask) for m, v in indices.items()}
    rows = []
    for m, p in shares.items():
        others = np.zeros(n_codes, bool)
        for o, q in shares.items():
            if o != m:
                others |= q > 0
        nz = p[p > 0]
        rows.append(
            dict(
                modality=m,
                codes_used=int((p > 0).sum()),
                max_share=float(p.max()),
                perplexity=float(np.exp(-(nz * np.log(nz)).sum())) if nz.size else 0.0,
                codes_owned=int(((p > 0) & ~others).sum()),
                shared_codes=int(((p > 0) & others).sum()),
            )
        )
    return pd.DataFrame(rows).set_index("modality")


def digit_top_codes(
    idx_a,
    idx_b,
    labels,
    n_codes: int,
    k: int = 3,
    names: tuple[str, str] = ("audio", "video"),
    background: bool = False,
) -> pd.DataFrame:
    """Per class: the k codes each modality uses most on its seconds and their overlap.

    idx_a, idx_b: (N, T) codes; labels: (N, T) class per second (negative = background, skipped
    unless `background`, which adds a last row "background" over those seconds: a segment head can
    only tell event from background seconds across modalities if both modalities' background
    seconds share codes). Returns one row per class with columns `<a> top` / `<b> top` (lists of codes, most used
    first), `<a> top share` / `<b> top share` (share of the class's seconds on the first code),
    `overlap` (codes in both top-k lists), `n_overlap` and `agreement` (same-second agreement on
    this class's seconds).
    """
    a, b, _ = _pair(idx_a, idx_b)
    y = _np(labels).astype(np.int64)
    if y.shape != a.shape:
        raise ValueError(f"labels must be (N, T) like the indices {a.shape}, got {y.shape}")
    na, nb = names
    rows = []
    classes = [(c, y == c) for c in sorted(set(y[y >= 0].tolist()))]
    if background and (y < 0).any():
        classes.append(("background", y < 0))
    for c, sel in classes:
        pa, pb = code_shares(a, n_codes, sel), code_shares(b, n_codes, sel)
        ta = [int(i) for i in np.argsort(-pa, kind="stable")[:k] if pa[i] > 0]
        tb = [int(i) for i in np.argsort(-pb, kind="stable")[:k] if pb[i] > 0]
        ov = [i for i in ta if i in tb]
        rows.append(
            {
                "class": c,
                f"{na} top": ta,
                f"{nb} top": tb,
                f"{na} top share": float(pa[ta[0]]) if ta else 0.0,
                f"{nb} top share": float(pb[tb[0]]) if tb else 0.0,
                "overlap": ov,
                "n_overlap": len(ov),
                "agreement": float((a == b)[sel].mean()),
            }
        )
    return pd.DataFrame(rows).set_index("class")


def unified_summary(idx_a, idx_b, n_codes: int, mask=None) -> dict:
    """The headline numbers of one level on the same clips: same-second agreement, clip-level
    agreement, codes used and max code share per modality (keys `agreement`, `clip_agreement`,
    `used_a`, `used_b`, `max_share_a`, `max_share_b`)."""
    u = modality_usage({"a": idx_a, "b": idx_b}, n_codes, mask)
    return dict(
        agreement=same_second_agreement(idx_a, idx_b, mask),
        clip_agreement=clip_agreement(idx_a, idx_b, n_codes, mask),
        used_a=int(u.loc["a", "codes_used"]),
        used_b=int(u.loc["b", "codes_used"]),
        max_share_a=float(u.loc["a", "max_share"]),
        max_share_b=float(u.loc["b", "max_share"]),
    )


def heldout_agreement(
    model, clipset, pair: tuple[str, str] = ("audio", "video"), foreground: bool = True
) -> pd.DataFrame:
    """`unified_summary` per level of a model on held-out clips (e.g. AVE test), eval mode.

    Encodes both modalities with `hdcid.downstream.cache.encode_clipset` (eval mode, the model's
    mode is restored, no buffer changes); `foreground` keeps the seconds whose label is not
    background. Returns one row per level (1-based index `level`).
    """
    from hdcid.downstream.cache import encode_clipset

    idx = {m: encode_clipset(model, clipset.features(m), m)[1] for m in pair}  # (N, T, L)
    lab = np.asarray(clipset.labels)
    mask = lab.argmax(-1) != lab.shape[-1] - 1 if foreground else None  # (N, T)
    n_codes = int(model.codebooks().shape[1])
    rows = [
        dict(level=lv + 1, **unified_summary(idx[pair[0]][..., lv], idx[pair[1]][..., lv], n_codes, mask))
        for lv in range(idx[pair[0]].shape[-1])
    ]
    return pd.DataFrame(rows).set_index("level")


def agreement_over_epochs(checkpoints, clipset, device=None, **kw) -> pd.DataFrame:
    """`heldout_agreement` of every epoch checkpoint (`PretrainResult.checkpoints`, files
    `epoch-{k}.pt`): one row per (epoch (0-based), level). Loads each file on the CPU (or
    `device`); never touches the live model."""
    from hdcid.model.checkpoint import load_checkpoint

    out = []
    for path in checkpoints:
        ck = load_checkpoint(path, map_location=device or "cpu")
        df = heldout_agreement(ck["model"].eval(), clipset, **kw).reset_index()
        df.insert(0, "epoch", int(ck["epoch"]))
        out.append(df)
    if not out:
        raise ValueError("agreement_over_epochs: no checkpoints given")
    return pd.concat(out, ignore_index=True)


SHARED_AT = 0.5  # same-second agreement from which the notebooks say "share codes" (issue 8 target)
PARTLY_AT = 0.2  # ... "share some codes"; below: "do not share codes"
TREND_EPS = 0.05  # a change of agreement over training smaller than this is "flat"
COLLAPSE_AT = 0.5  # max share of one code from which a level counts as collapsed


def sharing_verdict(agreement: float) -> str:
    """Words for a same-second agreement: 'share codes' (>= SHARED_AT), 'share some codes'
    (>= PARTLY_AT), 'do not share codes'."""
    if agreement >= SHARED_AT:
        return "share codes"
    return "share some codes" if agreement >= PARTLY_AT else "do not share codes"


def trend_verdict(first: float, last: float) -> str:
    """'rises' / 'falls' / 'stays flat' for a change from first to last (TREND_EPS)."""
    if last - first > TREND_EPS:
        return "rises"
    return "falls" if first - last > TREND_EPS else "stays flat"


def agreement_claims(per_epoch: Mapping[str, pd.DataFrame]) -> list[dict]:
    """The numbers a notebook states about audio-video agreement and the words it uses for them.

    per_epoch: {model name: `agreement_over_epochs` frame}. One dict per (model, level): model,
    level, first / last (same-second agreement after the first / last epoch), clip (clip-level
    agreement, last epoch), max_share (largest share of one code in audio or video over all
    epochs), max_share_epoch (the epoch it occurs in), max_share_later (the largest share in the
    epochs after it, None after the last), and the verdicts `sharing` (`sharing_verdict(last)`), `trend`
    (`trend_verdict(first, last)`), `collapsed` (max_share >= COLLAPSE_AT) and `sentence`.
    Notebooks print these as a `CLAIMS` JSON line and display the sentences, so a test can check
    that the prose agrees with the numbers.
    """
    out = []
    for name, df in per_epoch.items():
        for level, g in df.sort_values("epoch").groupby("level"):
            first, last = float(g["agreement"].iloc[0]), float(g["agreement"].iloc[-1])
            clip = float(g["clip_agreement"].iloc[-1])
            per_epoch_share = g[["max_share_a", "max_share_b"]].to_numpy().max(1)  # (epochs,)
            worst = int(per_epoch_share.argmax())
            share = float(per_epoch_share[worst])
            later = float(per_epoch_share[worst + 1 :].max()) if worst + 1 < len(g) else None
            c = dict(
                model=name,
                level=int(level),
                first=first,
                last=last,
                clip=clip,
                max_share=share,
                max_share_epoch=int(g["epoch"].iloc[worst]),
                max_share_later=later,
                sharing=sharing_verdict(last),
                trend=trend_verdict(first, last),
                collapsed=bool(share >= COLLAPSE_AT),
            )
            where = f" after epoch {worst + 1} of {len(g)}" if len(g) > 1 else ""
            if c["collapsed"]:
                tail = (
                    f" ({share:.0%} of the held-out seconds on one code{where}: the codebook had not yet "
                    "separated them" + (f"; at most {later:.2f} in the epochs after)." if later is not None else ").")
                )
                if worst == 0 and later is not None and later < COLLAPSE_AT:
                    tail += (
                        " A codebook started from the data (`TrainConfig.data_init`, on in the tiny presets) "
                        "separates them within the first epoch on the demo (docs/unified-codes.md)."
                    )
            else:
                tail = f"{where}."
            c["sentence"] = (
                f"{name} level {int(level)}: audio and video {c['sharing']} — same-second agreement "
                f"{c['trend']} over training ({first:.2f} after the first epoch, {last:.2f} after the "
                f"last), and {clip:.0%} of held-out "
                f"clips have the same most frequent code in both; the largest share of one code is "
                f"{share:.2f}" + tail
            )
            out.append(c)
    return out


def check_claims(claims: list[dict]) -> list[str]:
    """Contradictions between each claim's words and its numbers ([] when consistent): used by
    the tests on executed notebooks."""
    bad = []
    for c in claims:
        want = (sharing_verdict(c["last"]), trend_verdict(c["first"], c["last"]), c["max_share"] >= COLLAPSE_AT)
        if (c["sharing"], c["trend"], c["collapsed"]) != want:
            bad.append(
                f"{c['model']} L{c['level']}: says {c['sharing']!r}/{c['trend']!r}/collapsed="
                f"{c['collapsed']} but the numbers give {want}"
            )
        words = [c["sharing"], c["trend"], f"{c['first']:.2f}", f"{c['last']:.2f}", f"{c['max_share']:.2f}"]
        if c["collapsed"]:
            words.append("on one code")
        for word in words:
            if word not in c["sentence"]:
                bad.append(f"{c['model']} L{c['level']}: sentence lacks {word!r}")
    return bad


def code_digit_readout(
    train_codes: Mapping[str, object], train_labels, test_codes: Mapping[str, object], test_labels, n_codes: int
) -> dict:
    """How far per-second codes can agree, given how well each modality's codes tell the class.

    Each code of each modality is mapped to the class it most often carries on the labelled
    training seconds (labels (N, T) class, negative = background, skipped); on the test seconds:
    `acc_<m>` share of seconds whose code maps to the true class; `class_agreement` share where
    both modalities' codes map to the same class (an agreement that ignores WHICH code); and
    `code_agreement` (same code). class_agreement >> code_agreement means each modality uses its
    own codes for a class (a modality offset); both low means the seconds themselves are hard.
    train_codes / test_codes: {m: (N, T)} for exactly two modalities.
    """
    (ma, mb) = list(train_codes)
    ytr, yte = _np(train_labels).astype(np.int64), _np(test_labels).astype(np.int64)
    fg_tr, fg_te = ytr >= 0, yte >= 0
    n_cls = int(max(ytr.max(), yte.max())) + 1
    out, mapped = {}, {}
    for m in (ma, mb):
        k_tr, k_te = _np(train_codes[m]).astype(np.int64), _np(test_codes[m]).astype(np.int64)
        table = np.zeros((n_codes, n_cls), np.int64)
        np.add.at(table, (k_tr[fg_tr], ytr[fg_tr]), 1)
        code_cls = np.where(table.sum(1) > 0, table.argmax(1), -1)  # (M,)
        mapped[m] = code_cls[k_te[fg_te]]
        out[f"acc_{m}"] = float((mapped[m] == yte[fg_te]).mean())
    out["class_agreement"] = float(((mapped[ma] == mapped[mb]) & (mapped[ma] >= 0)).mean())
    out["code_agreement"] = same_second_agreement(test_codes[ma], test_codes[mb], fg_te)
    return out


def background_codes_across(src_codes, src_labels, tgt_codes, tgt_labels, n_codes: int) -> dict:
    """Can a segment head trained on one modality tell background seconds in the other?

    src_codes, tgt_codes: (N, T) codes of the training (source) and test (target) modality;
    src_labels, tgt_labels: (N, T) class per second, negative = background (shapes may differ
    between source and target). The source's *background codes* are the codes whose seconds are
    mostly background in the source. Returns `bg_codes` (how many), `bg_on_bg` (share of the
    target's background seconds on a source background code: high is good) and `event_on_bg`
    (share of the target's event seconds on one: low is good).
    """
    ks, ys = _np(src_codes).astype(np.int64).ravel(), _np(src_labels).astype(np.int64).ravel()
    kt, yt = _np(tgt_codes).astype(np.int64).ravel(), _np(tgt_labels).astype(np.int64).ravel()
    if ks.shape != ys.shape or kt.shape != yt.shape:
        raise ValueError(
            f"codes and labels differ in size: source {ks.shape} vs {ys.shape}, target {kt.shape} vs {yt.shape}"
        )
    bg_count = np.bincount(ks[ys < 0], minlength=n_codes)  # (M,)
    all_count = np.bincount(ks, minlength=n_codes)
    is_bg = bg_count * 2 > all_count  # (M,) more than half of the code's seconds are background
    tb = yt < 0
    return {
        "bg_codes": int(is_bg.sum()),
        "bg_on_bg": float(is_bg[kt[tb]].mean()) if tb.any() else float("nan"),
        "event_on_bg": float(is_bg[kt[~tb]].mean()) if (~tb).any() else float("nan"),
    }
