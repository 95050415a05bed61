"""AVE (AVE-ECCV18 release) reader and writer (docs/method.md §1.3).

Layout under `data_root`::

    AVE-ECCV18-master/data/visual_feature.h5   key avadataset (N, 10, 7, 7, C) float64
    AVE-ECCV18-master/data/audio_feature.h5    key avadataset (N, 10, 128)     float64
    AVE-ECCV18-master/data/labels.h5           key avadataset (N, 10, K+1)     one-hot, col K = background
    AVE-ECCV18-master/data/{train,val,test}_order.h5  key order (n,) int64 global indices
    AVE-ECCV18-master/data/categories.txt      optional (hdcid extension): K class names;
                                               absent -> the 28 standard AVE classes
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hdcid.data.clipset import ClipSet
from hdcid.data.formats import DataFormatError, check_finite, check_labels, read_h5, read_lines, write_h5, write_lines

AVE_DIR = Path("AVE-ECCV18-master") / "data"
SPLITS = ("train", "val", "test")
FEATURE_DTYPES = ("float32", "float64")
AVE_CLASSES = [
    "Church bell",
    "Male speech, man speaking",
    "Bark",
    "Fixed-wing aircraft, airplane",
    "Race car, auto racing",
    "Female speech, woman speaking",
    "Helicopter",
    "Violin, fiddle",
    "Flute",
    "Ukulele",
    "Frying (food)",
    "Truck",
    "Shofar",
    "Motorcycle",
    "Acoustic guitar",
    "Train horn",
    "Clock",
    "Banjo",
    "Goat",
    "Baby cry, infant cry",
    "Bus",
    "Chainsaw",
    "Cat",
    "Horse",
    "Toilet flush",
    "Rodents, rats, mice",
    "Accordion",
    "Mandolin",
]


def ave_classes(root: str | Path) -> list[str]:
    """The AVE class list: `categories.txt` if present, else the 28 standard AVE classes."""
    path = Path(root) / AVE_DIR / "categories.txt"
    return read_lines(path) if path.exists() else list(AVE_CLASSES)


def _check_class_count(root: str | Path, classes: list[str]) -> None:
    """labels.h5 must have len(classes) + 1 columns; without categories.txt say that file is the fix."""
    import h5py

    d = Path(root) / AVE_DIR
    lpath = d / "labels.h5"
    if (d / "categories.txt").exists() or not lpath.is_file():
        return  # read_h5 reports a missing labels.h5 / a wrong shape with categories.txt itself
    with h5py.File(lpath, "r") as f:
        shape = f["avadataset"].shape if "avadataset" in f else None
    if shape is not None and len(shape) == 3 and shape[2] != len(classes) + 1:
        raise DataFormatError(
            f"{d / 'categories.txt'} not found, so the {len(AVE_CLASSES)} standard AVE classes are assumed "
            f"({len(AVE_CLASSES) + 1} label columns), but {lpath} has {shape[2]} label columns; write "
            f"categories.txt with the {shape[2] - 1} class names (one per line, label column order)"
        )


def read_ave_order(root: str | Path, split: str) -> np.ndarray:
    """(n,) int64 global AVE indices of `split` (train/val/test)."""
    if split not in SPLITS:
        raise ValueError(f"AVE split must be one of {SPLITS}, got {split!r}")
    path = Path(root) / AVE_DIR / f"{split}_order.h5"
    return check_order(read_h5(path, "order", shape=(None,)), path)


def check_order(order: np.ndarray, path: Path) -> np.ndarray:
    """An order file's (n,) indices as int64; raises if not integers, empty, or repeating a clip."""
    if not np.issubdtype(order.dtype, np.integer):
        raise DataFormatError(f"{path}: key 'order' expected an integer dtype, found {order.dtype}")
    if order.size == 0:
        raise DataFormatError(f"{path}: key 'order' is empty; expected the global indices of at least one clip")
    uniq, counts = np.unique(order, return_counts=True)
    if (counts > 1).any():
        raise DataFormatError(
            f"{path}: key 'order' lists {int((counts > 1).sum())} clips more than once "
            f"(first: {int(uniq[counts > 1][0])}); expected distinct indices"
        )
    return order.astype(np.int64)


