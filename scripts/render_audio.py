"""Render the spoken-digit audio features of the AV-Digits demo (`data/demo_assets/audio_digits.npz`).

Pipeline (one 128-d vector per 1-second window; features: `hdcid.demo.audio`, telephone band):

1. Three open synthesisers say "zero".."nine":
   * espeak-ng: English accents, English `+variant` voices and other-language voices reading the
     English words, x rates RATES x pitches PITCHES;
   * flite: its voices (kal, kal16, awb, rms, slt) x duration stretch x mean F0;
   * festival: its English voices (kal_diphone, ked_diphone, cmu_us_slt_arctic_hts) x duration
     stretch; flite and festival outputs are also speed-perturbed (x0.9 / x1.1: pitch and
     formants move together, a vocal-tract-length change).
   Everything is resampled to 8 kHz (the shared telephone band) and trimmed of silence.
2. Each utterance is drawn N_DRAWS times (flite / festival more often, so each synthesiser has
   a comparable share): random gain, random offset in a 1-s window, then a random recording chain:
   room reverberation (exponentially decaying noise impulse response, RT60 0.1-0.4 s, p=0.3),
   a random smooth EQ (+-6 dB tilt and ripple), band-limiting (low-pass 2.8-4 kHz, high-pass
   50-300 Hz), noise (white / pink / brown, or babble of other rendered words) at 5-30 dB SNR,
   then codec-like distortion (8-bit mu-law or soft clipping, p=0.15).
3. Noise-only windows (digit -1) are added as background seconds.
4. Features (`hdcid.demo.audio.logmel_stats`): 32 log-mel bands 125-3800 Hz, energy-weighted
   mean spectrum of each of 4 consecutive parts of the word -> (128,). Stored raw (float16) with their standardisation
   statistics `mean` / `std` (float32, over all rows), which the builder and
   `hdcid.demo.audio_features` use.

Everything random comes from one `numpy.random.Generator(seed)`; the synthesisers are
deterministic, so the output is reproducible for given synthesiser versions.

    python scripts/render_audio.py [--out data/demo_assets/audio_digits.npz] [--seed 0] [--quick]

Also writes `example_seven.npz` beside it: one clean 8 kHz "seven" per synthesiser (int16).

Needs `espeak-ng`, `flite`, `festival` (+ festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts)
on PATH (`apt-get install -y espeak-ng flite festival festvox-...`); users get the committed features.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hdcid.demo.audio import SR, WIN, logmel_stats, resample, trim  # noqa: E402
from hdcid.utils import atomic_path  # noqa: E402

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
RATES = (120, 160, 200)  # espeak-ng -s, words per minute
PITCHES = (25, 50, 75)  # espeak-ng -p, 0..99
STRETCH = (0.85, 1.0, 1.25)  # flite / festival duration stretch
F0 = (90, 130, 180)  # flite int_f0_target_mean (Hz)
SPEED = (0.9, 1.0, 1.1)  # speed perturbation of flite / festival output
NOISES = ("white", "pink", "brown", "babble")

ENGLISH = ["en-us", "en-gb", "en-029", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-x-rp", "en-us-nyc"]
VARIANTS = [
    "en-us+f1",
    "en-us+f2",
    "en-us+f3",
    "en-us+f4",
    "en-gb+f5",
    "en-us+m1",
    "en-us+m2",
    "en-us+m3",
    "en-gb+m4",
    "en-us+m5",
    "en-gb+m6",
    "en-us+m7",
    "en+klatt",
    "en+croak",
    "en-us+whisper",
    "en-gb+klatt2",
]
FOREIGN = ["de", "fr-fr", "es", "it", "nl", "pt-br", "sv", "pl", "fi", "da", "cs", "ro"]
FLITE = ["flite:kal", "flite:kal16", "flite:awb", "flite:rms", "flite:slt"]
FESTIVAL = ["festival:kal_diphone", "festival:ked_diphone", "festival:cmu_us_slt_arctic_hts"]
GROUPS = (ENGLISH, VARIANTS, FOREIGN, FLITE, FESTIVAL)
VOICES = [v for g in GROUPS for v in g]  # 44 voices


def heldout_voices(seed: int = 0, frac: float = 0.25) -> set[str]:
    """~`frac` of the voices of each group (espeak English / variant / foreign, flite, festival)."""
    rng = np.random.default_rng(seed + 1)
    out: set[str] = set()
    for group in GROUPS:
        k = max(1, round(frac * len(group)))
        out.update(np.asarray(group)[rng.permutation(len(group))[:k]].tolist())
    return out


# ----------------------------------------------------------------------------------- rendering
def _wav(raw: bytes, what: str) -> tuple[np.ndarray, int]:
    if raw[:4] != b"RIFF":
        raise RuntimeError(f"{what}: expected a WAV, got {raw[:16]!r}")
    import io

    from scipy.io import wavfile

    with warnings.catch_warnings():  # espeak-ng writes a placeholder size into its stdout header
        warnings.simplefilter("ignore")
        sr, x = wavfile.read(io.BytesIO(raw))
    return x.astype(np.float32) / 32768.0, int(sr)


def _finish(x: np.ndarray, sr: int, what: str, speed: float = 1.0) -> np.ndarray:
    x = resample(x, int(round(sr * speed)))  # speed > 1: shorter and higher (sr read as sr*speed)
    y = trim(resample(x, SR, SR))
    if y.size == 0:
        raise RuntimeError(f"{what}: silence")
    return y


def _espeak(job) -> list[tuple[tuple, np.ndarray]]:
    voice, rate, pitch = job
    out = []
    for d, w in enumerate(DIGITS):
        raw = subprocess.run(
            ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", w],
            capture_output=True,
            check=True,
        ).stdout
        x, sr = _wav(raw, f"espeak-ng -v {voice}")
        out.append(((d, voice, rate, pitch), _finish(x, sr, f"espeak-ng -v {voice} {w}")))
    return out


def _flite(job) -> list[tuple[tuple, np.ndarray]]:
    voice, stretch, f0 = job
    name = voice.split(":")[1]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for d, w in enumerate(DIGITS):
            f = Path(tmp) / f"{d}.wav"
            subprocess.run(
                [
                    "flite",
                    "-voice",
                    name,
                    "--setf",
                    f"duration_stretch={stretch}",
                    "--setf",
                    f"int_f0_target_mean={f0}",
                    "-t",
                    w,
                    "-o",
                    str(f),
                ],
                capture_output=True,
                check=True,
            )
            x, sr = _wav(f.read_bytes(), f"flite -voice {name}")
            for sp in SPEED:
                out.append(((d, voice, int(100 * stretch * sp), f0), _finish(x, sr, f"{voice} {w}", sp)))
    return out


def _festival(job) -> list[tuple[tuple, np.ndarray]]:
    voice, stretch = job
    name = voice.split(":")[1]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        lines = [f"(voice_{name})", f"(Parameter.set 'Duration_Stretch {stretch})"]
        for d, w in enumerate(DIGITS):
            lines.append(f'(utt.save.wave (utt.synth (Utterance Text "{w}")) "{tmp}/{d}.wav" \'riff)')
        (Path(tmp) / "s.scm").write_text("\n".join(lines) + "\n")
        subprocess.run(["festival", "-b", str(Path(tmp) / "s.scm")], capture_output=True, check=True)
        for d, w in enumerate(DIGITS):
            x, sr = _wav((Path(tmp) / f"{d}.wav").read_bytes(), f"festival {name}")
            for sp in SPEED:
                out.append(((d, voice, int(100 * stretch * sp), 0), _finish(x, sr, f"{voice} {w}", sp)))
    return out


def _job(job):
    kind, args = job
    return {"espeak": _espeak, "flite": _flite, "festival": _festival}[kind](args)


# ------------------------------------------------------------------------------------ chain
def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """(n, WIN) unit-RMS noise; power spectrum flat (white), 1/f (pink) or 1/f^2 (brown)."""
    spec = np.fft.rfft(rng.standard_normal((n, WIN)), axis=1)  # (n, WIN/2+1)
    f = np.fft.rfftfreq(WIN, 1 / SR)
    f[0] = f[1]
    expo = {"white": 0.0, "pink": 0.5, "brown": 1.0}[colour]
    x = np.fft.irfft(spec / f**expo, n=WIN, axis=1)  # (n, WIN)
    return (x / np.sqrt((x**2).mean(axis=1, keepdims=True))).astype(np.float32)


def place(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Put utterance `x` (S,) at a random offset in a (WIN,) window; centre-crop if longer."""
    out = np.zeros(WIN, np.float32)
    if len(x) >= WIN:
        s = (len(x) - WIN) // 2
        return x[s : s + WIN].copy()
    off = rng.integers(0, WIN - len(x) + 1)
    out[off : off + len(x)] = x
    return out


