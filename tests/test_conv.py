"""The video convolutions as one matrix product (hdcid/model/conv.py) equal ATen's kernels to float
rounding: outputs and gradients to 1e-10 in float64, and a whole faithful H-DCID step."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hdcid.config import ModelConfig, TrainConfig
from hdcid.demo.synthetic import random_clipset
from hdcid.model import conv
from hdcid.model.conv import Conv2d, ConvTranspose2d, conv_kernel
from hdcid.train import Pretrainer

TOL = dict(rtol=1e-10, atol=1e-10)


def _grads(layer: torch.nn.Module, x: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
    layer.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_()
    out = layer(x)
    out.backward(g)
    return [out, x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize(
    "make, size",
    [
        (lambda: Conv2d(12, 20, 3), 7),  # the encoder's valid 3x3
        (lambda: Conv2d(20, 16, 3, padding=1, bias=False), 3),  # residual 3x3, padding 1
        (lambda: Conv2d(16, 24, 1), 3),  # 1x1
        (lambda: ConvTranspose2d(24, 10, 3), 3),  # decoder 3x3: 3x3 -> 5x5
        (lambda: ConvTranspose2d(10, 8, 1), 7),  # decoder 1x1
        (lambda: ConvTranspose2d(10, 8, 3, bias=False), 5),
    ],
)
def test_gemm_equals_aten_to_1e10_in_float64(make, size):
    torch.manual_seed(0)
    layer = make().double()
    x = torch.randn(6, layer.in_channels, size, size, dtype=torch.float64)
    with torch.no_grad(), conv_kernel("native"):
        g = torch.randn_like(layer(x))  # upstream gradient
    with conv_kernel("native"):
        ref = _grads(layer, x, g)
    with conv_kernel("gemm"):
        got = _grads(layer, x, g)
    assert ref[0].abs().max() > 0.1  # a real output, not zeros
    for a, b in zip(got, ref):
        torch.testing.assert_close(a, b, **TOL)
    # the native kernel is the nn layer's own forward, bit for bit
    with conv_kernel("native"):
        native = layer(x)
    base = F.conv2d if isinstance(layer, Conv2d) else F.conv_transpose2d
    assert torch.equal(native, base(x, layer.weight, layer.bias, padding=layer.padding))


def test_channels_last_input_and_auto_choice():
    torch.manual_seed(1)
    small = Conv2d(8, 8, 3).double()  # below GEMM_MIN_WEIGHTS: ATen under "auto", same bits
    x = torch.randn(4, 7, 7, 8, dtype=torch.float64).permute(0, 3, 1, 2)  # channels-last memory
    assert torch.equal(small(x), F.conv2d(x, small.weight, small.bias))
    big = Conv2d(64, 512, 3).double()  # 294,912 weights >= GEMM_MIN_WEIGHTS: the product
    assert big.weight.numel() >= conv.GEMM_MIN_WEIGHTS > small.weight.numel()
    y = torch.randn(3, 5, 5, 64, dtype=torch.float64).permute(0, 3, 1, 2)
    torch.testing.assert_close(big(y), F.conv2d(y, big.weight, big.bias), **TOL)
    assert big(y).permute(0, 2, 3, 1).is_contiguous()  # channels-last out: the next layer reads it as is


def test_unknown_kernel_is_refused_and_setting_restored():
    with pytest.raises(ValueError, match="conv_kernel must be one of"):
        with conv_kernel("fast"):
            pass
    with conv_kernel("native"):
        assert conv._state["kernel"] == "native"
    assert conv._state["kernel"] == "auto"


def _faithful_steps(tmp_path, kernel: str, name: str):
    mc = ModelConfig.tiny("hdcid")
    tc = TrainConfig.tiny("hdcid").faithful().replace(batch_size=4)
    torch.manual_seed(0)
    tr = Pretrainer(mc, tc, random_clipset(mc, 4), tmp_path / name, device="cpu")
    batch = tr._batch(np.arange(4))
    with conv_kernel(kernel):
        rows = [tr.train_step(*batch, tc.level2_start_epoch) for _ in range(2)]
    return tr.model.state_dict(), rows


def test_faithful_step_with_gemm_convs_equals_aten_to_1e10(tmp_path):
    ref_state, ref_rows = _faithful_steps(tmp_path, "native", "a")
    state, rows = _faithful_steps(tmp_path, "gemm", "b")
    for k, v in ref_state.items():
        if v.is_floating_point():
            torch.testing.assert_close(state[k], v, **TOL, msg=k)
        else:
            assert torch.equal(state[k], v), k
    for a, b in zip(rows, ref_rows):
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-10, abs=1e-10, nan_ok=True), k
