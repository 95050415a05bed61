"""Readers and writers of the original release formats, and the `ClipSet` container.

See docs/architecture.md ("hdcid.data") and data/README.md for the file layouts.
"""

from hdcid.data.ave import read_ave, write_ave
from hdcid.data.ave_avvp import read_ave_avvp_test, read_ave_avvp_train, write_ave_avvp
from hdcid.data.avvp import events_to_labels, read_avvp, read_llp_csv, write_avvp, write_llp_csv
from hdcid.data.clipset import ClipSet
from hdcid.data.formats import (
    DataFormatError,
    check_finite,
    pad_or_truncate,
    read_h5,
    read_zip_pickle,
    write_h5,
    write_zip_pickle,
)
from hdcid.data.pretrain import read_pretrain, write_pretrain
from hdcid.data.ucf_vgg import read_ucf, read_vggsound_ucf, write_ucf_vgg

__all__ = [
    "ClipSet",
    "DataFormatError",
    "check_finite",
    "events_to_labels",
    "pad_or_truncate",
    "read_ave",
    "read_ave_avvp_test",
    "read_ave_avvp_train",
    "read_avvp",
    "read_h5",
    "read_llp_csv",
    "read_pretrain",
    "read_ucf",
    "read_vggsound_ucf",
    "read_zip_pickle",
    "write_ave",
    "write_ave_avvp",
    "write_avvp",
    "write_h5",
    "write_llp_csv",
    "write_pretrain",
    "write_ucf_vgg",
    "write_zip_pickle",
]
