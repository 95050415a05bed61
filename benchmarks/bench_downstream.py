"""Benchmark: the downstream workload of notebooks 05-08 (full mode), as the notebooks run it.

    HDCID_CACHE=<checkpoints> HDCID_DEMO_ROOT=<demo corpus> PYTHONPATH=<tree> \\
        python benchmarks/bench_downstream.py [--tasks ave avvp ave_avvp ucf_vgg] [--repeats 1] [--quick]

Per task (notebook 05 ave, 06 avvp, 07 ave_avvp, 08 ucf_vgg) it times, with the tiny DCID and H-DCID
checkpoints that notebook 01 caches (they must be there: pretrain them first by running notebook 01 or
``hdcid.notebook.pretrained``; this script loads, never trains) and codes already cached (one warm-up
call fills the code cache and is not timed):

* ``run_grid`` of both models x both directions, without TOC and with the default TOC grid (9
  candidates), 3 seeds, the honest protocol;
* the protocol switch: ``run_task`` DCID v2a under the original protocol (where the tree has
  ``hdcid.workers.background``, started in a background worker before the grid, as the notebooks do;
  its time is then what remains of it after the grid);
* ``analysis.task_predictions`` H-DCID v2a, seed 0 (where ``run_grid`` takes ``fits=``, as the
  notebooks do: the grid's head, not trained again).

Uses only calls whose signature is the same before and after the batched heads, so it runs against an
older checkout too (``PYTHONPATH=<old tree>``). ``--workers 1 2`` alternates ``TaskOptions.workers``
(grid cells fitted in that many threads) within each repeat. Prints one line per task, repeat and
workers; quote medians.
Target (issue 12): each task's total <= 20 s on a 2-core CPU, 1 torch thread (heads: ``FitConfig.cpu_threads``).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import statistics
import time
from dataclasses import replace

import torch

NOTEBOOK = {"ave": "05_ave", "avvp": "06_avvp", "ave_avvp": "07_ave_to_avvp", "ucf_vgg": "08_ucf_vggsound"}


def workload(task: str, models: dict, data: dict, quick: bool, workers: int | None = None) -> dict:
    from hdcid import analysis
    from hdcid.downstream import TaskOptions, default_toc_grid, run_grid, run_task

    D = models["DCID"].cfg.hidden_dim
    grid = default_toc_grid(D)[:3] if quick else default_toc_grid(D)
    has_workers = "workers" in {f.name for f in dataclasses.fields(TaskOptions)}  # this tree fits cells in threads
    opts = TaskOptions(
        protocol="honest", seeds=(0, 1, 2), epochs=None, quick=quick, **({"workers": workers} if has_workers else {})
    )
    keeps_fits = "fits" in inspect.signature(run_grid).parameters  # this tree's notebooks reuse the grid's head
    fits = {} if keeps_fits else None
    switch_opts = replace(opts, protocol="original")
    t = {}
    t0 = time.perf_counter()
    try:  # this tree's notebooks train the switch in a background worker while the grid trains
        from hdcid.workers import background

        switch = background(run_task, task, "v2a", models["DCID"], data, options=switch_opts)
    except ImportError:
        switch = None
    df = run_grid(
        models,
        tasks=(task,),
        toc_settings=grid,
        data={task: data},
        options=opts,
        progress=False,
        **({"fits": fits} if keeps_fits else {}),
    )
    t["grid"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if switch is None:
        run_task(task, "v2a", models["DCID"], data, options=switch_opts)
    else:
        switch.result()  # what is left of it after the grid
    t["switch"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    reuse = {"fit": fits["H-DCID", task, "v2a", "none"]} if keeps_fits else {}
    pred = analysis.task_predictions(task, "v2a", models["H-DCID"], data, options=opts, **reuse)  # seed 0
    t["predictions"] = time.perf_counter() - t0
    t["total"] = t["grid"] + t["switch"] + t["predictions"]
    cross = df[df["eval"] == "cross"].groupby(["encoder", "toc", "direction"])["value"].mean().round(3)
    return {"times": t, "cross": cross, "pred_epoch": pred.epoch}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(NOTEBOOK), choices=list(NOTEBOOK))
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--show-results", action="store_true", help="print the mean cross-modal values")
    p.add_argument("--workers", nargs="+", type=int, default=[0], help="TaskOptions.workers per repeat (0: default)")
    a = p.parse_args(argv)
    from hdcid.downstream import load_task_data
    from hdcid.notebook import is_cached, pretrained, start

    S = start("bench", quick=a.quick, verbose=False)
    for v in ("dcid", "hdcid"):
        if not is_cached(v, S):
            p.error(f"no cached {v} checkpoint for this corpus and mode: run notebook 01 first")
    models = {"DCID": pretrained("dcid", S).model, "H-DCID": pretrained("hdcid", S).model}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, mode {'quick' if a.quick else 'full'}")
    for task in a.tasks:
        data = load_task_data(task, S.data_root)
        workload(task, models, data, quick=True)  # warm-up: fills the code cache (all splits, draws)
        totals = {w: [] for w in a.workers}
        for r in range(a.repeats):
            for w in a.workers:
                out = workload(task, models, data, a.quick, w or None)
                totals[w].append(out["times"]["total"])
                print(
                    f"{NOTEBOOK[task]} repeat {r}, workers {w or 'default'}: "
                    + ", ".join(f"{k} {v:.1f} s" for k, v in out["times"].items())
                    + f" | predictions epoch {out['pred_epoch']}",
                    flush=True,
                )
                if a.show_results:
                    print(out["cross"].to_string())
        for w, t in totals.items():
            print(
                f"{NOTEBOOK[task]}, workers {w or 'default'}: median total {statistics.median(t):.1f} s over {len(t)}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
