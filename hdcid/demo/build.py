"""Build the AV-Digits demo corpus in the ORIGINAL release formats (so the same readers serve it).

    python -m hdcid.demo.build [--root DIR] [--seed 0] [--scale 1.0] [--quick] [--fsdd DIR]

Video: sklearn handwritten digits through a fixed random conv bank (hdcid.demo.video).
Audio: committed per-second features of synthetic spoken digits (`data/demo_assets/audio_digits.npz`,
features: hdcid.demo.audio), optionally mixed with recorded human speech (`--fsdd DIR`).
Text: class prompts (`data/demo_assets/text_prompts.json`), embedded at read time by a TextBackend.
Everything is drawn from one `numpy.random.Generator(seed)`; same seed -> identical files.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hdcid.data.ave import write_ave
from hdcid.data.ave_avvp import write_ave_avvp
from hdcid.data.avvp import write_avvp
from hdcid.data.pretrain import write_pretrain
from hdcid.data.ucf_vgg import write_ucf_vgg
from hdcid.demo.synthetic import DIGIT_WORDS, stand_in_audio_bank, stand_in_prompts
from hdcid.utils import demo_root, repo_root

T = 10
SIZES = {"pretrain": 2000, "ave": 1000, "avvp": 2000, "ucf": 400, "vggsound": 400}  # issue 8: avvp was 600
MIN_CLIPS = 20
AVE_NAMES = [f"digit {w}" for w in DIGIT_WORDS]
AVVP_NAMES = [w.capitalize() for w in DIGIT_WORDS]
UCF_NAMES = [f"Writing{w.capitalize()}" for w in DIGIT_WORDS]
VGG_NAMES = [f"saying {w}" for w in DIGIT_WORDS]
PRETRAIN_NAMES = [f"spoken and written {w}" for w in DIGIT_WORDS]
N_SHARED = 8  # AVE -> AVVP subset classes: digits 0..7


def assets_dir() -> Path:
    return repo_root() / "data" / "demo_assets"


def load_audio_bank(path: str | Path | None = None) -> dict[str, np.ndarray] | None:
    """The committed spoken-digit features (see module doc), or None when the file is absent."""
    path = Path(path) if path else assets_dir() / "audio_digits.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def load_prompts(path: str | Path | None = None) -> dict[str, list[str]] | None:
    path = Path(path) if path else assets_dir() / "text_prompts.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _prompt_key(prompts: dict[str, list[str]], digit: int) -> str:
    word = DIGIT_WORDS[digit]
    for key in prompts:
        if word in key.lower().replace("_", " ").split():
            return key
    raise KeyError(f"text_prompts.json: no class name containing {word!r}; found {sorted(prompts)}")


def prompt_for(prompts: dict[str, list[str]], digit: int) -> str:
    """The first prompt of the class whose name contains the digit's word (e.g. 'seven')."""
    return prompts[_prompt_key(prompts, digit)][0]


