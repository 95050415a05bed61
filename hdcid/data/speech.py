"""Reader for recorded spoken digits: a folder of mono WAV files -> utterances with digit and speaker.

Two layouts:
* FSDD (Free Spoken Digit Dataset): `<dir>/{digit}_{speaker}_{index}.wav` (a `recordings/`
  subfolder is used when present), e.g. `7_jackson_32.wav`;
* generic: `<dir>/labels.csv` with columns `file,digit,speaker` (file relative to `<dir>`).

    s = read_speech("/work/shared/data/fsdd")     # SpeechSet: waves, digit (N,), speaker (N,)
    w = s.windows()                              # (N, sample_rate) one-second windows

Every utterance is resampled to `sample_rate` (default 8 kHz; files at another rate are resampled
and the SpeechSet's `notes` say so) and trimmed of leading/trailing silence. Bad input raises
`DataFormatError` naming the file: empty folder, a name not matching the FSDD pattern, a WAV
scipy cannot read, a digit outside 0-9, a missing CSV column, a silence-only recording.
The data are never copied into the project: point at them (`--fsdd DIR` / `HDCID_FSDD`).
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

from hdcid.data.formats import DataFormatError

FSDD_PATTERN = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z][A-Za-z0-9-]*)_(?P<index>[0-9]+)\.wav$")
LABELS_CSV = "labels.csv"
SILENCE = 1e-4  # a recording whose peak |amplitude| is below this (full scale 1.0) is silence-only


@dataclass
class SpeechSet:
    """Recorded utterances. waves: list of (S_i,) float32 in [-1, 1] at `sample_rate`, silence
    trimmed; digit (N,) int64; speaker (N,) str; paths: the source files; notes: what was done
    (e.g. resampling)."""

    waves: list
    sample_rate: int
    digit: np.ndarray
    speaker: np.ndarray
    paths: list
    notes: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.waves)

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.speaker.tolist()))

    def subset(self, mask) -> SpeechSet:
        idx = np.flatnonzero(np.asarray(mask)) if np.asarray(mask).dtype == bool else np.asarray(mask)
        return SpeechSet(
            [self.waves[i] for i in idx],
            self.sample_rate,
            self.digit[idx],
            self.speaker[idx],
            [self.paths[i] for i in idx],
            list(self.notes),
        )

    def windows(self) -> np.ndarray:
        """(N, sample_rate) float32 one-second windows, each utterance centred (centre-cropped if
        longer than a second, zero padded otherwise)."""
        win = self.sample_rate
        out = np.zeros((len(self), win), np.float32)
        for i, x in enumerate(self.waves):
            if len(x) >= win:
                s = (len(x) - win) // 2
                out[i] = x[s : s + win]
            else:
                o = (win - len(x)) // 2
                out[i, o : o + len(x)] = x
        return out

    def summary(self) -> str:
        return f"{len(self)} utterances, {len(self.speakers)} speakers {self.speakers}, {self.sample_rate} Hz" + (
            f"; {'; '.join(self.notes)}" if self.notes else ""
        )


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """One WAV -> ((S,) float32 mono in [-1, 1], sample rate). Raises DataFormatError naming it."""
    from scipy.io import wavfile

    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on unknown chunks (LIST, ...)
            sr, x = wavfile.read(path)
    except Exception as e:  # noqa: BLE001 - any parse failure is a format error of this file
        raise DataFormatError(
            f"{path}: not a readable WAV file (expected RIFF/WAVE PCM or float); {type(e).__name__}: {e}"
        ) from e
    if x.dtype == np.uint8:
        x = (x.astype(np.float32) - 128.0) / 128.0
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max + 1)
    else:
        x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if x.size == 0:
        raise DataFormatError(f"{path}: WAV holds no samples")
    if not np.isfinite(x).all():
        raise DataFormatError(f"{path}: WAV holds NaN/inf samples")
    return x, int(sr)


def _resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    from scipy.signal import resample_poly

    g = gcd(sr_in, sr_out)
    return resample_poly(x.astype(np.float64), sr_out // g, sr_in // g).astype(np.float32)


def _trim(x: np.ndarray, rel: float = 0.02) -> np.ndarray:
    loud = np.flatnonzero(np.abs(x) > rel * float(np.abs(x).max()))
    return x[loud[0] : loud[-1] + 1]


def _listing(folder: Path) -> tuple[list[tuple[Path, int, str]], str]:
    """[(path, digit, speaker)], layout name."""
    csv_path = folder / LABELS_CSV
    if csv_path.exists():
        with open(csv_path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"file", "digit", "speaker"} - set(reader.fieldnames or [])
            if missing:
                raise DataFormatError(
                    f"{csv_path}: expected columns file,digit,speaker; missing "
                    f"{sorted(missing)}, found {reader.fieldnames}"
                )
            rows = []
            for n, r in enumerate(reader, start=2):
                try:
                    d = int(r["digit"])
                except ValueError:
                    d = -1
                if not 0 <= d <= 9:
                    raise DataFormatError(f"{csv_path} line {n}: digit must be an integer 0-9, got {r['digit']!r}")
                rows.append((folder / r["file"], d, str(r["speaker"])))
        if not rows:
            raise DataFormatError(f"{csv_path}: no rows (expected one per WAV: file,digit,speaker)")
        return rows, "labels.csv"
    if (folder / "recordings").is_dir():
        folder = folder / "recordings"
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".wav")
    if not files:
        raise DataFormatError(
            f"{folder}: no .wav files (expected FSDD names {{digit}}_{{speaker}}_{{index}}.wav "
            f"or a {LABELS_CSV} with columns file,digit,speaker)"
        )
    rows = []
    for p in files:
        m = FSDD_PATTERN.match(p.name)
        if m is None:
            raise DataFormatError(
                f"{p}: file name does not match FSDD's {{digit}}_{{speaker}}_{{index}}.wav "
                f"(e.g. 7_jackson_32.wav); use a {LABELS_CSV} for other names"
            )
        rows.append((p, int(m["digit"]), m["speaker"]))
    return rows, "fsdd"


def read_speech(folder: str | Path | None = None, sample_rate: int = 8000, speakers=None) -> SpeechSet:
    """Read every recording under `folder` (None: `$HDCID_FSDD`); see the module doc.
    speakers: keep only these speaker names (an unknown name is an error). Returns a SpeechSet."""
    folder = folder or os.environ.get("HDCID_FSDD")
    if not folder:
        raise DataFormatError("read_speech: no folder given and HDCID_FSDD is not set")
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(f"{folder}: not a folder (expected FSDD recordings or WAVs + {LABELS_CSV})")
    rows, layout = _listing(folder)
    if speakers is not None:
        have = {s for _, _, s in rows}
        unknown = sorted(set(speakers) - have)
        if unknown:
            raise DataFormatError(f"{folder}: speakers {unknown} not found; found {sorted(have)}")
        rows = [r for r in rows if r[2] in set(speakers)]
    waves, rates = [], {}
    for path, _, _ in rows:
        x, sr = read_wav(path)
        if float(np.abs(x).max()) < SILENCE:
            raise DataFormatError(
                f"{path}: silence only (peak |amplitude| {float(np.abs(x).max()):.2g} "
                f"< {SILENCE:g} of full scale); remove it or re-record"
            )
        if sr != sample_rate:
            rates[sr] = rates.get(sr, 0) + 1
        waves.append(_trim(_resample(x, sr, sample_rate)))
    notes = [f"layout {layout}"] + [
        f"resampled {n} file(s) from {sr} Hz to {sample_rate} Hz" for sr, n in sorted(rates.items())
    ]
    if rates:
        warnings.warn(f"{folder}: " + "; ".join(notes[1:]), stacklevel=2)
    return SpeechSet(
        waves,
        sample_rate,
        np.array([d for _, d, _ in rows], np.int64),
        np.array([s for _, _, s in rows]),
        [p for p, _, _ in rows],
        notes,
    )
