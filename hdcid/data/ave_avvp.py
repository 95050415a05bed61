"""AVE -> AVVP subset reader and writer (docs/method.md §1.3).

Layout under `data_root`::

    AVE_AVVP/AVE_AVVP_Categories.txt       K (12) names in LLP spelling
    AVE_AVVP/ave_avvp_order.h5             key order (n,) int: global AVE indices (train videos)
    AVE_AVVP/ave_avvp_labels.h5            key avadataset (>= max(order)+1, 10, K+1), indexed globally
    AVE_AVVP/AVE_AVVP_eval_{audio,visual}_checked_combined.csv   LLP format, only the K classes
    features: AVE h5 files (train) and AVVP zips (test)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hdcid.data.ave import check_order, read_ave_clipset
from hdcid.data.avvp import ANNOTATIONS, AVVP_DIR, read_llp_clipset, write_llp_csv
from hdcid.data.clipset import ClipSet
from hdcid.data.formats import read_h5, read_lines, write_h5, write_lines

SUBSET_DIR = Path("AVE_AVVP")


def ave_avvp_classes(root: str | Path) -> list[str]:
    return read_lines(Path(root) / SUBSET_DIR / "AVE_AVVP_Categories.txt")


def read_ave_avvp_train(root: str | Path) -> ClipSet:
    """AVE videos of the subset: AVE h5 features at `ave_avvp_order`, labels (n,10,K+1) from
    `ave_avvp_labels.h5` at the same global indices. Named "ave_avvp/train"."""
    d = Path(root) / SUBSET_DIR
    classes = ave_avvp_classes(root)
    opath = d / "ave_avvp_order.h5"
    order = check_order(read_h5(opath, "order", shape=(None,)), opath)
    return read_ave_clipset(root, "ave_avvp/train", order, classes, labels_path=d / "ave_avvp_labels.h5")


def read_ave_avvp_test(root: str | Path, annotations: str = "audio", memo: dict | None = None) -> ClipSet:
    """AVVP videos of the subset with the `annotations` CSV's labels (only the K subset classes;
    any other label string raises). Features from the AVVP zips (`memo`: shared by the reads of
    both annotation sets, see `read_avvp`). Named "ave_avvp/<annotations>"."""
    if annotations not in ANNOTATIONS:
        raise ValueError(f"annotations must be one of {ANNOTATIONS}, got {annotations!r}")
    d = Path(root) / SUBSET_DIR
    csv = d / f"AVE_AVVP_eval_{annotations}_checked_combined.csv"
    return read_llp_clipset(
        f"ave_avvp/{annotations}",
        csv,
        ave_avvp_classes(root),
        Path(root) / AVVP_DIR / "feature",
        require="video" if annotations == "visual" else "audio",
        memo=memo,
    )


def write_ave_avvp(
    root: str | Path, classes: Sequence[str], order: np.ndarray, labels: np.ndarray, visual_rows, audio_rows
) -> list[Path]:
    """Write the category list, order (n,), globally indexed labels (N_ave,10,K+1) and the two
    LLP CSVs (rows: (filename, events)). Features are the AVE h5 files and AVVP zips."""
    d = Path(root) / SUBSET_DIR
    return [
        write_lines(d / "AVE_AVVP_Categories.txt", classes),
        write_h5(d / "ave_avvp_order.h5", "order", np.asarray(order, dtype=np.int64)),
        write_h5(d / "ave_avvp_labels.h5", "avadataset", np.asarray(labels, dtype=np.float64)),
        write_llp_csv(d / "AVE_AVVP_eval_visual_checked_combined.csv", visual_rows),
        write_llp_csv(d / "AVE_AVVP_eval_audio_checked_combined.csv", audio_rows),
    ]
