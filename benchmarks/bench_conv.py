"""Benchmark: the video encoder's and decoder's convolutions, ATen's kernels vs one matrix product
over the batch (`hdcid.model.conv`), per layer, forward alone and forward + backward.

    python benchmarks/bench_conv.py [--preset paper|tiny] [--dtype float64|float32] [--frames N]
                                    [--repeats R] [--threads 1]

The layers are those of `VideoEncoder` and `VideoDecoder` for the preset (frames = B*T: paper 40,
i.e. B=4, tiny 320, i.e. B=32). Prints one line per layer (median seconds of R repeats, the ratio,
and the largest difference relative to the output's largest value) and the totals.
"""

from __future__ import annotations

import argparse

import torch
from _timing import median_seconds

from hdcid.config import ModelConfig
from hdcid.model.conv import Conv2d, ConvTranspose2d, conv_kernel


def layers(cfg: ModelConfig) -> list[tuple[str, torch.nn.Module, int, bool]]:
    """(name, layer, input size, input needs grad) of the video encoder and decoder, in order."""
    c, cc, d, g = cfg.video_dim, cfg.video_conv_dim, cfg.hidden_dim, cfg.video_grid
    s = g - 4
    return [
        ("enc conv3x3 C->Cc/2", Conv2d(c, cc // 2, 3), g, False),
        ("enc conv3x3 Cc/2->Cc", Conv2d(cc // 2, cc, 3), g - 2, True),
        ("enc conv1x1 Cc", Conv2d(cc, cc, 1), s, True),
        ("enc residual 3x3 p1", Conv2d(cc, cc, 3, padding=1, bias=False), s, True),
        ("enc residual 1x1", Conv2d(cc, cc, 1, bias=False), s, True),
        ("dec convT3x3 D+Cc->Cc/2", ConvTranspose2d(d + cc, cc // 2, 3), s, True),
        ("dec residual 3x3 p1", Conv2d(cc // 2, cc // 2, 3, padding=1, bias=False), s + 2, True),
        ("dec residual 1x1", Conv2d(cc // 2, cc // 2, 1, bias=False), s + 2, True),
        ("dec convT3x3 Cc/2->C", ConvTranspose2d(cc // 2, c, 3), s + 2, True),
        ("dec convT1x1 C", ConvTranspose2d(c, c, 1), g, True),
    ]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="paper", choices=("paper", "tiny"))
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--frames", type=int, default=None, help="B*T (default paper 40, tiny 320)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dtype = getattr(torch, args.dtype)
    cfg = getattr(ModelConfig, args.preset)("hdcid")
    n = args.frames or (40 if args.preset == "paper" else 320)
    totals = {"native fwd": 0.0, "gemm fwd": 0.0, "native fwd+bwd": 0.0, "gemm fwd+bwd": 0.0}
    print(f"{args.preset} {args.dtype}, {n} frames, {args.threads} thread(s), median of {args.repeats}")
    for name, layer, size, needs_grad in layers(cfg):
        layer = layer.to(dtype)
        x = torch.randn(n, layer.in_channels, size, size, dtype=dtype, requires_grad=needs_grad)
        with torch.no_grad(), conv_kernel("native"):
            ref = layer(x)
        g = torch.randn_like(ref)
        row = {}
        for kernel in ("native", "gemm"):
            with conv_kernel(kernel):
                with torch.no_grad():
                    out = layer(x)
                    row[f"{kernel} fwd"] = median_seconds(lambda f=layer, x=x: f(x), args.repeats)
                row[f"{kernel} fwd+bwd"] = median_seconds(lambda f=layer, x=x, g=g: f(x).backward(g), args.repeats)
            if kernel == "gemm":
                row["rel diff"] = float((out - ref).abs().max() / ref.abs().max())
        for k in totals:
            totals[k] += row[k]
        print(
            f"  {name:24s} fwd {row['native fwd']:.3f} -> {row['gemm fwd']:.3f} s "
            f"({row['native fwd'] / row['gemm fwd']:.1f}x), fwd+bwd {row['native fwd+bwd']:.3f} -> "
            f"{row['gemm fwd+bwd']:.3f} s ({row['native fwd+bwd'] / row['gemm fwd+bwd']:.1f}x), "
            f"max rel diff {row['rel diff']:.1e}",
            flush=True,
        )
    print(
        f"  total: fwd {totals['native fwd']:.2f} -> {totals['gemm fwd']:.2f} s, "
        f"fwd+bwd {totals['native fwd+bwd']:.2f} -> {totals['gemm fwd+bwd']:.2f} s"
    )
    return totals


if __name__ == "__main__":
    main()
