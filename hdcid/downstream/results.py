"""Run a grid of encoders x tasks x directions and write the results table (CSV + Markdown).

``python -m hdcid.downstream.results --checkpoint DCID=path.pt --checkpoint H-DCID=path2.pt
--data-root data/demo [--protocol honest] [--toc grid|paper|none] [--quick] [--out outputs/downstream]``
runs the grid; ``--from-csv results.csv`` only re-renders the Markdown.

Markdown layout: one table per (protocol, mode); rows DCID / DCID+TOC / H-DCID / H-DCID+TOC, columns
task x direction, cells ``mean ± std`` over seeds of the cross-modal metric with the same-modality
upper bound in brackets. Published numbers are added, in rows clearly labelled as such, ONLY when
``original_data=True`` (the real AVE / LLP / UCF / VGGSound features), since numbers on the demo
corpus are not comparable.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from hdcid.downstream.fitting import GroupPlan, TaskOptions, plan_task_groups, result_rows
from hdcid.downstream.tasks import DIRECTIONS, TASKS, default_toc_grid, load_task_data, paper_toc
from hdcid.published import PUBLISHED, PUBLISHED_SOURCE
from hdcid.toc import TOCSettings
from hdcid.utils import atomic_path, get_device
from hdcid.workers import map_jobs, resolve_pool

__all__ = ["row_label", "summarize", "markdown_table", "write_results", "run_grid", "run_paper_grid", "main"]

_ROW_ORDER = ["DCID", "DCID+TOC", "H-DCID", "H-DCID+TOC"]
_DIR = {"v2a": "V→A", "a2v": "A→V"}
_TASK = {"ave": "AVE", "avvp": "AVVP", "ave_avvp": "AVE→AVVP", "ucf_vgg": "UCF↔VGG"}


def row_label(encoder: str, toc: str) -> str:
    """``DCID`` or ``DCID+TOC`` from the encoder name and the toc column."""
    return encoder if toc in ("none", None) or pd.isna(toc) else f"{encoder}+TOC"


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std and count of ``value`` per (protocol, mode, row, task, direction, eval)."""
    d = df.assign(row=[row_label(e, t) for e, t in zip(df["encoder"], df["toc"])])
    keys = ["protocol", "mode", "row", "task", "direction", "eval"]
    return d.groupby(keys)["value"].agg(["mean", "std", "count"]).reset_index()


def _fmt(mean: float, std: float) -> str:
    if pd.isna(mean):
        return "-"
    return f"{mean:.1f}" if pd.isna(std) else f"{mean:.1f} ± {std:.1f}"


def markdown_table(df: pd.DataFrame, original_data: bool = False) -> str:
    """Markdown tables of a run_task / run_grid DataFrame (see module docstring)."""
    s = summarize(df)
    cols = [(t, d) for t in TASKS for d in DIRECTIONS if ((s.task == t) & (s.direction == d)).any()]
    out = []
    for (protocol, mode), part in s.groupby(["protocol", "mode"], sort=True):
        metric = ", ".join(sorted(set(df.loc[df.protocol == protocol, "metric"])))
        out.append(
            f"### protocol: {protocol}, mode: {mode} (metric: {metric}; mean ± std over seeds; "
            f"[same-modality upper bound])\n"
        )
        out.append("| encoder | " + " | ".join(f"{_TASK[t]} {_DIR[d]}" for t, d in cols) + " |")
        out.append("|---" * (len(cols) + 1) + "|")
        rows = sorted(set(part.row), key=lambda r: (_ROW_ORDER.index(r) if r in _ROW_ORDER else 99, r))
        for r in rows:
            cells = []
            for t, d in cols:
                sel = part[(part.row == r) & (part.task == t) & (part.direction == d)]
                cross, same = sel[sel["eval"] == "cross"], sel[sel["eval"] == "same"]
                c = _fmt(*cross[["mean", "std"]].iloc[0]) if len(cross) else "-"
                if len(same):
                    c += f" [{_fmt(*same[['mean', 'std']].iloc[0])}]"
                cells.append(c)
            out.append(f"| {r} (ours) | " + " | ".join(cells) + " |")
        if original_data:
            for name in ("DCID", "same modality (upper bound)"):
                vals = [PUBLISHED[name].get(c, np.nan) for c in cols]
                out.append(f"| published: {name} | " + " | ".join(_fmt(v, np.nan) for v in vals) + " |")
            out.append(f"\nPublished rows: {PUBLISHED_SOURCE}.")
        out.append("")
    if not original_data:
        out.append("Published numbers are not shown: these results are not on the original data.")
    return "\n".join(out) + "\n"