class AudioDigits:
    """Per-second audio vectors drawn from the bank by digit (-1 = noise-only) and pool, with a
    small jitter (5% of each dimension's std) so no two segments are identical.

    Pools: "train" (train voices), "heldout" (held-out voices), and "val" / "test" (held-out
    voices too; they differ only in the human speakers). `human` (optional, from
    `human_bank`): standardised features of recorded speech with a speaker -> pool assignment;
    where a pool has human rows of a digit, each segment is human with probability
    `human_share` (0.3), so human speakers are disjoint across train / val / test.
    """

    def __init__(
        self,
        bank: dict[str, np.ndarray],
        jitter: float = 0.05,
        standardize: bool = True,
        human: dict | None = None,
        human_share: float = 0.3,
    ):
        from hdcid.demo.audio import bank_stats

        self.features = bank["features"].astype(np.float32)  # (U, A)
        if standardize:  # fixed per-dimension statistics of the bank (VGGish is whitened too)
            mean, std = bank_stats(bank)
            self.features = (self.features - mean) / std
        self.scale = jitter * self.features.std(axis=0)  # (A,)
        digit, split = bank["digit"].astype(np.int64), bank["voice_split"].astype(str)
        self.pools = {
            p: {d: np.flatnonzero((digit == d) & (split == p)) for d in range(-1, 10)} for p in ("train", "heldout")
        }
        for table in self.pools.values():  # noise-only seconds need not belong to a voice split
            if table[-1].size == 0:
                table[-1] = np.flatnonzero(digit == -1)
        for p, table in self.pools.items():
            empty = [d for d, ix in table.items() if ix.size == 0]
            if empty:
                raise ValueError(f"audio bank: voice split {p!r} has no rows for digits {empty}")
        self.pools["val"] = self.pools["test"] = self.pools["heldout"]
        self.human_share = human_share
        self.human: dict[str, dict[int, np.ndarray]] = {}
        if human is not None:  # append the human rows after the synthetic ones
            base = len(self.features)
            self.features = np.concatenate([self.features, human["features"].astype(np.float32)])
            hpool = np.asarray(human["pool"]).astype(str)
            hd = np.asarray(human["digit"]).astype(np.int64)
            for p in ("train", "val", "test"):
                self.human[p] = {d: base + np.flatnonzero((hpool == p) & (hd == d)) for d in range(10)}
            self.human["heldout"] = {
                d: np.concatenate([self.human["val"][d], self.human["test"][d]]) for d in range(10)
            }

    def segments(self, digits, pool: str, rng: np.random.Generator) -> np.ndarray:
        """(n,) digits -> (n, A) features from voices of `pool` ("train" | "heldout" | "val" | "test")."""
        digits = np.asarray(digits).reshape(-1)
        rows = np.empty(len(digits), dtype=np.int64)
        human = self.human.get(pool, {})
        for d in range(-1, 10):
            sel = np.flatnonzero(digits == d)
            if sel.size:
                rows[sel] = rng.choice(self.pools[pool][d], size=sel.size)
                if d in human and human[d].size:
                    pick = sel[rng.uniform(size=sel.size) < self.human_share]
                    rows[pick] = rng.choice(human[d], size=pick.size)
        x = self.features[rows]
        return (x + self.scale * rng.normal(size=x.shape)).astype(np.float32)


FSDD_POOLS = ("train", "val", "test")


def fsdd_assignment(speakers, seed: int = 0) -> dict[str, str]:
    """Speakers -> pool: with >= 3 speakers one (seeded) speaker each for val and test, the rest
    train; with 2, one train and one test; with 1, train."""
    sp = sorted(speakers)
    order = [sp[i] for i in np.random.default_rng(seed + 7).permutation(len(sp))]
    if len(order) >= 3:
        return {**{s: "train" for s in order[:-2]}, order[-2]: "val", order[-1]: "test"}
    return dict(zip(order, ["train", "test"][: len(order)]))


def human_bank(
    fsdd, bank: dict[str, np.ndarray], assignment: dict[str, str] | None = None, seed: int = 0, noisy_draws: int = 2
) -> dict:
    """Recorded speech (a folder, see hdcid.data.speech.read_speech, or a SpeechSet) -> {features
    (H, 128) standardised with the bank's statistics, digit (H,), speaker (H,), pool (H,),
    assignment, summary}. Each recording gives 1 + `noisy_draws` rows: clean (exactly
    `audio_features`) and with noise at 10-30 dB SNR (seeded), as the synthetic bank has noise.
    assignment: speaker -> "train" | "val" | "test" | "exclude" (default `fsdd_assignment`);
    excluded speakers are dropped."""
    from hdcid.data.speech import SpeechSet, read_speech
    from hdcid.demo.audio import add_noise, bank_stats, logmel_stats, windows

    s = fsdd if isinstance(fsdd, SpeechSet) else read_speech(fsdd)
    assignment = dict(assignment) if assignment else fsdd_assignment(s.speakers, seed)
    unknown = {sp: p for sp, p in assignment.items() if p not in FSDD_POOLS + ("exclude",)}
    if unknown:
        raise ValueError(f"fsdd assignment: pools must be train/val/test/exclude, got {unknown}")
    for sp in s.speakers:
        assignment.setdefault(sp, "exclude")
    keep = np.array([assignment[sp] != "exclude" for sp in s.speaker])
    s = s.subset(keep)
    mean, std = bank_stats(bank)
    win = windows(s.waves, s.sample_rate)  # (H0, WIN)
    rng = np.random.default_rng(seed + 11)
    win = np.concatenate([win] + [add_noise(win, rng) for _ in range(noisy_draws)])
    rep = 1 + noisy_draws
    return dict(
        features=(logmel_stats(win) - mean) / std,
        digit=np.tile(s.digit, rep),
        speaker=np.tile(s.speaker, rep),
        pool=np.tile([assignment[sp] for sp in s.speaker], rep),
        assignment=assignment,
        summary=s.summary(),
    )


