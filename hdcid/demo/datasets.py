"""Compose the five AV-Digits datasets in the ORIGINAL release formats (hdcid.data writers).

Each `compose_*` draws its clips (classes, event spans, splits) from the shared
`numpy.random.Generator` and writes one release layout; `compose` runs them in a fixed order, so
the same seed gives identical files. Sizes: `SIZES` times the build's `scale` (min `MIN_CLIPS`).
Video comes from a source with `segments` / `overlay` (hdcid.demo.video.DigitVideo, or a
Gaussian stand-in), audio from `hdcid.demo.sources.AudioDigits`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from hdcid.data.ave import write_ave
from hdcid.data.ave_avvp import write_ave_avvp
from hdcid.data.avvp import write_avvp
from hdcid.data.pretrain import write_pretrain
from hdcid.data.ucf_vgg import write_ucf_vgg
from hdcid.demo.sources import AudioDigits, prompt_for, prompt_key
from hdcid.demo.synthetic import DIGIT_WORDS

T = 10
SIZES = {"pretrain": 2000, "ave": 1000, "avvp": 2000, "ucf": 400, "vggsound": 400}  # issue 8: avvp was 600
MIN_CLIPS = 20
AVE_NAMES = [f"digit {w}" for w in DIGIT_WORDS]
AVVP_NAMES = [w.capitalize() for w in DIGIT_WORDS]
UCF_NAMES = [f"Writing{w.capitalize()}" for w in DIGIT_WORDS]
VGG_NAMES = [f"saying {w}" for w in DIGIT_WORDS]
PRETRAIN_NAMES = [f"spoken and written {w}" for w in DIGIT_WORDS]
N_SHARED = 8  # AVE -> AVVP subset classes: digits 0..7


def _n(name: str, scale: float) -> int:
    return max(MIN_CLIPS, int(round(SIZES[name] * scale)))


def _balanced(n: int, rng: np.random.Generator, k: int = 10) -> np.ndarray:
    cls = np.arange(n) % k
    rng.shuffle(cls)
    return cls


def _by_pool(src, seg: np.ndarray, pools: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """seg (n, T) digits, pools (n,) names -> features (n, T, ...) drawn per pool."""
    out = None
    for p in sorted(set(pools.tolist())):
        sel = np.flatnonzero(pools == p)
        x = src.segments(seg[sel].reshape(-1), p, rng)
        x = x.reshape((len(sel), seg.shape[1]) + x.shape[1:])
        if out is None:
            out = np.empty((len(seg),) + x.shape[1:], dtype=np.float32)
        out[sel] = x
    return out


def _splits(n: int, rng: np.random.Generator, fractions=(0.7, 0.15)) -> np.ndarray:
    """(n,) in {train, val, test} with the given train/val fractions (rest test)."""
    n_tr, n_va = int(round(n * fractions[0])), int(round(n * fractions[1]))
    s = np.array(["train"] * n_tr + ["val"] * n_va + ["test"] * (n - n_tr - n_va))
    rng.shuffle(s)
    return s


def compose_pretrain(root, rng, n, video, audio, prompts, prompt_variety=False, spans=True) -> list[Path]:
    """spans=True (default since issue 8): each clip's event is one contiguous span of 3-10 seconds,
    background elsewhere (as AVE), so the encoders learn that seconds of one clip differ;
    spans=False: each second is background with probability 0.1 (before issue 8)."""
    cls = _balanced(n, rng)
    if spans:
        length = rng.integers(3, T + 1, size=n)
        start = rng.integers(0, T - length + 1)
        t = np.arange(T)[None]
        rel = ((t >= start[:, None]) & (t < (start + length)[:, None])).astype(np.float32)  # (n, T)
    else:
        rel = (rng.uniform(size=(n, T)) >= 0.1).astype(np.float32)  # occasional background seconds
    seg = np.where(rel > 0, cls[:, None], -1)
    pools = np.full(n, "train")
    v, a = _by_pool(video, seg, pools, rng), _by_pool(audio, seg, pools, rng)
    ids = [f"pt{i:09d}" for i in range(n)]
    split = _splits(n, rng, (0.8, 0.1))
    rows = [(PRETRAIN_NAMES[c], i, s) for c, i, s in zip(cls, ids, split)]
    clip_prompts = None
    if prompt_variety:  # hdcid extension: a random prompt of the class per clip
        lists = [prompts[prompt_key(prompts, d)] for d in range(10)]
        clip_prompts = [lists[c][rng.integers(len(lists[c]))] for c in cls]
    return write_pretrain(
        root,
        PRETRAIN_NAMES,
        {PRETRAIN_NAMES[d]: prompt_for(prompts, d) for d in range(10)},
        rows,
        dict(zip(ids, a)),
        dict(zip(ids, v)),
        dict(zip(ids, rel)),
        clip_prompts,
    )


def compose_ave(root, rng, n, video, audio):
    """One event per clip over a contiguous span; the rest background. Returns files, split, cls."""
    cls = _balanced(n, rng)
    length = rng.integers(3, T + 1, size=n)
    start = rng.integers(0, T - length + 1)
    t = np.arange(T)[None]
    fg = (t >= start[:, None]) & (t < (start + length)[:, None])  # (n, T)
    seg = np.where(fg, cls[:, None], -1)
    split = _splits(n, rng)
    pools = np.where(split == "train", "train", "heldout")
    # audio pools are the split names: human speakers (--fsdd) are disjoint across train/val/test
    v, a = _by_pool(video, seg, pools, rng), _by_pool(audio, seg, split, rng)
    labels = np.zeros((n, T, 11), dtype=np.float32)
    labels[np.arange(n)[:, None], t, np.where(fg, cls[:, None], 10)] = 1.0
    orders = {s: np.flatnonzero(split == s) for s in ("train", "val", "test")}
    return write_ave(root, v, a, labels, orders, classes=AVE_NAMES), split, cls


def _events(rng, k_max=3, overlap=False):
    """1..k_max events (onset, offset, digit) in [0, T). overlap=False: disjoint events with at
    least one second between them (2k distinct boundaries), so every second shows/says at most
    one digit; True: independent onsets and lengths that may overlap (before issue 8)."""
    k = rng.integers(1, k_max + 1)
    if overlap:
        on = rng.integers(0, T, size=k)
        off = np.minimum(T, on + rng.integers(1, T + 1, size=k))
    else:
        cuts = np.sort(rng.choice(T + 1, size=2 * k, replace=False))
        on, off = cuts[0::2], cuts[1::2]
    return [(int(a), int(b), int(c)) for a, b, c in zip(on, off, rng.integers(0, 10, size=k))]


def compose_avvp(root, rng, n, video, audio, overlap=False):
    """1-3 events per modality; audio and visual events may differ. Returns files and rows.

    overlap=False (default since issue 8): events of one modality never overlap, so each second's
    audio is one spoken digit (or noise), as a listener would label it. overlap=True restores the
    earlier composition, where overlapping digits were averaged into one second's audio features
    (a mixture no class resembles) and pixel-max overlaid in the video; the segment heads then
    predicted almost no event (micro F1 without background 0-17 %).
    """
    ytids = [f"avvp{i:07d}" for i in range(n)]
    vis_ev, aud_ev = [], []
    for i in range(n):
        ve, ae = _events(rng, overlap=overlap), _events(rng, overlap=overlap)
        if i == 0:  # guarantee multi-event rows
            ve, ae = [(0, 3, 1), (5, 7, 4)], [(1, 4, 3), (5, 9, 2)]
        if rng.uniform() < 0.5:  # share the first visual event's class
            ae[0] = (ae[0][0], ae[0][1], ve[0][2])
        vis_ev.append(ve)
        aud_ev.append(ae)
    cover = lambda ev: [[c for on, off, c in ev if on <= t < off] for t in range(T)]  # noqa: E731
    vsets = [s for ev in vis_ev for s in cover(ev)]  # n*T lists of digits
    v = video.overlay(vsets, "heldout", rng).reshape((n, T, 7, 7, -1))
    asets = [s for ev in aud_ev for s in cover(ev)]
    pair_seg = np.repeat(np.arange(len(asets)), [max(1, len(s)) for s in asets])
    pair_dig = np.concatenate([np.array(s or [-1]) for s in asets])
    x = audio.segments(pair_dig, "heldout", rng)  # (pairs, A)
    acc = np.zeros((len(asets), x.shape[1]), dtype=np.float32)
    np.add.at(acc, pair_seg, x)
    a = (acc / np.bincount(pair_seg, minlength=len(asets))[:, None]).reshape(n, T, -1)
    fnames = [f"{y}_0_10" for y in ytids]
    named = lambda ev: [(on, off, AVVP_NAMES[c]) for on, off, c in ev]  # noqa: E731
    vmask, amask = rng.uniform(size=n) < 0.9, rng.uniform(size=n) < 0.9
    vmask[0] = amask[0] = True
    vrows = [(f, named(e)) for f, e, m in zip(fnames, vis_ev, vmask) if m]
    arows = [(f, named(e)) for f, e, m in zip(fnames, aud_ev, amask) if m]
    files = write_avvp(root, AVVP_NAMES, vrows, arows, dict(zip(ytids, v)), dict(zip(ytids, a)))
    return files, vrows, arows


def compose_ave_avvp(root, ave_split, ave_cls, n_ave, vrows, arows):
    """8 shared classes: AVE train clips of digits 0..7 + AVVP rows whose events are all 0..7."""
    names = AVVP_NAMES[:N_SHARED]
    order = np.flatnonzero((ave_split == "train") & (ave_cls < N_SHARED))
    from hdcid.data.ave import read_ave_rows

    _, _, ave_labels = read_ave_rows(root, order, n_label_cols=11)  # (n, T, 11)
    labels = np.zeros((n_ave, T, N_SHARED + 1), dtype=np.float32)
    labels[order, :, :N_SHARED] = ave_labels[:, :, :N_SHARED]
    labels[order, :, N_SHARED] = ave_labels[:, :, 10]
    keep = lambda rows: [(f, ev) for f, ev in rows if all(e[2] in names for e in ev)]  # noqa: E731
    return write_ave_avvp(root, names, order, labels, keep(vrows), keep(arows))


def compose_ucf_vgg(root, rng, n_ucf, n_vgg, video, audio):
    ucls, vcls = _balanced(n_ucf, rng), _balanced(n_vgg, rng)
    tu = rng.integers(6, 15, size=n_ucf)  # varying T for UCF video
    ucf_ids = [f"v_{UCF_NAMES[c]}_g{i // 10 % 25 + 1:02d}_c{i:04d}" for i, c in enumerate(ucls)]
    seg = video.segments(np.repeat(ucls, tu), "ucf", rng)  # (sum T, 7, 7, C), split per clip below
    ucf_video = dict(zip(ucf_ids, np.split(seg, np.cumsum(tu)[:-1])))
    ucf_rows = [(UCF_NAMES[c], i) for c, i in zip(ucls, ucf_ids)]
    ta = rng.integers(7, 13, size=n_vgg)  # varying T for VGGSound audio
    split = _splits(n_vgg, rng)
    vgg_ids = [f"vgg{i:08d}" for i in range(n_vgg)]
    vgg_audio = dict(zip(vgg_ids, np.split(audio.segments(np.repeat(vcls, ta), "heldout", rng), np.cumsum(ta)[:-1])))
    vgg_video = dict(zip(vgg_ids, video.segments(np.repeat(vcls, T), "vgg", rng).reshape(n_vgg, T, 7, 7, -1)))
    vgg_rows = [(VGG_NAMES[c], i, s) for c, i, s in zip(vcls, vgg_ids, split)]
    return write_ucf_vgg(root, UCF_NAMES, VGG_NAMES, ucf_rows, ucf_video, vgg_rows, vgg_audio, vgg_video)


def compose(
    root: Path,
    seed: int,
    scale: float,
    video_source,
    audio_bank: dict,
    prompts: dict,
    prompt_variety: bool = False,
    human: dict | None = None,
    human_share: float = 0.3,
    pretrain_scale: float | None = None,
) -> dict:
    """Write all five datasets under `root` from the given sources; returns {dataset: info}.
    human: recorded speech mixed into the audio pools (`human_bank`), or None; human_share: the
    probability that a second is human where a pool has human rows of its digit; pretrain_scale:
    the pretraining set's own scale (None: `scale`)."""
    rng = np.random.default_rng(seed)
    audio = AudioDigits(audio_bank, human=human, human_share=human_share)
    info: dict = {}

    def record(name, files, clips, t0):
        rel = {
            str(Path(f).relative_to(root))
            if Path(f).suffix != ".zip"
            else str(Path(f).parent.relative_to(root) / "*.zip")
            for f in files
        }
        info[name] = {
            "clips": clips,
            "files": len(files),
            "paths": sorted(rel),
            "bytes": int(sum(Path(f).stat().st_size for f in files)),
            "seconds": round(time.perf_counter() - t0, 2),
        }

    t0 = time.perf_counter()
    n = _n("pretrain", scale if pretrain_scale is None else pretrain_scale)
    record("pretrain", compose_pretrain(root, rng, n, video_source, audio, prompts, prompt_variety), n, t0)
    t0 = time.perf_counter()
    n_ave = _n("ave", scale)
    files, ave_split, ave_cls = compose_ave(root, rng, n_ave, video_source, audio)
    record("ave", files, n_ave, t0)
    info["ave"]["splits"] = {s: int((ave_split == s).sum()) for s in ("train", "val", "test")}
    t0 = time.perf_counter()
    n = _n("avvp", scale)
    files, vrows, arows = compose_avvp(root, rng, n, video_source, audio)
    record("avvp", files, n, t0)
    info["avvp"].update(visual_rows=len(vrows), audio_rows=len(arows))
    t0 = time.perf_counter()
    files = compose_ave_avvp(root, ave_split, ave_cls, n_ave, vrows, arows)
    record("ave_avvp", files, int(((ave_split == "train") & (ave_cls < N_SHARED)).sum()), t0)
    t0 = time.perf_counter()
    n_u, n_v = _n("ucf", scale), _n("vggsound", scale)
    record("ucf_vgg", compose_ucf_vgg(root, rng, n_u, n_v, video_source, audio), n_u + n_v, t0)
    return info
