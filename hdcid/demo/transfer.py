"""Transfer of the demo's audio to recorded human speech: the pieces `benchmarks/speech_transfer.py`
and notebook 00 share.

    h = human_features(read_speech(dir))                    # standardised (H, 128) + digit/speaker
    nearest_centroid_to_human(load_audio_bank(), h)         # raw features: synthetic -> each speaker
    test = with_human_audio(read_ave(root, "test"), h, "jackson", rng)   # AVE test, human audio

`with_human_audio` swaps every foreground second of a clip's audio for a recording of that digit by
the given speaker (background seconds keep their noise rows), so the AVE task's V->A transfer
(`hdcid.downstream.run_task("ave", "v2a", ...)`) can be scored on unseen human speakers.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from hdcid.data.clipset import ClipSet


def default_fsdd_dir() -> Path | None:
    """`$HDCID_FSDD`, else `<repo>/../shared/data/fsdd` when it exists (also one level further up,
    for a git worktree kept beside the clone), else None."""
    from hdcid.utils import repo_root

    env = os.environ.get("HDCID_FSDD")
    if env:
        return Path(env)
    for up in (repo_root().parent, repo_root().parent.parent):
        p = up / "shared" / "data" / "fsdd"
        if p.is_dir():
            return p
    return None


def human_features(speech, bank: dict | None = None) -> dict:
    """SpeechSet -> {features (H, 128) in the corpus space, digit (H,), speaker (H,), waves, sr}."""
    from hdcid.demo.audio import audio_features

    return dict(
        features=audio_features(speech.waves, speech.sample_rate, bank=bank),
        digit=np.asarray(speech.digit),
        speaker=np.asarray(speech.speaker),
        waves=speech.waves,
        sample_rate=speech.sample_rate,
    )


def synthetic_rows(bank: dict, split: str | None = "train") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The bank's standardised digit rows of one voice split (None: all) -> (x (U,128), digit, voice)."""
    from hdcid.demo.audio import bank_stats

    mean, std = bank_stats(bank)
    y = bank["digit"].astype(np.int64)
    sel = y >= 0
    if split is not None:
        sel &= bank["voice_split"].astype(str) == split
    x = (bank["features"][sel].astype(np.float32) - mean) / std
    return x, y[sel], bank["voice"][sel].astype(str)


def _centroid_predict(x_tr, y_tr, x_te) -> np.ndarray:
    cent = np.stack([x_tr[y_tr == c].mean(0) for c in range(10)])  # (10, 128)
    return ((x_te[:, None, :] - cent[None]) ** 2).sum(-1).argmin(1)  # (n,)


def nearest_centroid_to_human(bank: dict, human: dict, with_other_speakers: bool = False) -> dict:
    """Raw-feature nearest centroid (centroids: the bank's train voices, standardised) -> {speaker:
    accuracy %} on each speaker's recordings, plus "heldout voices" (the bank's held-out synthetic
    voices). with_other_speakers: the centroids also average the OTHER human speakers' rows
    (leave-one-speaker-out)."""
    x_tr, y_tr, _ = synthetic_rows(bank, "train")
    out = {}
    for sp in sorted(set(human["speaker"].tolist())):
        te = human["speaker"] == sp
        xt, yt = x_tr, y_tr
        if with_other_speakers:
            xt = np.concatenate([x_tr, human["features"][~te]])
            yt = np.concatenate([y_tr, human["digit"][~te]])
        pred = _centroid_predict(xt, yt, human["features"][te])
        out[sp] = 100.0 * float((pred == human["digit"][te]).mean())
    x_he, y_he, _ = synthetic_rows(bank, "heldout")
    out["heldout voices"] = 100.0 * float((_centroid_predict(x_tr, y_tr, x_he) == y_he).mean())
    return out


def with_human_audio(
    clipset: ClipSet, human: dict, speaker: str, rng: np.random.Generator, jitter: float = 0.05
) -> ClipSet:
    """A copy of an AV-Digits AVE-like ClipSet whose foreground audio seconds are recordings of
    `speaker` saying the second's digit (drawn at random, + the builder's 5% jitter); background
    seconds are unchanged. Labels and video are the same arrays."""
    seg = clipset.segment_labels()  # (N, T), K = background
    audio = clipset.audio.copy()  # (N, T, 128)
    pick = human["speaker"] == speaker
    if not pick.any():
        raise ValueError(f"with_human_audio: no recordings of speaker {speaker!r}")
    feats, digit = human["features"][pick], human["digit"][pick]
    scale = jitter * clipset.audio.reshape(-1, clipset.audio.shape[-1]).std(0)
    for d in range(clipset.n_classes):
        where = np.argwhere(seg == d)
        if len(where):
            rows = rng.choice(np.flatnonzero(digit == d), size=len(where))
            audio[where[:, 0], where[:, 1]] = feats[rows] + scale * rng.normal(size=(len(where), feats.shape[1]))
    return dataclasses.replace(clipset, name=f"{clipset.name}[human {speaker}]", audio=audio.astype(np.float32))
