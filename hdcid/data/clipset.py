"""`ClipSet`: one split of one dataset, fully in memory (numpy), the common currency of hdcid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hdcid.data.formats import DataFormatError
from hdcid.modalities import READ_ORDER


@dataclass
class ClipSet:
    """Clips with per-segment labels and per-modality features.

    name:    e.g. "ave/train", "avvp/visual", "ucf", "vggsound", "pretrain"
    ids:     clip ids, (N,)
    classes: foreground class names (K,); the background is label column K
    labels:  (N, T, K+1) float32 one-/multi-hot, last column background
    video:   (N, T, G, G, C) float32 or None
    audio:   (N, T, A) float32 or None
    text:    (N, T, word_dim) float32 word embeddings or None (pretraining only)
    meta:    optional extra per-clip columns (e.g. split, voice, writer group), each (N,)
    """

    name: str
    ids: list[str]
    classes: list[str]
    labels: np.ndarray
    video: np.ndarray | None
    audio: np.ndarray | None
    text: np.ndarray | None = None
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.ids)
        k1 = len(self.classes) + 1
        if self.labels.ndim != 3 or self.labels.shape[0] != n or self.labels.shape[2] != k1:
            raise DataFormatError(
                f"ClipSet {self.name!r}: labels expected shape ({n}, T, {k1}), found {self.labels.shape}"
            )
        for m in READ_ORDER:
            x = getattr(self, m)
            if x is not None and (x.shape[0] != n or x.shape[1] != self.labels.shape[1]):
                raise DataFormatError(
                    f"ClipSet {self.name!r}: {m} expected leading shape ({n}, {self.labels.shape[1]}), found {x.shape}"
                )
        for k, v in self.meta.items():
            if len(v) != n:
                raise DataFormatError(f"ClipSet {self.name!r}: meta {k!r} has {len(v)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_classes(self) -> int:
        """K, the number of foreground classes (labels have K+1 columns)."""
        return len(self.classes)

    @property
    def n_segments(self) -> int:
        return int(self.labels.shape[1])

    @property
    def modalities(self) -> list[str]:
        return [m for m in READ_ORDER if getattr(self, m) is not None]

    def features(self, modality: str) -> np.ndarray:
        """The features of `modality` ("video" | "audio" | "text"); raises if absent."""
        if modality not in READ_ORDER:
            raise ValueError(f"modality must be one of {READ_ORDER}, got {modality!r}")
        x = getattr(self, modality)
        if x is None:
            raise ValueError(f"ClipSet {self.name!r} has no {modality} features (has {self.modalities})")
        return x

    def video_labels(self) -> np.ndarray:
        """(N,) int: the event class of each clip = the foreground class covering most segments.

        For single-event clips (AVE, UCF/VGG, pretraining) this is the clip's class; the original's
        `max_t argmax_c label[t, :K]` gives the same answer there.
        """
        fg = self.labels[:, :, : self.n_classes].sum(axis=1)  # (N, K)
        return fg.argmax(axis=1).astype(np.int64)

    def segment_labels(self) -> np.ndarray:
        """(N, T) int: per-segment class (argmax over all K+1 columns; K = background)."""
        return self.labels.argmax(axis=2).astype(np.int64)

    def subset(self, idx: Sequence[int] | np.ndarray, name: str | None = None) -> ClipSet:
        """Rows `idx` (int indices or a boolean mask) as a new ClipSet."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        pick = lambda x: None if x is None else x[idx]  # noqa: E731
        return ClipSet(
            name=name or self.name,
            ids=[self.ids[i] for i in idx],
            classes=list(self.classes),
            labels=self.labels[idx],
            video=pick(self.video),
            audio=pick(self.audio),
            text=pick(self.text),
            meta={k: np.asarray(v)[idx] for k, v in self.meta.items()},
        )

    def summary(self) -> str:
        """One line: name, N, K and the shape of each modality."""
        shapes = ", ".join(f"{m} {getattr(self, m).shape[1:]}" for m in self.modalities)
        return f"{self.name}: {len(self)} clips, {self.n_classes} classes, {shapes}"
