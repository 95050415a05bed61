"""The DCID / H-DCID network: blocks, unified codebook, Cross-CPC, CLUB, decoders, checkpoints.

from hdcid.model import CrossModalModel, load_original_checkpoint
"""

from hdcid.model.checkpoint import (
    CheckpointError,
    export_original_checkpoint,
    load_checkpoint,
    load_model,
    load_original_checkpoint,
    save_checkpoint,
)
from hdcid.model.network import CrossModalModel, Encoded, TrainOutputs

__all__ = [
    "CheckpointError",
    "CrossModalModel",
    "Encoded",
    "TrainOutputs",
    "export_original_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_original_checkpoint",
    "save_checkpoint",
]