def write_results(df: pd.DataFrame, out_dir, original_data: bool = False) -> dict[str, Path]:
    """Write ``results.csv`` (tidy rows) and ``results.md`` (tables) under ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    paths = {"csv": out_dir / "results.csv", "md": out_dir / "results.md"}
    with atomic_path(paths["csv"]) as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(paths["md"]) as tmp:
        tmp.write_text(markdown_table(df, original_data=original_data), encoding="utf-8")
    return paths


def run_grid(
    models: dict,
    tasks=tuple(TASKS),
    directions=tuple(DIRECTIONS),
    toc_settings=None,
    *,
    data_root=None,
    data: dict | None = None,
    options: TaskOptions = TaskOptions(),
    progress: bool = True,
    fits: dict | None = None,
) -> pd.DataFrame:
    """run_task for every model x task x direction, without TOC and (if ``toc_settings``) with it.

    models: name -> model (the name is the row label, e.g. "DCID", "H-DCID").
    toc_settings: None (no TOC rows) or a list of TOCSettings candidates (one setting: a list of one),
    the same for every cell; the per-cell settings of the papers: ``run_paper_grid``.
    data: task -> pre-loaded ClipSets (else read once per task from ``data_root``).
    options: how every cell's heads train (``TaskOptions``: protocol, seeds, epochs, quick, ...).
    fits: a dict to receive every cell's ``TaskFit`` (the trained heads), keyed by (encoder name,
    task, direction, "none" | "toc"), e.g. for ``hdcid.analysis.task_predictions(..., fit=...)``.
    The rows without and with TOC of a cell train as one batched model (``fit_task_groups``).
    """
    if toc_settings is not None and (
        not isinstance(toc_settings, (list, tuple))
        or not toc_settings
        or not all(isinstance(t, TOCSettings) for t in toc_settings)
    ):
        raise TypeError(f"run_grid: toc_settings must be None or a non-empty list of TOCSettings, got {toc_settings!r}")
    return _grid(
        models,
        tasks,
        directions,
        lambda task, direction, model: toc_settings,
        data_root=data_root,
        data=data,
        options=options,
        progress=progress,
        keep=fits,
    )


def run_paper_grid(
    models: dict,
    tasks=tuple(TASKS),
    directions=tuple(DIRECTIONS),
    *,
    data_root=None,
    data: dict | None = None,
    options: TaskOptions = TaskOptions(),
    progress: bool = True,
    fits: dict | None = None,
) -> pd.DataFrame:
    """As ``run_grid``, the TOC rows with the original shell scripts' setting of each cell
    (``paper_toc``: docs/method.md §4.3, meant for 256-d codebooks) for the model's variant."""

    def paper(task, direction, model):
        return [paper_toc(task, direction, getattr(model.cfg, "variant", "dcid"))]

    return _grid(
        models, tasks, directions, paper, data_root=data_root, data=data, options=options, progress=progress, keep=fits
    )


