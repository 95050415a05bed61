"""Where the demo corpus's audio and text come from: the committed assets, recorded human speech,
and the per-second audio draws the dataset composers use.

`load_audio_bank` / `load_prompts`: the committed spoken-digit features and class prompts
(`data/demo_assets/`, None when absent). `AudioDigits`: per-second audio vectors by digit and
voice pool. `human_bank` / `fsdd_assignment`: recorded speech (`--fsdd DIR`) as standardised
features with speaker-disjoint train / val / test pools. `audio_sources` / `read_audio_sources`:
the record of what a corpus was built from (`<root>/audio_sources.json`, written by
`hdcid.demo.build.build_demo`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hdcid.demo.synthetic import DIGIT_WORDS
from hdcid.utils import repo_root

FSDD_POOLS = ("train", "val", "test")


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


def prompt_key(prompts: dict[str, list[str]], digit: int) -> str:
    word = DIGIT_WORDS[digit]
    for key in prompts:
        if word in key.lower().replace("_", " ").split():
            return key
    raise KeyError(f"text_prompts.json: no class name containing {word!r}; found {sorted(prompts)}")


def prompt_for(prompts: dict[str, list[str]], digit: int) -> str:
    """The first prompt of the class whose name contains the digit's word (e.g. 'seven')."""
    return prompts[prompt_key(prompts, digit)][0]


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


def read_audio_sources(root: str | Path) -> dict | None:
    """The corpus's `audio_sources.json` (see build_demo), or None for a corpus built before it."""
    path = Path(root) / "audio_sources.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
