"""VGGSound-AVEL pretraining corpus reader and writer (docs/method.md §1.1, §1.3).

Layout under `data_root`::

    vggsound40k/vggsound-avel40k.csv            category,video_id,split (ALL splits are used)
    vggsound40k/VggsoundAVEL40kCategories.txt   K class names
    vggsound40k/vggsoundCategories2Prompts.csv  label,<prompt>: the prompt is the 2nd field of the
                                                first row whose label == category
    vggsound40k/feature/audio/zip/<video_id>.zip   (T, 128), padded/truncated to 10
    vggsound40k/feature/video/zip/<video_id>.zip   (10, 7, 7, C)
    vggsound40k/label/zip/<video_id>.zip           optional (10,) 0/1 segment relevance (AV variant);
                                                   absent -> every segment is the clip's class
    optional CSV column `prompt` (hdcid extension): a per-clip prompt that overrides the category's
    prompt where non-empty (the original has exactly one prompt per category)

Text is embedded per distinct prompt by a `TextBackend` (hdcid.data.text) -> (N, 10, word_dim).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hdcid.data.avvp import read_zip_features
from hdcid.data.clipset import ClipSet
from hdcid.data.formats import (
    DataFormatError,
    check_finite,
    class_index,
    read_csv,
    read_lines,
    read_zip_pickle,
    write_csv,
    write_lines,
    write_zip_pickle,
)

PRETRAIN_DIR = Path("vggsound40k")
CSV_NAME = "vggsound-avel40k.csv"
CATEGORIES_NAME = "VggsoundAVEL40kCategories.txt"
PROMPTS_NAME = "vggsoundCategories2Prompts.csv"


def read_prompts(root: str | Path) -> dict[str, str]:
    """{label: prompt}: for each label the 2nd field of its first row (original behaviour)."""
    path = Path(root) / PRETRAIN_DIR / PROMPTS_NAME
    df = read_csv(path, ("label",))
    if df.shape[1] < 2:
        raise DataFormatError(f"{path}: expected a 'label' column and a prompt column, found {list(df.columns)}")
    prompts: dict[str, str] = {}
    for label, prompt in zip(df["label"], df.iloc[:, 1]):
        prompts.setdefault(label, prompt)
    return prompts


def _default_text_backend(root: Path) -> Any:
    from hdcid.utils import data_dir

    npz = data_dir() / "demo_assets" / "text_minilm.npz"
    if not npz.exists():
        raise DataFormatError(
            f"read_pretrain({root}): no text_backend given and the default {npz} does not exist; "
            "pass text_backend=MiniLMText() or a PrecomputedText"
        )
    from hdcid.data.text import default_text_backend  # PrecomputedText of that file

    return default_text_backend()


def read_pretrain(root: str | Path, text_backend: Any = None, n_words: int = 10) -> ClipSet:
    """All rows of the pretraining CSV (train+val+test concatenated) as a ClipSet "pretrain":
    video (N,10,G,G,C), audio (N,10,A), text (N,n_words,word_dim) from the class prompt, labels
    (N,10,K+1) (class on every relevant segment, background elsewhere), meta split/prompt."""
    root = Path(root)
    d = root / PRETRAIN_DIR
    classes = read_lines(d / CATEGORIES_NAME)
    csv = d / CSV_NAME
    df = read_csv(csv, ("category", "video_id", "split"))
    cls = class_index(df["category"].tolist(), classes, str(csv))
    prompts = read_prompts(root)
    missing = sorted(set(df["category"]) - set(prompts))
    if missing:
        raise DataFormatError(f"{d / PROMPTS_NAME}: expected a prompt row for every category, missing {missing[:5]}")
    ids = df["video_id"].tolist()
    audio = read_zip_features(d / "feature" / "audio" / "zip", ids, "audio", pad=True)
    video = read_zip_features(d / "feature" / "video" / "zip", ids, "video")
    K, T = len(classes), audio.shape[1]
    relevance = np.ones((len(ids), T), dtype=np.float32)  # (N, T)
    label_dir = d / "label" / "zip"
    if label_dir.is_dir():
        for i, vid in enumerate(ids):
            rel = read_zip_pickle(label_dir / f"{vid}.zip").reshape(-1)
            where = label_dir / f"{vid}.zip"
            if rel.shape != (T,):
                raise DataFormatError(f"{where}: expected shape ({T},), found {rel.shape}")
            bad = ~np.isfinite(rel) | (rel < 0) | (rel > 1)
            if bad.any():
                t = int(np.flatnonzero(bad)[0])
                raise DataFormatError(
                    f"{where}: expected segment relevance in [0, 1] (1 = the clip's class, "
                    f"0 = background), found {float(rel[t])} at segment {t} "
                    f"({int(bad.sum())} bad values)"
                )
            relevance[i] = rel
    labels = np.zeros((len(ids), T, K + 1), dtype=np.float32)
    labels[np.arange(len(ids)), :, cls] = relevance
    labels[:, :, K] = 1.0 - relevance
    # text: one embedding per distinct prompt, gathered per clip
    backend = text_backend if text_backend is not None else _default_text_backend(root)  # MiniLM npz
    clip_prompts = [prompts[c] for c in df["category"]]
    if "prompt" in df.columns:  # hdcid extension: per-clip prompts
        clip_prompts = [p if p.strip() else q for p, q in zip(df["prompt"], clip_prompts)]
    uniq, inverse = np.unique(np.asarray(clip_prompts, dtype=object), return_inverse=True)
    emb = np.asarray(backend.embed_words([str(u) for u in uniq], n_words=n_words), dtype=np.float32)
    if emb.ndim != 3 or emb.shape[:2] != (len(uniq), n_words):
        raise DataFormatError(
            f"text backend {getattr(backend, 'name', type(backend).__name__)}: expected "
            f"({len(uniq)}, {n_words}, dim), found {emb.shape}"
        )
    check_finite(emb, f"text backend {getattr(backend, 'name', '?')}")
    text = emb[inverse]  # (N, n_words, word_dim)
    if n_words != T:
        raise DataFormatError(f"{csv}: text has {n_words} word slots but features have {T} segments")
    return ClipSet(
        name="pretrain",
        ids=ids,
        classes=classes,
        labels=labels,
        video=video,
        audio=audio,
        text=text,
        meta={"split": df["split"].to_numpy(), "prompt": np.asarray(clip_prompts, dtype=object)},
    )


def write_pretrain(
    root: str | Path,
    classes: Sequence[str],
    prompts: dict[str, str],
    rows: Sequence[tuple[str, str, str]],
    audio: dict[str, np.ndarray],
    video: dict[str, np.ndarray],
    relevance: dict[str, np.ndarray] | None = None,
    clip_prompts: Sequence[str] | None = None,
) -> list[Path]:
    """Write the class list, prompts CSV (label,prompt), the CSV (rows: category, video_id, split;
    plus a `prompt` column if `clip_prompts` is given), audio (T,A) / video (10,G,G,C) zips and
    optional (10,) relevance label zips."""
    table = pd.DataFrame(rows, columns=["category", "video_id", "split"])
    if clip_prompts is not None:
        table["prompt"] = list(clip_prompts)
    d = Path(root) / PRETRAIN_DIR
    out = [
        write_lines(d / CATEGORIES_NAME, classes),
        write_csv(d / PROMPTS_NAME, pd.DataFrame(list(prompts.items()), columns=["label", "prompt"])),
        write_csv(d / CSV_NAME, table),
    ]
    for mod, arrays in (("audio", audio), ("video", video), ("label", relevance or {})):
        sub = d / mod / "zip" if mod == "label" else d / "feature" / mod / "zip"
        for i, x in arrays.items():
            out.append(write_zip_pickle(sub / f"{i}.zip", np.asarray(x, dtype=np.float32)))
    return out