def babble(rng: np.random.Generator, pool: list[np.ndarray], n_talkers: int = 3) -> np.ndarray:
    """(WIN,) unit-RMS sum of `n_talkers` random words from `pool`, each at a random offset."""
    x = sum(place(rng, pool[i]) * rng.uniform(0.5, 1.0) for i in rng.choice(len(pool), n_talkers, replace=False))
    return (x / np.sqrt((x**2).mean() + 1e-12)).astype(np.float32)


def make_noise(rng: np.random.Generator, kind: str, pool: list[np.ndarray]) -> np.ndarray:
    return babble(rng, pool) if kind == "babble" else coloured_noise(rng, 1, kind)[0]


def reverb(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Convolve with an exponentially decaying noise impulse response (RT60 0.1-0.4 s) plus the
    direct path; output has the input's length."""
    rt60 = rng.uniform(0.1, 0.4)
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    h = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    h *= rng.uniform(0.3, 1.0) / np.sqrt((h**2).sum())
    h[0] = 1.0
    y = np.fft.irfft(np.fft.rfft(x, 2 * WIN) * np.fft.rfft(h, 2 * WIN), 2 * WIN)[:WIN]
    return y.astype(np.float32)


def channel(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Random smooth EQ (tilt +-6 dB over the band, ripple), band-limiting (low-pass 2.8-4 kHz,
    high-pass 50-300 Hz, 4th-order-like roll-off) applied in the frequency domain."""
    f = np.fft.rfftfreq(WIN, 1 / SR)  # (WIN/2+1,)
    oct_ = np.log2(np.maximum(f, 50.0) / 500.0)  # octaves from 500 Hz
    gain_db = rng.uniform(-3, 3) * oct_ + sum(
        rng.uniform(-3, 3) * np.sin(2 * np.pi * k * f / SR + rng.uniform(0, 6.3)) for k in (1, 2, 3)
    )
    lp, hp = rng.uniform(2800, 4000), rng.uniform(50, 300)
    g = 10 ** (gain_db / 20) / np.sqrt(1 + (f / lp) ** 8) / np.sqrt(1 + (hp / np.maximum(f, 1.0)) ** 8)
    return np.fft.irfft(np.fft.rfft(x) * g, WIN).astype(np.float32)


def codec(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """8-bit mu-law quantisation or soft clipping (tanh), chosen at random."""
    peak = float(np.abs(x).max()) + 1e-9
    if rng.random() < 0.5:
        y = x / peak
        mu = 255.0
        c = np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu)
        c = np.round(c * 127) / 127
        return (np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu * peak).astype(np.float32)
    drive = rng.uniform(2, 6)
    return (np.tanh(drive * x / peak) / np.tanh(drive) * peak).astype(np.float32)


def chain(rng: np.random.Generator, speech: np.ndarray, noise_pool: list[np.ndarray]):
    """One recording chain (see module doc) -> (window (WIN,), snr_db, noise kind). The strengths
    were chosen on nearest-centroid accuracy (held-out synthetic voices and FSDD speakers, a few
    variants; all within ~3 points): stronger reverberation / codec did not help the human side."""
    if rng.random() < 0.3:
        speech = reverb(rng, speech)
    speech = channel(rng, speech)
    speech *= 0.1 * 10 ** (rng.uniform(-6, 6) / 20) / np.sqrt((speech**2).mean() + 1e-12)
    kind = NOISES[rng.integers(len(NOISES))]
    snr = rng.uniform(5.0, 30.0)
    s_rms = np.sqrt((speech**2).mean())
    x = speech + make_noise(rng, kind, noise_pool) * s_rms / 10 ** (snr / 20)
    if rng.random() < 0.15:
        x = codec(rng, x)
    return x, snr, kind


# ------------------------------------------------------------------------------------- main
def jobs_for(quick: bool) -> list:
    esp = ENGLISH[:2] + VARIANTS[:2] + FOREIGN[:1] if quick else ENGLISH + VARIANTS + FOREIGN
    fl = FLITE[:2] if quick else FLITE
    fe = FESTIVAL[:1] if quick else FESTIVAL
    return (
        [("espeak", (v, r, p)) for v in esp for r in RATES for p in PITCHES]
        + [("flite", (v, s, f)) for v in fl for s in STRETCH for f in F0]
        + [("festival", (v, s)) for v in fe for s in STRETCH]
    )


def render(
    seed: int = 0, quick: bool = False, n_draws: int = 2, n_background: int = 600, processes: int = 2
) -> dict[str, np.ndarray]:
    """Render everything; returns the arrays saved in the `.npz` (see module docstring)."""
    jobs = jobs_for(quick)
    t0 = time.time()
    with Pool(processes) as pool:
        results = pool.map(_job, jobs, chunksize=2)
    utts = [u for r in results for u in r]  # [((d, voice, rate, pitch), wave)]
    print(f"rendered {len(utts)} utterances in {time.time() - t0:.1f} s", flush=True)
    per_synth = {
        s: sum(1 for (m, _) in utts if m[1].startswith(s + ":") or (s == "espeak" and ":" not in m[1]))
        for s in ("espeak", "flite", "festival")
    }
    draws = {
        s: min(3 * n_draws, max(n_draws, int(round(n_draws * per_synth["espeak"] / max(per_synth[s], 1) / 2))))
        for s in per_synth
    }
    draws["espeak"] = n_draws
    rng = np.random.default_rng(seed)
    held = heldout_voices(seed)
    flat = [u for _, u in utts]
    waves, meta = [], []
    for (d, voice, rate, pitch), u in utts:
        synth = voice.split(":")[0] if ":" in voice else "espeak"
        for _ in range(draws[synth]):
            x, snr, kind = chain(rng, place(rng, u), flat)
            waves.append(x)
            meta.append(
                (
                    d,
                    voice if ":" in voice else "espeak:" + voice,
                    "heldout" if voice in held else "train",
                    rate,
                    pitch,
                    snr,
                    kind,
                )
            )
    n_bg = n_background // 10 if quick else n_background
    for _ in range(n_bg):
        kind = NOISES[rng.integers(len(NOISES))]
        level = 0.1 * 10 ** (rng.uniform(-6, 6) / 20) / 10 ** (rng.uniform(5.0, 30.0) / 20)
        split = "heldout" if rng.random() < 0.25 else "train"
        x = make_noise(rng, kind, flat) * level
        if rng.random() < 0.5:
            x = channel(rng, x)
        waves.append(x)
        meta.append((-1, "background", split, 0, 0, np.nan, kind))
    wave = np.stack(waves).astype(np.float32)  # (U, WIN)
    feats = logmel_stats(wave)  # (U, 128)
    d, v, sp, r, p, snr, kind = zip(*meta)
    print(f"features {feats.shape} in {time.time() - t0:.1f} s total; draws per utterance {draws}", flush=True)
    f16 = feats.astype(np.float16)
    f32 = f16.astype(np.float32)
    return dict(
        features=f16,
        digit=np.array(d, np.int8),
        voice=np.array(v, "<U40"),
        voice_split=np.array(sp, "<U8"),
        rate=np.array(r, np.int16),
        pitch=np.array(p, np.int16),
        snr_db=np.array(snr, np.float16),
        noise=np.array(kind, "<U8"),
        mean=f32.mean(0).astype(np.float32),
        std=(f32.std(0) + 1e-6).astype(np.float32),
    )


EXAMPLES = {
    "espeak-ng en-us": ("espeak", ("en-us", 160, 50)),
    "flite slt": ("flite", ("flite:slt", 1.0, 130)),
    "festival kal_diphone": ("festival", ("festival:kal_diphone", 1.0)),
}


def examples(digit: int = 7) -> dict[str, np.ndarray]:
    """One clean 8 kHz rendering of `digit` per synthesiser (notebook 00 plays and draws them):
    {name: (S,) int16}, plus sample_rate."""
    out: dict[str, np.ndarray] = {"sample_rate": np.array(SR)}
    for name, job in EXAMPLES.items():
        utts = _job(job)
        wave = next(u for (m, u) in utts if m[0] == digit)
        out[name] = (np.clip(wave / np.abs(wave).max() * 0.7, -1, 1) * 32767).astype(np.int16)
    return out


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
    cent = np.stack([z[tr & (y == c)].mean(0) for c in classes])  # (K, 128)
    dist = ((z[te][:, None, :] - cent[None]) ** 2).sum(-1)  # (n_te, K)
    return float((classes[dist.argmin(1)] == y[te]).mean())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "data/demo_assets/audio_digits.npz"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="a few voices per synthesiser, 60 background seconds")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--examples-only", action="store_true", help="only write example_seven.npz")
    args = ap.parse_args(argv)
    missing = [t for t in ("espeak-ng", "flite", "festival") if shutil.which(t) is None]
    if missing:
        sys.exit(
            f"{missing} not found on PATH: apt-get install -y espeak-ng flite festival "
            "festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
        )
    ex = Path(args.out).with_name("example_seven.npz")
    with atomic_path(ex) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **examples(7))
    print(f"wrote {ex}")
    if args.examples_only:
        return
    arrays = render(args.seed, args.quick, processes=args.processes)
    out = Path(args.out)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(arrays['digit'])} vectors)")
    print(f"held-out voices: {sorted(set(arrays['voice'][arrays['voice_split'] == 'heldout']) - {'background'})}")
    print(
        f"nearest-centroid accuracy train->heldout voices: 10 digits {nearest_centroid_accuracy(arrays):.3f}, "
        f"with background {nearest_centroid_accuracy(arrays, True):.3f}"
    )


if __name__ == "__main__":
    main()