def read_ave_rows(
    root: str | Path, index: np.ndarray, labels_path: str | Path | None = None, n_label_cols: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Video (n,10,G,G,C), audio (n,10,A), labels (n,10,K+1) float32 for global AVE `index`.

    Only the requested rows are read (h5py fancy indexing). `labels_path` defaults to AVE's
    `labels.h5`; AVE->AVVP passes its own label file.
    """
    d = Path(root) / AVE_DIR
    vpath, apath = d / "visual_feature.h5", d / "audio_feature.h5"
    lpath = Path(labels_path) if labels_path else d / "labels.h5"
    video = read_h5(
        vpath,
        "avadataset",
        shape=(None, None, None, None, None),
        dtype=FEATURE_DTYPES,
        index=index,
        out_dtype=np.float32,
    )  # (n, T, G, G, C)
    audio = read_h5(
        apath, "avadataset", shape=(None, None, None), dtype=FEATURE_DTYPES, index=index, out_dtype=np.float32
    )  # (n, T, A)
    labels = read_h5(
        lpath, "avadataset", shape=(None, None, n_label_cols), index=index, out_dtype=np.float32
    )  # (n, T, K+1)
    check_labels(labels, f"{lpath} key 'avadataset' (rows of the order)")
    if video.shape[1] != audio.shape[1] or video.shape[1] != labels.shape[1]:
        raise DataFormatError(
            f"{d}: expected the same number of segments in visual ({video.shape}), audio "
            f"({audio.shape}) and labels ({labels.shape})"
        )
    if video.shape[2] != video.shape[3]:
        raise DataFormatError(f"{vpath}: key 'avadataset' expected (N, T, G, G, C), found {video.shape}")
    check_finite(video, f"{vpath} key 'avadataset'")
    check_finite(audio, f"{apath} key 'avadataset'")
    return video, audio, labels


def read_ave(root: str | Path, split: str = "train") -> ClipSet:
    """AVE `split` as a ClipSet named "ave/<split>"; ids are the global indices as strings.

    Memory: the split's rows only, float32 (AVE paper features: 3,339 train clips -> ~3.4 GB video).
    """
    order = read_ave_order(root, split)
    classes = ave_classes(root)
    _check_class_count(root, classes)
    return read_ave_clipset(root, f"ave/{split}", order, classes)


def read_ave_clipset(
    root: str | Path, name: str, order: np.ndarray, classes: list[str], labels_path: str | Path | None = None
) -> ClipSet:
    """The AVE clips at global indices `order` (`read_ave_rows`; labels (n,10,K+1) for the K
    `classes`) as a ClipSet named `name`, ids the indices as strings, `meta["order"]` = order."""
    video, audio, labels = read_ave_rows(root, order, labels_path=labels_path, n_label_cols=len(classes) + 1)
    return ClipSet(
        name=name,
        ids=[str(i) for i in order],
        classes=classes,
        labels=labels,
        video=video,
        audio=audio,
        meta={"order": order},
    )


def write_ave(
    root: str | Path,
    video: np.ndarray,
    audio: np.ndarray,
    labels: np.ndarray,
    orders: dict[str, np.ndarray],
    classes: list[str] | None = None,
    dtype=np.float64,
) -> list[Path]:
    """Write the AVE h5 set: features (N,10,G,G,C)/(N,10,A) as `dtype` (float64 = faithful),
    labels (N,10,K+1), one order file per split; `classes` -> categories.txt (if not the standard 28)."""
    d = Path(root) / AVE_DIR
    out = [
        write_h5(d / "visual_feature.h5", "avadataset", np.asarray(video, dtype=dtype)),
        write_h5(d / "audio_feature.h5", "avadataset", np.asarray(audio, dtype=dtype)),
        write_h5(d / "labels.h5", "avadataset", np.asarray(labels, dtype=np.float64)),
    ]
    for split, order in orders.items():
        out.append(write_h5(d / f"{split}_order.h5", "order", np.asarray(order, dtype=np.int64)))
    if classes is not None and list(classes) != AVE_CLASSES:
        out.append(write_lines(d / "categories.txt", classes))
    return out
