"""Render the spoken-digit audio features of the AV-Digits demo (`data/demo_assets/audio_digits.npz`).

Pipeline (one 128-d "VGGish-sized" vector per 1-second window):

1. espeak-ng says "zero".."nine" for every voice x rate x pitch (parallel over 2 processes).
   Voices: English accents, English `+variant` voices (en+f3, en-us+m4, ...) and other-language
   voices reading the English words. 22.05 kHz output is resampled to 16 kHz.
2. Each utterance is trimmed of silence, given a random gain, placed at a random offset in a
   1-s window (16,000 samples; trimmed if longer) and mixed with noise (white / pink / brown, or
   babble made of other rendered words) at an SNR drawn from 0-20 dB; twice per utterance.
3. Noise-only windows (digit -1) are added as background seconds.
4. Features: STFT (25 ms Hann window, 10 ms hop, 512-point FFT) -> power -> 64 HTK-mel bands
   (125-7500 Hz, own filterbank) -> log -> mean and std over the 98 frames, each frame weighted by
   softmax(frame log energy / 0.5) so the word dominates the noise around it -> (128,).

Everything random comes from one `numpy.random.Generator(seed)`; espeak-ng itself is deterministic,
so the output is reproducible.

    python scripts/render_audio.py [--out data/demo_assets/audio_digits.npz] [--seed 0] [--quick]

Needs `espeak-ng` on PATH (`apt-get install -y espeak-ng`); users get the committed features.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from hdcid.utils import atomic_path

SR = 16_000                  # target sample rate (Hz)
WIN = SR                     # one 1-second window
N_FFT, FRAME, HOP = 512, 400, 160
N_MELS, F_MIN, F_MAX = 64, 125.0, 7500.0
TAU = 0.5                    # frame-weighting temperature (natural-log energy units)
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
RATES = (130, 175, 220)      # espeak-ng -s, words per minute
PITCHES = (35, 65)           # espeak-ng -p, 0..99
NOISES = ("white", "pink", "brown", "babble")

ENGLISH = ["en-us", "en-gb", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
           "en-gb-x-rp", "en-us-nyc"]
VARIANTS = ["en-us+f1", "en-us+f2", "en-us+f3", "en-us+f4", "en-gb+f5", "en-us+m1", "en-us+m2",
            "en-us+m3", "en-gb+m4", "en-us+m5", "en-gb+m6", "en-us+m7", "en+klatt", "en+croak",
            "en-us+whisper", "en-gb+klatt2"]
FOREIGN = ["de", "fr-fr", "es", "it", "nl", "pt-br", "sv", "pl", "fi", "da", "cs", "ro"]
VOICES = ENGLISH + VARIANTS + FOREIGN          # 36 voices


def heldout_voices(seed: int = 0, frac: float = 0.25) -> set[str]:
    """~`frac` of the voices of each group (English / variant / foreign), chosen by `seed`."""
    rng = np.random.default_rng(seed + 1)
    out: set[str] = set()
    for group in (ENGLISH, VARIANTS, FOREIGN):
        k = max(1, round(frac * len(group)))
        out.update(np.asarray(group)[rng.permutation(len(group))[:k]].tolist())
    return out


# ----------------------------------------------------------------------------------- rendering
def speak(word: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """espeak-ng `word` -> (S,) float32 at 16 kHz in [-1, 1], leading/trailing silence trimmed."""
    res = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", word],
                         capture_output=True, check=True)
    raw = res.stdout
    if raw[:4] != b"RIFF" or raw[36:40] != b"data":
        raise RuntimeError(f"espeak-ng -v {voice}: expected a 44-byte WAV header, got {raw[:44]!r}")
    x = np.frombuffer(raw[44:44 + (len(raw) - 44) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
    x = resample_poly(x, 160, 441).astype(np.float32)   # 22050 -> 16000 Hz
    loud = np.flatnonzero(np.abs(x) > 0.02 * max(np.abs(x).max(), 1e-6))
    if loud.size == 0:
        raise RuntimeError(f"espeak-ng -v {voice} produced silence for {word!r}")
    return x[loud[0]:loud[-1] + 1]


def _render_job(job: tuple[str, int, int]) -> list[np.ndarray]:
    voice, rate, pitch = job
    return [speak(w, voice, rate, pitch) for w in DIGITS]


# ------------------------------------------------------------------------------------ noise
def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """(n, WIN) unit-RMS noise; power spectrum flat (white), 1/f (pink) or 1/f^2 (brown)."""
    spec = np.fft.rfft(rng.standard_normal((n, WIN)), axis=1)          # (n, WIN/2+1)
    f = np.fft.rfftfreq(WIN, 1 / SR)
    f[0] = f[1]
    expo = {"white": 0.0, "pink": 0.5, "brown": 1.0}[colour]
    x = np.fft.irfft(spec / f ** expo, n=WIN, axis=1)                   # (n, WIN)
    return (x / np.sqrt((x ** 2).mean(axis=1, keepdims=True))).astype(np.float32)


def place(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Put utterance `x` (S,) at a random offset in a (WIN,) window; centre-crop if longer."""
    out = np.zeros(WIN, np.float32)
    if len(x) >= WIN:
        s = (len(x) - WIN) // 2
        return x[s:s + WIN].copy()
    off = rng.integers(0, WIN - len(x) + 1)
    out[off:off + len(x)] = x
    return out