def _grid(models, tasks, directions, tocs_of, *, data_root, data, options, progress, keep=None) -> pd.DataFrame:
    from tqdm.auto import tqdm

    jobs = [(n, t, d) for t in tasks for d in directions for n in models]
    loaded = dict(data or {})
    for task in tasks:
        if task not in loaded:
            loaded[task] = load_task_data(task, data_root)
    # the widest codes first (their heads cost the most), so that with several workers the last
    # cells to start are the cheap ones; the rows keep the order of ``jobs``
    order = sorted(range(len(jobs)), key=lambda i: -_code_width(models[jobs[i][0]]))
    plans, memo = {}, {}

    def planned():  # codes read (or encoded) here, once, while the workers fit the cells before
        for i in order:
            name, task, direction = jobs[i]
            cands = tocs_of(task, direction, models[name])
            tocs = [None] + ([] if cands is None else [list(cands)])  # the rows without TOC, then with it
            plans[i] = plan_task_groups(task, direction, models[name], loaded[task], tocs, options=options, memo=memo)
            yield plans[i]

    bar = tqdm(total=len(jobs), disable=not progress, desc="downstream")
    pool = resolve_pool(options.pool, get_device(options.device))
    fitted = map_jobs(GroupPlan.fit, planned(), grid_workers(options, len(jobs)), pool, bar.update)
    bar.close()
    results = dict(zip(order, fitted))
    frames = []
    for i, (name, task, direction) in enumerate(jobs):
        for toc, tf in zip(("none", "toc"), plans[i].assemble(results[i])):  # the groups of ``tocs``
            frames.append(result_rows(tf, name))
            if keep is not None:
                keep[(name, task, direction, toc)] = tf
    return pd.concat(frames, ignore_index=True)


def _code_width(model) -> int:
    """A model's code width (levels x dims), the size of its heads' inputs."""
    cb = model.codebooks()
    return int(cb.shape[0] * cb.shape[-1])


def grid_workers(options: TaskOptions, n_jobs: int) -> int:
    """How many cells of a grid fit at once: ``options.workers``, or (None) one per CPU core on
    the CPU (heads train on 1 thread each, ``FitConfig.cpu_threads``) and 1 on a GPU; at most
    ``n_jobs``."""
    n = options.workers
    if n is None:
        n = 1 if get_device(options.device).type != "cpu" else (os.cpu_count() or 1)
    return max(1, min(n, n_jobs))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hdcid.downstream.results", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--data-root", default=None)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--directions", nargs="+", default=list(DIRECTIONS), choices=list(DIRECTIONS))
    p.add_argument("--protocol", default="honest", choices=["honest", "original"])
    p.add_argument("--toc", default="grid", choices=["grid", "paper", "none"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--original-data", action="store_true", help="data are the real released features")
    p.add_argument("--out", default=None)
    p.add_argument("--from-csv", default=None, help="only render results.md from an existing CSV")
    a = p.parse_args(argv)
    from hdcid.utils import demo_root, output_dir

    out = Path(a.out) if a.out else output_dir("downstream")
    if a.from_csv:
        df = pd.read_csv(a.from_csv)
    else:
        if not a.checkpoint:
            p.error("give at least one --checkpoint NAME=PATH (or --from-csv)")
        from hdcid.model import load_model  # local: the table writer must not need the model

        models = {}
        for item in a.checkpoint:
            name, sep, path = item.partition("=")
            if not sep:
                p.error(f"--checkpoint expects NAME=PATH, got {item!r}")
            models[name] = load_model(path).eval()
        opts = TaskOptions(protocol=a.protocol, seeds=a.seeds, epochs=a.epochs, quick=a.quick)
        kw = dict(data_root=a.data_root or demo_root(), options=opts)
        if a.toc == "paper":
            df = run_paper_grid(models, a.tasks, a.directions, **kw)
        else:
            grid = None
            if a.toc == "grid":
                widths = {int(m.codebooks().shape[-1]) for m in models.values()}
                if len(widths) != 1:
                    p.error(f"--toc grid needs codebooks of one width, got {sorted(widths)}; run them apart")
                grid = default_toc_grid(widths.pop())
            df = run_grid(models, a.tasks, a.directions, grid, **kw)
    paths = write_results(df, out, original_data=a.original_data)
    print(paths["md"].read_text(encoding="utf-8"))
    print(f"wrote {paths['csv']} and {paths['md']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
