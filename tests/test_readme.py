"""The README's Python example runs (on a tiny exported checkpoint and the small demo corpus)."""

import re
from pathlib import Path

import torch

from hdcid.config import ModelConfig
from hdcid.model import CrossModalModel, export_original_checkpoint

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs(tmp_path, small_demo_root):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    ckpt = export_original_checkpoint(tmp_path / "released.pt", CrossModalModel(ModelConfig.tiny("hdcid")), epoch=3)
    code = block.replace("checkpoints/original/nips2023_AVT_vgg40k_size400.pt", str(ckpt))
    code = code.replace("/big/disk/hdcid_data", str(small_demo_root))
    assert code != block
    ns: dict = {}
    exec(compile(code, "README.md", "exec"), ns)
    enc = ns["enc"]
    assert len(enc.indices) == 2 and enc.indices[0].shape == (4, 10)
    assert enc.quantized[1].shape == (4, 10, ModelConfig.tiny().hidden_dim)
    assert ns["model"].training is False and next(ns["model"].parameters()).dtype == torch.float64
