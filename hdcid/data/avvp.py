"""AVVP / LLP reader and writer (docs/method.md §1.3), and the LLP-style CSV helpers.

Layout under `data_root`::

    AVVP/data/AVVP_Categories.txt                        K names, line index = label column
    AVVP/data/AVVP_eval_{audio,visual}_checked_combined.csv   tab-separated:
        filename<TAB>onset<TAB>offset<TAB>event_labels   (last three comma-joined, equal length)
    AVVP/feature/video/zip/<filename[:11]>.zip           (10, 7, 7, C)
    AVVP/feature/audio/zip/<filename[:11]>.zip           (T, 128), padded/truncated to 10
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hdcid.data.clipset import ClipSet
from hdcid.data.formats import (
    DataFormatError,
    check_finite,
    check_shape,
    class_index,
    pad_or_truncate,
    read_csv,
    read_lines,
    read_zip_pickle,
    write_csv,
    write_lines,
    write_zip_pickle,
)

AVVP_DIR = Path("AVVP")
ANNOTATIONS = ("visual", "audio")
LLP_COLUMNS = ("filename", "onset", "offset", "event_labels")
Event = tuple[int, int, str]  # (onset, offset exclusive, class name)


def events_to_labels(events: Sequence[Event], classes: Sequence[str], T: int = 10, where: str = "events") -> np.ndarray:
    """(T, K+1) float32: column c is 1 at t iff an event of c has onset <= t < offset; last column
    (background) is 1 where no event covers t."""
    K = len(classes)
    lab = np.zeros((T, K + 1), dtype=np.float32)
    if events:
        cls = class_index([e[2] for e in events], classes, where)
        t = np.arange(T)
        for on, off, name in events:
            if not (0 <= on < off <= T):
                raise DataFormatError(
                    f"{where}: event {name!r} spans [{on}, {off}); expected 0 <= onset < offset <= {T}"
                )
        for (on, off, _), c in zip(events, cls):
            lab[(t >= on) & (t < off), c] = 1.0
    lab[:, K] = (lab[:, :K].sum(axis=1) == 0).astype(np.float32)
    return lab


def _whole_second(value: str, what: str, row: Mapping, where: str) -> int:
    """An onset/offset string as an int; '3' and '3.0' are fine, '2.5' or 'abc' raise."""
    try:
        v = float(value)
    except ValueError as e:
        raise DataFormatError(f"{where}: row {row['filename']!r} has a non-numeric {what} {value!r}") from e
    if not np.isfinite(v) or v != int(v):
        raise DataFormatError(
            f"{where}: row {row['filename']!r} has {what} {value!r}; expected whole "
            "seconds (segment indices), found a fractional or non-finite value"
        )
    return int(v)


def parse_llp_row(row: Mapping, where: str, T: int | None = None) -> list[Event]:
    """Split one combined LLP row into events; raises on mismatched list lengths, onsets/offsets that
    are not whole seconds, offset <= onset, or (given T) a span outside 0..T."""
    ons, offs, labs = (str(row[c]).split(",") for c in ("onset", "offset", "event_labels"))
    if not (len(ons) == len(offs) == len(labs)):
        raise DataFormatError(
            f"{where}: row {row['filename']!r} expected equal-length onset/offset/event_labels lists, "
            f"found lengths {len(ons)}/{len(offs)}/{len(labs)}"
        )
    events = []
    for a, b, c in zip(ons, offs, labs):
        on, off = _whole_second(a, "onset", row, where), _whole_second(b, "offset", row, where)
        if off <= on:
            raise DataFormatError(
                f"{where}: row {row['filename']!r} event {c.strip()!r} has offset {off} <= "
                f"onset {on}; expected onset < offset (offset exclusive)"
            )
        if T is not None and (on < 0 or off > T):
            raise DataFormatError(
                f"{where}: row {row['filename']!r} event {c.strip()!r} spans [{on}, {off}); "
                f"expected 0 <= onset < offset <= {T} (the clip has {T} segments)"
            )
        events.append((on, off, c.strip()))
    return events


def read_llp_csv(path: str | Path, classes: Sequence[str], T: int = 10) -> tuple[list[str], np.ndarray]:
    """Filenames (N,) and labels (N, T, K+1) of a tab-separated combined LLP CSV (read as str)."""
    df = read_csv(path, LLP_COLUMNS, sep="\t")
    labels = np.zeros((len(df), T, len(classes) + 1), dtype=np.float32)
    for i, row in enumerate(df.to_dict("records")):  # plain dicts: 10x faster than iterrows' Series
        labels[i] = events_to_labels(parse_llp_row(row, str(path), T), classes, T, where=str(path))
    return df["filename"].tolist(), labels


def write_llp_csv(path: str | Path, rows: Iterable[tuple[str, Sequence[Event]]]) -> Path:
    """Write a combined LLP CSV: one row per filename with its events' comma-joined fields."""
    recs = [
        {
            "filename": fn,
            "onset": ",".join(str(e[0]) for e in ev),
            "offset": ",".join(str(e[1]) for e in ev),
            "event_labels": ",".join(e[2] for e in ev),
        }
        for fn, ev in rows
    ]
    return write_csv(path, pd.DataFrame(recs, columns=list(LLP_COLUMNS)), sep="\t")


