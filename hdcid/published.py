"""Published cross-modal accuracies (%) to compare against, as data (docs/method.md §5.5).

Source: the CMG paper (NeurIPS 2023), Table 3: audio-visual-text DCID pretrained on VGGSound-AVEL 40K,
evaluated with the ORIGINAL protocol (best epoch on the test data; AVE evaluated on its training
split). Keys are ``(task, direction)`` with the task / direction names of ``hdcid.downstream``.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["PUBLISHED", "PUBLISHED_SOURCE", "TOC_HDCID_GAINS", "CHANCE", "published_table"]

PUBLISHED_SOURCE = "CMG paper (NeurIPS 2023) Table 3, original protocol"

_COLUMNS = [
    ("ave", "v2a"),
    ("ave", "a2v"),
    ("avvp", "v2a"),
    ("avvp", "a2v"),
    ("ave_avvp", "v2a"),
    ("ave_avvp", "a2v"),
    ("ucf_vgg", "v2a"),
    ("ucf_vgg", "a2v"),
]
_NAN = float("nan")
_ROWS = {
    "DCID": [54.1, 55.0, 63.4, 71.0, 53.0, 52.4, 67.1, 60.6],
    "same modality (upper bound)": [64.8, 65.8, 71.0, 72.9, _NAN, _NAN, 80.0, 85.4],
    "DCID without Cross-CPC": [43.8, 49.2, 59.3, 61.1, 45.5, 50.6, 60.6, 54.6],
    "DCID without MM-EMA and reset": [33.0, 35.5, 56.7, 61.2, 7.4, 12.6, 43.3, 35.2],
}

#: variant -> {(task, direction): accuracy %}; NaN where not published
PUBLISHED: dict[str, dict[tuple[str, str], float]] = {
    name: dict(zip(_COLUMNS, values)) for name, values in _ROWS.items()
}

#: TOC/H-DCID paper abstract: mean gain (points) over the four tasks relative to DCID
TOC_HDCID_GAINS = {"DCID+TOC": 1.70, "H-DCID": 3.64, "H-DCID+TOC": 4.43}

#: chance accuracy (%) of the video-level tasks
CHANCE = {"ave": 100 / 28, "ucf_vgg": 100 / 16}


def published_table() -> pd.DataFrame:
    """The published table: rows = variants, columns = MultiIndex (task, direction)."""
    return pd.DataFrame(
        [_ROWS[k] for k in _ROWS],
        index=list(_ROWS),
        columns=pd.MultiIndex.from_tuples(_COLUMNS, names=["task", "direction"]),
    )