def audio_sources(bank: dict[str, np.ndarray] | None, human: dict | None) -> dict:
    """{"synthetic": {synthesiser: n voices}, "human": {pool: [speakers]} | None, "text": one line}."""
    synth: dict[str, int] = {}
    if bank is not None:
        for v in sorted(set(bank["voice"].astype(str).tolist()) - {"background"}):
            name = v.split(":")[0] if ":" in v else "espeak-ng"
            name = {"espeak": "espeak-ng"}.get(name, name)
            synth[name] = synth.get(name, 0) + 1
    text = (
        ("synthetic " + ", ".join(f"{k} ({n} voices)" for k, n in synth.items()))
        if synth
        else "Gaussian stand-in (audio asset missing)"
    )
    pools = None
    if human is not None:
        pools = {p: sorted(sp for sp, q in human["assignment"].items() if q == p) for p in FSDD_POOLS}
        text += "; human FSDD recordings (" + ", ".join(f"{p}: {'/'.join(v) or '-'}" for p, v in pools.items()) + ")"
    else:
        text += "; no human speech"
    return {"synthetic": synth, "human": pools, "text": text}


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
        lists = [prompts[_prompt_key(prompts, d)] for d in range(10)]
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
) -> dict:
    """Write all five datasets under `root` from the given sources; returns {dataset: info}.
    human: recorded speech mixed into the audio pools (`human_bank`), or None; human_share: the
    probability that a second is human where a pool has human rows of its digit."""
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
    n = _n("pretrain", scale)
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


def check_scale(scale, what: str = "scale") -> float:
    """`scale` as a positive finite float; "big", -1, 0 or nan raise ValueError naming `what`."""
    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float, np.integer, np.floating))
        or not np.isfinite(scale)
        or scale <= 0
    ):
        raise ValueError(f"{what} must be a positive number (1.0 = the full demo sizes {SIZES}), got {scale!r}")
    return float(scale)


