"""The DCID / H-DCID network: blocks, unified codebook, Cross-CPC, CLUB, decoders, checkpoints.

from hdcid.model import CrossModalModel, load_original_checkpoint
"""

from hdcid.model.checkpoint import load_checkpoint, load_model, save_checkpoint
from hdcid.model.integrity import CheckpointError
from hdcid.model.network import CrossModalModel, Encoded, TrainOutputs
from hdcid.model.original_checkpoint import export_original_checkpoint, load_original_checkpoint

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
