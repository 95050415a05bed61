"""UCF101 <-> VGGSound-AVEL subsets reader and writer (docs/method.md §1.3).

Layout under `data_root`::

    feature_extractor/feature_extractor/ucf2vggsound.csv     category,video_id
    feature_extractor/feature_extractor/vggsound2ucf.csv     category,video_id,split (split ignored)
    feature_extractor/feature_extractor/UCF101sameVGGSound.txt / VGGSoundsameUCF101.txt
                                                             K lines each, index-aligned
    UCF101/feature/video/zip/<video_id>.zip                  (T, 7, 7, C), any T >= 1 -> 10
    vggsound40k/feature/audio/zip/<video_id>.zip             (T, 128) -> 10
    vggsound40k/feature/video/zip/<video_id>.zip             (10, 7, 7, C) (optional here)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hdcid.data.avvp import read_zip_features
from hdcid.data.clipset import ClipSet
from hdcid.data.formats import (
    DataFormatError,
    class_index,
    read_csv,
    read_lines,
    write_csv,
    write_lines,
    write_zip_pickle,
)

LIST_DIR = Path("feature_extractor") / "feature_extractor"
UCF_FEATURES = Path("UCF101") / "feature"
VGG_FEATURES = Path("vggsound40k") / "feature"


def _clip_labels(cls: np.ndarray, K: int, T: int = 10) -> np.ndarray:
    """(N, T, K+1): class column 1 on every segment, background 0 (original UCF/VGG labels)."""
    lab = np.zeros((len(cls), T, K + 1), dtype=np.float32)
    lab[np.arange(len(cls)), :, cls] = 1.0
    return lab


def _check_aligned(root: Path) -> tuple[list[str], list[str]]:
    ucf = read_lines(root / LIST_DIR / "UCF101sameVGGSound.txt")
    vgg = read_lines(root / LIST_DIR / "VGGSoundsameUCF101.txt")
    if len(ucf) != len(vgg):
        raise DataFormatError(
            f"{root / LIST_DIR}: UCF101sameVGGSound.txt ({len(ucf)} lines) and "
            f"VGGSoundsameUCF101.txt ({len(vgg)} lines) must be index-aligned (same length)"
        )
    return ucf, vgg


def read_ucf(root: str | Path) -> ClipSet:
    """UCF side: video (N,10,G,G,C) from zips padded/truncated to 10, labels (N,10,K+1). Named "ucf"."""
    root = Path(root)
    classes, _ = _check_aligned(root)
    csv = root / LIST_DIR / "ucf2vggsound.csv"
    df = read_csv(csv, ("category", "video_id"))
    cls = class_index(df["category"].tolist(), classes, str(csv))
    ids = df["video_id"].tolist()
    video = read_zip_features(root / UCF_FEATURES / "video" / "zip", ids, "video", pad=True)
    return ClipSet(
        name="ucf", ids=ids, classes=classes, labels=_clip_labels(cls, len(classes)), video=video, audio=None
    )


def read_vggsound_ucf(root: str | Path) -> ClipSet:
    """VGGSound side: audio (N,10,A) padded/truncated, video if a zip exists for every clip; all rows
    (the split column is kept in `meta["split"]` but not used, as in the original). Named "vggsound"."""
    root = Path(root)
    _, classes = _check_aligned(root)
    csv = root / LIST_DIR / "vggsound2ucf.csv"
    df = read_csv(csv, ("category", "video_id", "split"))
    cls = class_index(df["category"].tolist(), classes, str(csv))
    ids = df["video_id"].tolist()
    audio = read_zip_features(root / VGG_FEATURES / "audio" / "zip", ids, "audio", pad=True)
    video = read_zip_features(root / VGG_FEATURES / "video" / "zip", ids, "video", required=False)
    return ClipSet(
        name="vggsound",
        ids=ids,
        classes=classes,
        labels=_clip_labels(cls, len(classes)),
        video=video,
        audio=audio,
        meta={"split": df["split"].to_numpy()},
    )


def write_ucf_vgg(
    root: str | Path,
    ucf_classes: Sequence[str],
    vgg_classes: Sequence[str],
    ucf_rows: Sequence[tuple[str, str]],
    ucf_video: dict[str, np.ndarray],
    vgg_rows: Sequence[tuple[str, str, str]],
    vgg_audio: dict[str, np.ndarray],
    vgg_video: dict[str, np.ndarray] | None = None,
) -> list[Path]:
    """Write both class lists, both CSVs (ucf rows (category, video_id); vgg rows (category,
    video_id, split)) and the zips: UCF video (T,G,G,C), VGG audio (T,A), VGG video (10,G,G,C)."""
    root = Path(root)
    if len(ucf_classes) != len(vgg_classes):
        raise ValueError("ucf_classes and vgg_classes must be index-aligned (same length)")
    d = root / LIST_DIR
    out = [
        write_lines(d / "UCF101sameVGGSound.txt", ucf_classes),
        write_lines(d / "VGGSoundsameUCF101.txt", vgg_classes),
        write_csv(d / "ucf2vggsound.csv", pd.DataFrame(ucf_rows, columns=["category", "video_id"])),
        write_csv(d / "vggsound2ucf.csv", pd.DataFrame(vgg_rows, columns=["category", "video_id", "split"])),
    ]
    for i, x in ucf_video.items():
        out.append(write_zip_pickle(root / UCF_FEATURES / "video" / "zip" / f"{i}.zip", x.astype(np.float32)))
    for i, x in vgg_audio.items():
        out.append(write_zip_pickle(root / VGG_FEATURES / "audio" / "zip" / f"{i}.zip", x.astype(np.float32)))
    for i, x in (vgg_video or {}).items():
        out.append(write_zip_pickle(root / VGG_FEATURES / "video" / "zip" / f"{i}.zip", x.astype(np.float32)))
    return out