def babble(rng: np.random.Generator, pool: list[np.ndarray], n_talkers: int = 3) -> np.ndarray:
    """(WIN,) unit-RMS sum of `n_talkers` random words from `pool`, each at a random offset."""
    x = sum(place(rng, pool[i]) * rng.uniform(0.5, 1.0)
            for i in rng.choice(len(pool), n_talkers, replace=False))
    return (x / np.sqrt((x ** 2).mean() + 1e-12)).astype(np.float32)


def make_noise(rng: np.random.Generator, kind: str, pool: list[np.ndarray]) -> np.ndarray:
    return babble(rng, pool) if kind == "babble" else coloured_noise(rng, 1, kind)[0]


# --------------------------------------------------------------------------------- features
def mel_filterbank(n_mels: int = N_MELS, n_fft: int = N_FFT, sr: int = SR,
                   f_min: float = F_MIN, f_max: float = F_MAX) -> np.ndarray:
    """(n_fft//2+1, n_mels) triangular HTK-mel filters (peak 1)."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)          # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)         # noqa: E731
    edges = hz(np.linspace(mel(f_min), mel(f_max), n_mels + 2))  # (n_mels+2,)
    f = np.fft.rfftfreq(n_fft, 1 / sr)[:, None]                  # (F, 1)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]             # (n_mels,) each
    up = (f - lo) / (mid - lo)
    down = (hi - f) / (hi - mid)
    return np.clip(np.minimum(up, down), 0.0, None).astype(np.float32)


def logmel_stats(wave: np.ndarray, batch: int = 256, tau: float = TAU) -> np.ndarray:
    """(N, WIN) waveforms -> (N, 2*N_MELS) float32: [mean ; std] of log-mel energies over frames.

    Frames are weighted by `softmax(frame_log_energy / tau)` (frame log energy = mean of its
    64 log-mel values), so the statistics describe the loud (speech) frames rather than the noise
    around the word. On held-out voices this lifts nearest-centroid digit accuracy from ~0.20
    (plain mean/std) to ~0.51.
    """
    fb = mel_filterbank()                                                  # (257, 64)
    win = np.hanning(FRAME + 1)[:-1].astype(np.float32)                    # periodic Hann
    n_frames = 1 + (WIN - FRAME) // HOP                                    # 98
    idx = np.arange(n_frames)[:, None] * HOP + np.arange(FRAME)[None, :]   # (98, 400)
    out = []
    for s in range(0, len(wave), batch):
        frames = wave[s:s + batch][:, idx] * win                           # (b, 98, 400)
        power = np.abs(np.fft.rfft(frames, n=N_FFT, axis=-1)) ** 2         # (b, 98, 257)
        logmel = np.log(power @ fb + 1e-6)                                 # (b, 98, 64)
        energy = logmel.mean(2)                                            # (b, 98)
        w = np.exp((energy - energy.max(1, keepdims=True)) / tau)
        w = (w / w.sum(1, keepdims=True))[..., None]                       # (b, 98, 1)
        mean = (logmel * w).sum(1)                                         # (b, 64)
        std = np.sqrt(((logmel - mean[:, None]) ** 2 * w).sum(1))          # (b, 64)
        out.append(np.concatenate([mean, std], axis=1))                    # (b, 128)
    return np.concatenate(out).astype(np.float32)


# ------------------------------------------------------------------------------------- main
def render(seed: int = 0, quick: bool = False, n_draws: int = 2, n_background: int = 400,
           processes: int = 2) -> dict[str, np.ndarray]:
    """Render everything; returns the arrays saved in the `.npz` (see module docstring)."""
    voices = VOICES[::6] if quick else VOICES
    jobs = [(v, r, p) for v in voices for r in RATES for p in PITCHES]
    t0 = time.time()
    with Pool(processes) as pool:
        clips = pool.map(_render_job, jobs, chunksize=4)          # jobs x 10 utterances
    print(f"rendered {len(jobs) * len(DIGITS)} utterances in {time.time() - t0:.1f} s", flush=True)
    rng = np.random.default_rng(seed)
    held = heldout_voices(seed)
    flat = [u for c in clips for u in c]
    waves, meta = [], []
    for (voice, rate, pitch), utts in zip(jobs, clips):
        for d, u in enumerate(utts):
            for _ in range(n_draws):
                speech = place(rng, u)
                speech *= 0.1 * 10 ** (rng.uniform(-6, 6) / 20) / np.sqrt((speech ** 2).mean() + 1e-12)
                kind = NOISES[rng.integers(len(NOISES))]
                snr = rng.uniform(0.0, 20.0)
                s_rms = np.sqrt((speech ** 2).mean())
                waves.append(speech + make_noise(rng, kind, flat) * s_rms / 10 ** (snr / 20))
                meta.append((d, voice, "heldout" if voice in held else "train", rate, pitch, snr, kind))
    n_bg = n_background // 10 if quick else n_background
    for _ in range(n_bg):
        kind = NOISES[rng.integers(len(NOISES))]
        level = 0.1 * 10 ** (rng.uniform(-6, 6) / 20) / 10 ** (rng.uniform(0.0, 20.0) / 20)
        split = "heldout" if rng.random() < 0.25 else "train"
        waves.append(make_noise(rng, kind, flat) * level)
        meta.append((-1, "background", split, 0, 0, np.nan, kind))
    wave = np.stack(waves).astype(np.float32)                      # (U, WIN)
    feats = logmel_stats(wave)                                     # (U, 128)
    d, v, sp, r, p, snr, kind = zip(*meta)
    print(f"features {feats.shape} in {time.time() - t0:.1f} s total", flush=True)
    return dict(features=feats.astype(np.float16), digit=np.array(d, np.int8),
                voice=np.array(v, "<U32"), voice_split=np.array(sp, "<U8"),
                rate=np.array(r, np.int16), pitch=np.array(p, np.int16),
                snr_db=np.array(snr, np.float16), noise=np.array(kind, "<U8"))


def nearest_centroid_accuracy(arrays: dict[str, np.ndarray], with_background: bool = False) -> float:
    """Train-voice class centroids (z-scored features) -> accuracy on held-out voices."""
    x = arrays["features"].astype(np.float32)
    y = arrays["digit"].astype(int)
    tr, te = arrays["voice_split"] == "train", arrays["voice_split"] == "heldout"
    if not with_background:
        tr, te = tr & (y >= 0), te & (y >= 0)
    mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
    z = (x - mu) / sd
    classes = np.unique(y[tr])
    cent = np.stack([z[tr & (y == c)].mean(0) for c in classes])           # (K, 128)
    dist = ((z[te][:, None, :] - cent[None]) ** 2).sum(-1)                 # (n_te, K)
    return float((classes[dist.argmin(1)] == y[te]).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data/demo_assets/audio_digits.npz"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="6 voices, 40 background seconds")
    ap.add_argument("--processes", type=int, default=2)
    args = ap.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng not found on PATH: apt-get install -y espeak-ng")
    arrays = render(args.seed, args.quick, processes=args.processes)
    out = Path(args.out)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(arrays['digit'])} vectors)")
    print(f"held-out voices: {sorted(set(arrays['voice'][arrays['voice_split'] == 'heldout']) - {'background'})}")
    print(f"nearest-centroid accuracy train->heldout voices: 10 digits {nearest_centroid_accuracy(arrays):.3f}, "
          f"with background {nearest_centroid_accuracy(arrays, True):.3f}")


if __name__ == "__main__":
    main()