def check_seed(seed, what: str = "seed") -> int:
    """`seed` as an int in [0, 2**32) (numpy's seed range); "abc", 1.5 or -1 raise ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"{what} must be an integer in [0, 2**32), got {type(seed).__name__} {seed!r}")
    return int(seed)


def build_demo(
    root: str | Path | None = None,
    seed: int = 0,
    scale: float = 1.0,
    verbose: bool = False,
    prompt_variety: bool = False,
    fsdd: str | Path | None = None,
    fsdd_assignment: dict[str, str] | None = None,
    human_share: float = 0.3,
) -> dict:
    """Build AV-Digits under `root` (default `hdcid.utils.demo_root()`); returns {dataset: {clips,
    files, paths (relative; zips as <folder>/*.zip), bytes, seconds, ...}} plus "root", "seed",
    "scale", "seconds", "audio_source", "audio_sources", "prompt_source".

    `scale` multiplies every dataset size (min 20 clips each); sizes at 1.0: SIZES.
    `prompt_variety`: give each pretraining clip a random prompt of its class (hdcid extension,
    a `prompt` column in the CSV); default False = one prompt per class as in the original.
    `fsdd`: a folder of recorded spoken digits (FSDD layout or WAVs + labels.csv) mixed into the
    audio pools with speaker-disjoint train / val / test speakers (`fsdd_assignment`: speaker ->
    train | val | test | exclude; default: the `fsdd_assignment` function; `human_share`: the
    probability that a foreground second is human where its pool has human speakers). Never copied: only the
    corpus (git-ignored) holds features derived from them.
    Without the committed assets, stand-in audio/prompts are used (and reported as such).
    Writes `<root>/audio_sources.json`: the sources and the audio standardisation statistics.
    """
    from hdcid.demo.audio import bank_stats
    from hdcid.demo.video import DigitVideo
    from hdcid.utils import atomic_path

    t0 = time.perf_counter()
    scale, seed = check_scale(scale, "build_demo(scale=...)"), check_seed(seed, "build_demo(seed=...)")
    root = Path(root) if root is not None else demo_root()
    root.mkdir(parents=True, exist_ok=True)
    bank, prompts = load_audio_bank(), load_prompts()
    used = bank if bank is not None else stand_in_audio_bank(seed)
    human = human_bank(fsdd, used, fsdd_assignment, seed) if fsdd is not None else None
    info = compose(
        root,
        seed,
        scale,
        DigitVideo(),
        used,
        prompts if prompts is not None else stand_in_prompts(),
        prompt_variety,
        human,
        human_share,
    )
    sources = audio_sources(bank, human)
    mean, std = bank_stats(used)
    with atomic_path(root / "audio_sources.json") as tmp:
        Path(tmp).write_text(
            json.dumps(
                {
                    **sources,
                    "standardisation": {
                        "what": "corpus audio = (raw log-mel stats - mean) / std (+5% jitter); see hdcid.demo.audio",
                        "mean": [round(float(v), 6) for v in mean],
                        "std": [round(float(v), 6) for v in std],
                    },
                },
                indent=1,
            )
        )
    info.update(
        root=str(root),
        seed=seed,
        scale=scale,
        seconds=round(time.perf_counter() - t0, 2),
        audio_source="audio_digits.npz" if bank is not None else "stand-in (asset missing)",
        audio_sources=sources["text"],
        prompt_source="text_prompts.json" if prompts is not None else "stand-in (asset missing)",
    )
    if verbose:
        print(report(info))
    return info


def read_audio_sources(root: str | Path) -> dict | None:
    """The corpus's `audio_sources.json` (see build_demo), or None for a corpus built before it."""
    path = Path(root) / "audio_sources.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def report(info: dict) -> str:
    lines = [
        f"AV-Digits (seed {info['seed']}, scale {info['scale']}) written to {info['root']} "
        f"in {info['seconds']:.1f} s; audio: {info['audio_source']}; prompts: {info['prompt_source']}"
    ]
    if info.get("audio_sources"):
        lines.append(f"  audio sources: {info['audio_sources']}")
    for k, v in info.items():
        if isinstance(v, dict):
            extra = {a: b for a, b in v.items() if a not in ("clips", "files", "bytes", "seconds", "paths")}
            lines.append(
                f"  {k:9s} {v['clips']:5d} clips {v['files']:6d} files "
                f"{v['bytes'] / 2**20:7.1f} MiB {v['seconds']:5.1f} s {extra or ''}"
            )
            lines += [f"{'':14s}{p}" for p in v["paths"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None, help="output folder (default: hdcid.utils.demo_root())")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="multiply every dataset size")
    p.add_argument("--quick", action="store_true", help="scale 0.25")
    p.add_argument(
        "--prompt-variety",
        action="store_true",
        help="a random prompt of its class per pretraining clip (default: one per class)",
    )
    p.add_argument(
        "--fsdd",
        default=None,
        metavar="DIR",
        help="mix recorded spoken digits (FSDD layout or WAVs + labels.csv) into the audio "
        "bank, speaker-disjoint train/val/test (never copied into the project)",
    )
    a = p.parse_args(argv)
    try:
        check_scale(a.scale, "--scale")
        check_seed(a.seed, "--seed")
    except ValueError as e:
        p.error(str(e))  # exits with status 2 and the usage line, before anything is written
    return build_demo(
        a.root, a.seed, 0.25 if a.quick else a.scale, verbose=True, prompt_variety=a.prompt_variety, fsdd=a.fsdd
    )


if __name__ == "__main__":
    main()
