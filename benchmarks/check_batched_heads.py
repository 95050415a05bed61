"""Check: the batched heads equal the sequential reference on the demo corpus (full schedule).

    HDCID_CACHE=<checkpoints> HDCID_DEMO_ROOT=<demo corpus> python benchmarks/check_batched_heads.py \\
        [--tasks ave avvp] [--variant hdcid] [--direction v2a]

For each task: ``fit_task`` with the default TOC grid (9 candidates) x 3 seeds, the honest protocol and
the task's full epoch count, once with ``batched=True`` and once with ``batched=False`` (one
``fit_head`` per member, today's path); prints per member the chosen epochs, and the largest
differences of the selection curves and of the reported rows' metrics. Uses the tiny checkpoints that
notebook 01 caches (never trains).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=["ave", "avvp"])
    p.add_argument("--variant", default="hdcid", choices=["dcid", "hdcid"])
    p.add_argument("--direction", default="v2a", choices=["v2a", "a2v"])
    a = p.parse_args(argv)
    from hdcid.downstream import default_toc_grid, load_task_data
    from hdcid.downstream.fitting import METRIC_COLUMNS, TaskOptions, fit_task, result_rows
    from hdcid.notebook import is_cached, pretrained, start

    S = start("check", quick=False, verbose=False)
    if not is_cached(a.variant, S):
        p.error(f"no cached {a.variant} checkpoint: run notebook 01 first")
    model = pretrained(a.variant, S).model
    grid = default_toc_grid(model.cfg.hidden_dim)
    for task in a.tasks:
        data = load_task_data(task, S.data_root)
        out, t = {}, {}
        for batched in (True, False):
            t0 = time.perf_counter()
            opts = TaskOptions(seeds=(0, 1, 2), batched=batched)
            out[batched] = fit_task(task, a.direction, model, data, toc=grid, options=opts)
            t[batched] = time.perf_counter() - t0
        b, s = out[True], out[False]
        same_epochs = all(b.best[k][0].epoch == s.best[k][0].epoch and b.best[k][1] == s.best[k][1] for k in s.best)
        curve = max(
            float(np.abs(b.histories[k].to_numpy() - s.histories[k][b.histories[k].columns].to_numpy()).max())
            for k in s.histories
        )
        member_epochs = [
            (
                k,
                int(b.histories[k][b.best[0][0].select_column].idxmax()),
                int(s.histories[k][s.best[0][0].select_column].idxmax()),
            )
            for k in s.histories
        ]
        rb, rs = result_rows(b, "x"), result_rows(s, "x")
        cols = ["value", "select_value", *METRIC_COLUMNS]
        rows = float(np.nanmax(np.abs(rb[cols].to_numpy(float) - rs[cols].to_numpy(float))))
        print(
            f"{task} {a.variant} {a.direction}: {len(s.histories)} members x {s.epochs} epochs | batched "
            f"{t[True]:.1f} s, sequential {t[False]:.1f} s | every member's chosen epoch equal: "
            f"{all(x == y for _, x, y in member_epochs)} | per-seed choice (epoch, TOC) equal: {same_epochs} | "
            f"max |diff| selection curves {curve:.2e}, reported metrics {rows:.2e}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
