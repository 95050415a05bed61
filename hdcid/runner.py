"""Execute the notebook collection top to bottom (the README's main job and the notebook tests).

`python -m hdcid.runner [--quick] [--only 03_toc ...]` runs every `notebooks/NN_*.ipynb` in order
with papermill, writes the executed copies to `<outputs>/notebooks/`, and prints each runtime;
`--record` also stores the measured seconds in `docs/runtimes.json` (`hdcid.runtimes`), from which
every notebook's runtime line is generated. Notebooks share the checkpoint cache, so the first one
that needs a pretrained model trains it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hdcid.utils import is_quick, output_dir, repo_root


@dataclass(frozen=True)
class NotebookRun:
    name: str
    seconds: float
    output: Path


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The ordered `notebooks/NN_*.ipynb`, optionally restricted to names (with or without .ipynb)."""
    paths = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {n.removesuffix(".ipynb") for n in only}
        unknown = wanted - {p.stem for p in paths}
        if unknown:
            raise ValueError(f"unknown notebook(s) {sorted(unknown)}; have {[p.stem for p in paths]}")
        paths = [p for p in paths if p.stem in wanted]
    return paths


def run_notebook(path: Path, quick: bool, out_dir: Path, timeout: int | None = None) -> NotebookRun:
    """Execute one notebook with papermill in its own folder; raise on the first failing cell.

    Quick mode reaches the notebook through `HDCID_QUICK` (its `parameters` cell reads it)."""
    import papermill as pm

    os.environ["HDCID_QUICK"] = "1" if quick else "0"
    out = out_dir / path.name
    start = time.perf_counter()
    pm.execute_notebook(
        str(path),
        str(out),
        cwd=str(path.parent),
        kernel_name="python3",
        progress_bar=False,
        execution_timeout=timeout,
    )
    return NotebookRun(path.stem, time.perf_counter() - start, out)


def run_all(
    quick: bool, only: list[str] | None = None, timeout: int | None = None, record: bool = False
) -> list[NotebookRun]:
    """Execute the notebooks in order; with `record`, store each runtime in docs/runtimes.json."""
    out_dir = output_dir("notebooks")
    runs = []
    for path in notebook_paths(only):
        print(f"[hdcid] running {path.name} ({'quick' if quick else 'full'} mode) ...", flush=True)
        run = run_notebook(path, quick, out_dir, timeout)
        print(f"[hdcid]   {run.name}: {run.seconds:.1f} s -> {run.output}", flush=True)
        if record:
            from hdcid import runtimes

            runtimes.record(
                run.name,
                "quick" if quick else "full",
                run.seconds,
                command="python -m hdcid.runner" + (" --quick" if quick else ""),
            )
        runs.append(run)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick mode (HDCID_QUICK=1)")
    parser.add_argument("--only", nargs="*", help="notebook names to run (default: all)")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument(
        "--record",
        action="store_true",
        help="store the measured seconds in docs/runtimes.json (then `python -m hdcid.runtimes` "
        "rewrites the notebooks' runtime lines)",
    )
    args = parser.parse_args(argv)
    try:
        quick = args.quick or is_quick()  # the one boolean parser of hdcid.utils
    except ValueError as e:  # HDCID_QUICK=banana: say so instead of guessing
        parser.error(str(e))
    runs = run_all(quick, args.only, args.timeout, record=args.record)
    total = sum(r.seconds for r in runs)
    print(f"[hdcid] executed {len(runs)} notebooks in {total:.1f} s; outputs in {output_dir('notebooks')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
