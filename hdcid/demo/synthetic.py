"""Fast purely synthetic data for unit tests: Gaussian class prototypes in every modality.

`gaussian_bank` draws class means; `gaussian_clipset` samples a ClipSet around them (seconds);
`GaussianVideo` / `GaussianAudio` plug the same prototypes into the demo composer so
`write_synthetic_corpus` writes every original format to a folder in a second or two.
`StandInAudioBank` / `HashText` stand in for the committed audio and text assets.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hdcid.data.clipset import ClipSet

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@dataclass
class GaussianBank:
    """Class means: video (K, C) per channel (shared over the grid), audio (K, A), text (K, T, W)."""

    video: np.ndarray
    audio: np.ndarray
    text: np.ndarray
    background_video: np.ndarray  # (C,)
    background_audio: np.ndarray  # (A,)


def gaussian_bank(
    n_classes: int = 10,
    seed: int = 0,
    video_dim: int = 32,
    audio_dim: int = 128,
    word_dim: int = 384,
    n_segments: int = 10,
    sep: float = 1.0,
) -> GaussianBank:
    """Class prototypes drawn from N(0, sep^2); video means are made non-negative (|.|)."""
    g = np.random.default_rng(seed)
    return GaussianBank(
        video=np.abs(g.normal(0, sep, (n_classes, video_dim))).astype(np.float32),
        audio=g.normal(0, sep, (n_classes, audio_dim)).astype(np.float32),
        text=g.normal(0, sep, (n_classes, n_segments, word_dim)).astype(np.float32),
        background_video=np.abs(g.normal(0, sep, video_dim)).astype(np.float32),
        background_audio=g.normal(0, sep, audio_dim).astype(np.float32),
    )


def random_clipset(cfg, n: int, seed: int = 0, name: str = "random") -> ClipSet:
    """`n` clips of unstructured inputs with the sizes of a `ModelConfig` (one class, every second
    foreground): video U[0, 1) (n,T,G,G,C), audio and text N(0, 1) (n,T,A), (n,T,W). For timing and
    equality checks of training steps (tests/test_faithful_step.py, benchmarks/bench_pretrain.py),
    where the inputs need the right shapes and nothing else."""
    rng = np.random.default_rng(seed)
    t, g = cfg.n_segments, cfg.video_grid
    labels = np.zeros((n, t, 2), np.float32)
    labels[:, :, 0] = 1
    return ClipSet(
        name,
        [str(i) for i in range(n)],
        ["x"],
        labels,
        video=rng.random((n, t, g, g, cfg.video_dim), dtype=np.float32),
        audio=rng.standard_normal((n, t, cfg.audio_dim), dtype=np.float32),
        text=rng.standard_normal((n, t, cfg.word_dim), dtype=np.float32),
    )


def gaussian_clipset(
    n: int = 60,
    n_classes: int = 10,
    seed: int = 0,
    video_dim: int = 32,
    grid: int = 7,
    audio_dim: int = 128,
    word_dim: int = 384,
    n_segments: int = 10,
    noise: float = 1.0,
    sep: float = 1.0,
    background_rate: float = 0.0,
    name: str = "synthetic",
) -> ClipSet:
    """A ClipSet of `n` clips (class i % n_classes, so every class appears), with
    video (n,T,G,G,C), audio (n,T,A), text (n,T,W) = class mean + N(0, noise^2), labels (n,T,K+1).
    Segments are background with probability `background_rate` (text stays the class prompt)."""
    bank = gaussian_bank(n_classes, seed, video_dim, audio_dim, word_dim, n_segments, sep)
    g = np.random.default_rng(seed + 1)
    cls = np.arange(n) % n_classes  # (n,)
    g.shuffle(cls)
    bg = g.uniform(size=(n, n_segments)) < background_rate  # (n, T)
    seg = np.where(bg, n_classes, cls[:, None])  # (n, T) class or K
    v_means = np.concatenate([bank.video, bank.background_video[None]])[seg]  # (n, T, C)
    a_means = np.concatenate([bank.audio, bank.background_audio[None]])[seg]  # (n, T, A)
    video = v_means[:, :, None, None, :] + noise * g.normal(size=(n, n_segments, grid, grid, video_dim))
    audio = a_means + noise * g.normal(size=(n, n_segments, audio_dim))
    text = bank.text[cls] + noise * g.normal(size=(n, n_segments, word_dim))
    labels = np.zeros((n, n_segments, n_classes + 1), dtype=np.float32)
    labels[np.arange(n)[:, None], np.arange(n_segments)[None], seg] = 1.0
    return ClipSet(
        name=name,
        ids=[f"syn{i:05d}" for i in range(n)],
        classes=[f"class{k}" for k in range(n_classes)],
        labels=labels,
        video=video.astype(np.float32),
        audio=audio.astype(np.float32),
        text=text.astype(np.float32),
    )


class GaussianVideo:
    """Demo-composer video source from Gaussian prototypes (non-negative, (7, 7, C) grids)."""

    def __init__(self, seed: int = 0, channels: int = 32, noise: float = 0.5):
        self.bank = gaussian_bank(10, seed, video_dim=channels)
        self.noise, self.channels = noise, channels

    def _means(self, digits: np.ndarray) -> np.ndarray:
        table = np.concatenate([self.bank.video, self.bank.background_video[None]])
        return table[np.where(digits < 0, 10, digits)]  # (n, C)

    def segments(self, digits, pool: str, rng: np.random.Generator) -> np.ndarray:
        m = self._means(np.asarray(digits).reshape(-1))
        x = m[:, None, None, :] + self.noise * rng.normal(size=(len(m), 7, 7, self.channels))
        return np.abs(x).astype(np.float32)

    def overlay(self, digit_sets, pool: str, rng: np.random.Generator) -> np.ndarray:
        m = np.stack([self._means(np.asarray(ds or [-1])).max(axis=0) for ds in digit_sets])
        x = m[:, None, None, :] + self.noise * rng.normal(size=(len(m), 7, 7, self.channels))
        return np.abs(x).astype(np.float32)


def stand_in_audio_bank(seed: int = 0, per_digit: int = 12, n_voices: int = 6, dim: int = 128) -> dict[str, np.ndarray]:
    """Arrays shaped like `data/demo_assets/audio_digits.npz`: features (U,128) float16, digit (U,)
    int8 (-1 = noise-only), voice/voice_split (U,) str, rate/pitch/snr_db (U,). Gaussian per digit."""
    g = np.random.default_rng(seed)
    means = g.normal(0, 1, (11, dim))  # row 10 = background
    voice_shift = g.normal(0, 1.0, (n_voices, dim))
    digits = np.repeat(np.arange(-1, 10), per_digit * n_voices)
    voices = np.tile(np.repeat(np.arange(n_voices), per_digit), 11)
    feats = means[np.where(digits < 0, 10, digits)] + voice_shift[voices] + 5.0 * g.normal(size=(len(digits), dim))
    names = np.array([f"voice{v}" for v in voices])
    split = np.where(voices < n_voices - 2, "train", "heldout")
    return dict(
        features=feats.astype(np.float16),
        digit=digits.astype(np.int8),
        voice=names,
        voice_split=split,
        rate=np.full(len(digits), 175.0),
        pitch=np.full(len(digits), 50.0),
        snr_db=np.full(len(digits), 20.0),
    )


def stand_in_prompts() -> dict[str, list[str]]:
    """{digit word: [prompt, ...]} shaped like `data/demo_assets/text_prompts.json`."""
    return {
        w: [f"a person writes and says the digit {w} clearly", f"the number {w} is spoken and shown"]
        for w in DIGIT_WORDS
    }


class HashText:
    """Stand-in TextBackend: each word -> a fixed pseudo-random vector from its hash (no model)."""

    name = "hash"

    def __init__(self, dim: int = 384):
        self.dim = dim

    def _word(self, w: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(w.lower().encode()).digest()[:8], "little")
        return np.random.default_rng(seed).normal(0, 1, self.dim).astype(np.float32)

    def embed_words(self, sentences: list[str], n_words: int = 10) -> np.ndarray:
        """(N, n_words, dim) float32: first n_words words, zero padded."""
        out = np.zeros((len(sentences), n_words, self.dim), dtype=np.float32)
        for i, s in enumerate(sentences):
            for j, w in enumerate(s.split()[:n_words]):
                out[i, j] = self._word(w)
        return out


def write_synthetic_corpus(root: str | Path, seed: int = 0, scale: float = 0.02) -> dict:
    """Every original format under `root` from Gaussian prototypes (a second or two); returns
    what `hdcid.demo.datasets.compose` wrote. Read it back with the hdcid.data readers."""
    from hdcid.demo.datasets import compose

    return compose(
        Path(root),
        seed=seed,
        scale=scale,
        video_source=GaussianVideo(seed),
        audio_bank=stand_in_audio_bank(seed),
        prompts=stand_in_prompts(),
    )