def read_zip_features(
    folder: Path,
    ids: Sequence[str],
    modality: str,
    T: int = 10,
    pad: bool = False,
    required: bool = True,
    memo: dict | None = None,
) -> np.ndarray | None:
    """Stack `<folder>/<id>.zip` arrays: audio (N,T,A) / video (N,T,G,G,C) float32.

    `pad`: pad/truncate to T rows (else the stored T must equal `T`). If `required` is False, the
    modality is optional: returns None unless a zip exists for every id. `memo`: a dict shared by
    calls that read the same zips with the same `T` and `pad` (the two annotation sets of AVVP name
    mostly the same clips): each zip is read and checked once.
    """
    paths = [folder / f"{i}.zip" for i in ids]
    if not required and not all(p.exists() for p in paths):
        return None
    out = []
    for p in paths:
        x = memo.get(p) if memo is not None else None
        if x is None:
            x = _read_one(p, modality, T, pad)
            if memo is not None:
                memo[p] = x
        if out and x.shape[1:] != out[0].shape[1:]:  # name the odd file and the reference one
            raise DataFormatError(
                f"{p}: expected {modality} features of shape {out[0].shape} like {paths[0].name} and the "
                f"files before it in {folder}, found {x.shape}"
            )
        out.append(x)
    if not out:
        return None
    return np.stack(out)


def _read_one(p: Path, modality: str, T: int, pad: bool) -> np.ndarray:
    """One clip's checked features (T, A) / (T, G, G, C) float32 from `p`."""
    x = read_zip_pickle(p)
    if x.ndim != (2 if modality == "audio" else 4) or x.size == 0:
        want = "(T, A)" if modality == "audio" else "(T, G, G, C)"
        raise DataFormatError(
            f"{p}: expected {modality} features {want} with T >= 1 and every size > 0, found shape {x.shape}"
        )
    if pad:
        x = pad_or_truncate(x, T)
    want = (T, None) if modality == "audio" else (T, None, None, None)
    check_shape(x, want, f"{p} ({modality} features)")
    check_finite(x, str(p))
    return x.astype(np.float32)


def read_llp_clipset(
    name: str, csv_path: Path, classes: list[str], feature_root: Path, require: str, memo: dict | None = None
) -> ClipSet:
    """Labels from an LLP CSV and both modalities' zips from `feature_root/{video,audio}/zip`
    (the modality named by `require` must exist for every clip; the other is loaded if present for
    every clip, else None). `memo`: shared by calls on the same zips (`read_zip_features`)."""
    filenames, labels = read_llp_csv(csv_path, classes)
    ytids = [f[:11] for f in filenames]
    video = read_zip_features(feature_root / "video" / "zip", ytids, "video", required=require == "video", memo=memo)
    audio = read_zip_features(
        feature_root / "audio" / "zip", ytids, "audio", pad=True, required=require == "audio", memo=memo
    )
    return ClipSet(name=name, ids=filenames, classes=classes, labels=labels, video=video, audio=audio)


def read_avvp(root: str | Path, annotations: str = "visual", memo: dict | None = None) -> ClipSet:
    """AVVP with the `annotations` ("visual" | "audio") CSV's labels, named "avvp/<annotations>".

    The annotated modality's features must exist; the other modality is loaded if its zip exists
    for every clip, else None. `memo`: a dict shared by the reads of both annotation sets, so each
    clip's zips are read once (`read_zip_features`).
    """
    if annotations not in ANNOTATIONS:
        raise ValueError(f"annotations must be one of {ANNOTATIONS}, got {annotations!r}")
    d = Path(root) / AVVP_DIR
    classes = read_lines(d / "data" / "AVVP_Categories.txt")
    csv = d / "data" / f"AVVP_eval_{annotations}_checked_combined.csv"
    return read_llp_clipset(
        f"avvp/{annotations}",
        csv,
        classes,
        d / "feature",
        require="video" if annotations == "visual" else "audio",
        memo=memo,
    )


def write_avvp(
    root: str | Path,
    classes: Sequence[str],
    visual_rows,
    audio_rows,
    video: dict[str, np.ndarray],
    audio: dict[str, np.ndarray],
) -> list[Path]:
    """Write the AVVP category list, the two combined CSVs (rows: (filename, events)) and the
    per-ytid zips (`video[ytid]` (10,G,G,C), `audio[ytid]` (T,A))."""
    d = Path(root) / AVVP_DIR
    out = [
        write_lines(d / "data" / "AVVP_Categories.txt", classes),
        write_llp_csv(d / "data" / "AVVP_eval_visual_checked_combined.csv", visual_rows),
        write_llp_csv(d / "data" / "AVVP_eval_audio_checked_combined.csv", audio_rows),
    ]
    out += write_feature_zips(d / "feature", video, audio)
    return out


def write_feature_zips(
    feature_root: Path, video: dict[str, np.ndarray] | None, audio: dict[str, np.ndarray] | None, dtype=np.float32
) -> list[Path]:
    """`feature_root/{video,audio}/zip/<id>.zip` for every id of each dict."""
    out = []
    for mod, arrays in (("video", video), ("audio", audio)):
        for i, x in (arrays or {}).items():
            out.append(write_zip_pickle(feature_root / mod / "zip" / f"{i}.zip", np.asarray(x, dtype)))
    return out
