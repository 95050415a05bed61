"""Benchmark: TOC selection on a 400 x 256 codebook, closed form vs the original double loop.

    .venv/bin/python benchmarks/bench_toc.py [--repeats 200] [--loop-repeats 3]

Prints the median time of ``toc_select`` (closed form, O(M*D)) and of the same selection from the
literal double-loop scores (O(M^2*D), timed on fewer repeats), their ratio (target >= 1000x), and
checks that both select the same ordered indices. The closed form must fit a slider callback
(well under ~50 ms).
"""

from __future__ import annotations

import argparse

import torch
from _timing import median_seconds

from hdcid.toc import toc_scores_loop, toc_select


def _loop_select(E, c, a, b):
    s = toc_scores_loop(E)
    q = c // (a + b)
    top = torch.topk(s, q * a, largest=True, sorted=True).indices
    bot = torch.topk(s, q * b, largest=False, sorted=True).indices
    return torch.cat([top, bot])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--loop-repeats", type=int, default=3)
    p.add_argument("--codes", type=int, default=400)
    p.add_argument("--dim", type=int, default=256)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    E = torch.randn(a.codes, a.dim, generator=g, dtype=torch.float64) + torch.linspace(
        -1, 1, a.dim, dtype=torch.float64
    )
    setting = (128, 3, 1)
    closed = toc_select(E, *setting)
    loop = _loop_select(E, *setting)
    same = torch.equal(closed, loop)
    toc_select(E, *setting)  # warm-up
    t_closed = median_seconds(lambda: toc_select(E, *setting), a.repeats)
    t_loop = median_seconds(lambda: _loop_select(E, *setting), a.loop_repeats)
    out = {
        "codebook": f"{a.codes}x{a.dim}",
        "setting": setting,
        "closed_ms": 1e3 * t_closed,
        "loop_s": t_loop,
        "ratio": t_loop / t_closed,
        "same_indices": same,
    }
    print(
        f"TOC selection on a {a.codes}x{a.dim} float64 codebook, setting C={setting[0]} "
        f"max:min={setting[1]}:{setting[2]} (1 thread)"
    )
    print(f"  closed form : median {1e3 * t_closed:.3f} ms over {a.repeats} repeats")
    print(f"  double loop : median {t_loop:.3f} s over {a.loop_repeats} repeats")
    print(f"  ratio       : {t_loop / t_closed:,.0f}x (target >= 1000x)")
    print(f"  identical ordered indices: {same}")
    return out


if __name__ == "__main__":
    main()
