"""Convolutions of the video encoder and decoder as one matrix product over the whole batch.

The paper-size video path convolves 512- to 2304-channel maps of 3x3 to 7x7 positions. ATen's CPU
kernels for these shapes (`_slow_conv2d` and `slow_conv_transpose2d` in float64, which oneDNN does
not cover; oneDNN in float32) were the faithful step's largest cost. Here the same convolution is
one matrix product over all frames (im2col: the channels and kernel positions that feed an output
position as one row), which reads each weight once per call:

* `Conv2d` (stride 1, zero padding p, k x k): rows `X[n, i:i+k, j:j+k, :]` of the padded
  channels-last input, flattened in the weight's (C_in, k, k) order; `Y = rows @ W^T + b`.
* `ConvTranspose2d` (stride 1, no padding): `cols = X @ W` for every input position (W as
  (C_in, C_out*k*k)), then each column added at its output position (`F.fold`, col2im), `+ b`.

Same sums as ATen's kernels, in another order: equal to float rounding (tests/test_conv.py checks
outputs and gradients to 1e-10 in float64, and a whole faithful H-DCID step). Measured on this
project's shared 2-core CPU, 1 thread, median of 3 (`python benchmarks/bench_conv.py`), the ten
paper-size layers at B*T = 40 frames, forward + backward: float64 37.2 -> 6.9 s, float32 5.0 ->
3.6 s (forward alone in float32: 1.07 -> 1.23 s). For the tiny preset's 3x3 layers (B*T = 320)
oneDNN is 1.4-5x faster in float32, so the products are used on the CPU only for weights of at
least `GEMM_MIN_WEIGHTS` values (every paper-size layer; no tiny one, which keep their bits), and
ATen everywhere else (CUDA, strides, groups). `conv_kernel("native")` restores ATen's kernels
everywhere, `conv_kernel("gemm")` forces the products on the CPU.
Subclasses of the `nn` layers: same parameters, `state_dict` keys and initialisation.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

GEMM_MIN_WEIGHTS = 2**18  # tiny preset's largest weight: 128*32*9 = 36,864; paper's smallest: 512*512
KERNELS = ("auto", "gemm", "native")
_state = {"kernel": "auto"}  # process-wide, like torch.backends flags


@contextlib.contextmanager
def conv_kernel(kernel: str) -> Iterator[None]:
    """Within the block, video convolutions use `kernel`: "auto" (default: products on the CPU
    for large weights), "gemm" (products for every CPU convolution) or "native" (ATen's kernels)."""
    if kernel not in KERNELS:
        raise ValueError(f"conv_kernel must be one of {KERNELS}, got {kernel!r}")
    before = _state["kernel"]
    _state["kernel"] = kernel
    try:
        yield
    finally:
        _state["kernel"] = before


def _use_gemm(x: torch.Tensor, weight: torch.Tensor, simple: bool) -> bool:
    kernel = _state["kernel"]
    if kernel == "native" or not simple or x.device.type != "cpu":
        return False
    return kernel == "gemm" or weight.numel() >= GEMM_MIN_WEIGHTS


def conv2d_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=padding)` (stride 1) as one matrix product.

    x (N, C, H, W) any memory layout, weight (C', C, k, k) -> (N, C', H', W') with channels-last
    memory (a following channels-last consumer reads it without a copy), H' = H + 2p - k + 1.
    """
    n, c = x.shape[:2]
    co, _, k, _ = weight.shape
    xh = x.permute(0, 2, 3, 1)  # (N, H, W, C)
    if padding:
        xh = F.pad(xh, (0, 0, padding, padding, padding, padding))  # (N, H+2p, W+2p, C)
    ho, wo = xh.shape[1] - k + 1, xh.shape[2] - k + 1
    if k == 1:
        rows = xh.reshape(n * ho * wo, c)  # (N*H'*W', C)
    else:
        rows = xh.unfold(1, k, 1).unfold(2, k, 1).reshape(n * ho * wo, c * k * k)  # (N*H'*W', C*k*k)
    w = weight.reshape(co, -1).t()  # (C*k*k, C')
    out = rows @ w if bias is None else torch.addmm(bias, rows, w)  # (N*H'*W', C')
    return out.view(n, ho, wo, co).permute(0, 3, 1, 2)  # (N, C', H', W')


def conv_transpose2d_gemm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`F.conv_transpose2d(x, weight, bias)` (stride 1, no padding) as one product and a col2im.

    x (N, C, H, W), weight (C, C', k, k) -> (N, C', H+k-1, W+k-1).
    """
    n, c, h, w = x.shape
    co, k = weight.shape[1], weight.shape[2]
    xm = x.permute(0, 2, 3, 1).reshape(n * h * w, c)  # (N*H*W, C)
    if k == 1:
        out = xm @ weight.reshape(c, co) if bias is None else torch.addmm(bias, xm, weight.reshape(c, co))
        return out.view(n, h, w, co).permute(0, 3, 1, 2)  # (N, C', H, W), channels-last memory
    cols = (xm @ weight.reshape(c, co * k * k)).view(n, h * w, co * k * k).transpose(1, 2)  # (N, C'*k*k, H*W)
    out = F.fold(cols, (h + k - 1, w + k - 1), k)  # (N, C', H+k-1, W+k-1): each column added in place
    return out if bias is None else out + bias.view(1, -1, 1, 1)


class Conv2d(nn.Conv2d):
    """`nn.Conv2d` whose CPU forward is `conv2d_gemm` where that is faster (see the module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        simple = (
            self.stride == (1, 1)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding_mode == "zeros"
            and isinstance(self.padding, tuple)
            and self.padding[0] == self.padding[1]
            and self.kernel_size[0] == self.kernel_size[1]
        )
        if _use_gemm(x, self.weight, simple):
            return conv2d_gemm(x, self.weight, self.bias, self.padding[0])
        return super().forward(x)


class ConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` whose CPU forward is `conv_transpose2d_gemm` where that is faster."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        simple = (
            output_size is None
            and self.stride == (1, 1)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding == (0, 0)
            and self.output_padding == (0, 0)
            and self.kernel_size[0] == self.kernel_size[1]
        )
        if _use_gemm(x, self.weight, simple):
            return conv_transpose2d_gemm(x, self.weight, self.bias)
        return super().forward(x, output_size)
