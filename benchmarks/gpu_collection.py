"""Execute the whole notebook collection on a GPU machine and time every notebook (issue 12).

    python benchmarks/gpu_collection.py --work /tmp/gpu --out DIR [--runs tiny paper] [--quick]

Each run gets its own corpus, checkpoint cache and outputs under `--work`, and executes
notebooks/NN_*.ipynb with the same papermill runner as `make run` (`hdcid.runner.run_notebook`):

- `tiny`: what `make run` does on a machine with a GPU: the default tiny presets, the demo corpus
  at scale 1.0, full mode;
- `paper`: `HDCID_PRESET=paper`, `HDCID_EPOCHS=1` (the published sizes, one epoch) pretrained on a
  pretraining set built at `--paper-pretrain-scale` (10: 20,000 clips) beside downstream sets of
  the default size (`python -m hdcid.demo.build --pretrain-scale`).

Writes `OUT/gpu_collection.json` after every notebook (so a run cut short still reports what
finished, and a SIGTERM, e.g. from `timeout`, records how long the notebook in progress had run):
machine, torch, corpus build seconds, per-notebook seconds and errors; and
`OUT/notebooks-<run>.tar.gz`, the executed notebooks (outputs, figures, papermill's per-cell
timings). `--deadline` (seconds since start) skips the notebooks that would start after it.
Without CUDA it runs as well (a CPU smoke test: use --quick and small scales).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import sys
import tarfile
import time
import traceback
from pathlib import Path

import torch

from hdcid import runtimes
from hdcid.demo.build import build_demo
from hdcid.runner import notebook_paths, run_notebook
from hdcid.utils import atomic_path


def _machine() -> dict:
    cuda = torch.cuda.is_available()
    return {
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({os.cpu_count()} cores)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }


def _write(report: dict, out: Path) -> None:
    with atomic_path(out / "gpu_collection.json") as tmp:
        Path(tmp).write_text(json.dumps(report, indent=1))


RUNS = {"tiny": {}, "paper": {"HDCID_PRESET": "paper", "HDCID_EPOCHS": "1"}}  # each run's extra environment


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="folder for each run's corpus, cache and outputs")
    p.add_argument("--out", required=True, help="folder for gpu_collection.json and the executed notebooks")
    p.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=["paper", "tiny"])
    p.add_argument("--quick", action="store_true", help="quick mode (a smoke test)")
    p.add_argument("--paper-pretrain-scale", type=float, default=10.0)
    p.add_argument("--scale", type=float, default=None, help="downstream corpus scale (default 1.0)")
    p.add_argument("--only", nargs="*", help="notebook names (default: all)")
    p.add_argument("--deadline", type=float, default=None, help="seconds: start no notebook after this")
    a = p.parse_args(argv)
    t_start = time.perf_counter()
    work, out = Path(a.work), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "command": "python benchmarks/gpu_collection.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": _machine(),
        "mode": "quick" if a.quick else "full",
        "runs": {},
        "cpu_full": {  # the CPU times of the same checkout, for the table beside the GPU ones
            "seconds": {n: e["full"]["seconds"] for n, e in runtimes.load()["notebooks"].items() if "full" in e},
            "source": "docs/runtimes.json of the same checkout",
        },
    }
    current: dict = {}  # the notebook in progress: run, name, t0

    def stopped(signum, frame):  # `timeout` sends SIGTERM: record how long the notebook had run
        if current:
            current["run"]["notebooks"][current["name"]] = {
                "unfinished_after": round(time.perf_counter() - current["t0"], 1)
            }
            _write(report, out)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stopped)
    for name in a.runs:
        scale = a.scale or 1.0
        pretrain_scale = a.paper_pretrain_scale if name == "paper" else None
        root = work / name
        env = {
            "HDCID_DEMO_ROOT": str(root / "demo"),
            "HDCID_CACHE": str(root / "cache"),
            "HDCID_OUTPUT": str(root / "outputs"),
            "HDCID_QUICK": "1" if a.quick else "0",
            **RUNS[name],
        }
        os.environ.update(env)  # read by the notebooks' kernels, which inherit this environment
        run = report["runs"][name] = {
            "command": report["command"],
            "env": env,
            "scale": scale,
            "pretrain_scale": pretrain_scale,
            "notebooks": {},
        }
        t0 = time.perf_counter()
        info = build_demo(root / "demo", scale=scale, pretrain_scale=pretrain_scale)
        run["build_seconds"] = round(time.perf_counter() - t0, 2)
        run["clips"] = {k: v["clips"] for k, v in info.items() if isinstance(v, dict)}
        print(f"[{name}] corpus built in {run['build_seconds']} s: {run['clips']}", flush=True)
        _write(report, out)
        nb_dir = root / "outputs" / "notebooks"
        nb_dir.mkdir(parents=True, exist_ok=True)
        for path in notebook_paths(a.only):
            if a.deadline is not None and time.perf_counter() - t_start > a.deadline:
                run["notebooks"][path.stem] = {"skipped": "deadline"}
                continue
            t0 = time.perf_counter()
            current.update(run=run, name=path.stem, t0=t0)
            try:
                r = run_notebook(path, a.quick, nb_dir)
                run["notebooks"][path.stem] = {"seconds": round(r.seconds, 2)}
            except Exception as err:  # record and go on: later notebooks train what they need
                run["notebooks"][path.stem] = {
                    "seconds": round(time.perf_counter() - t0, 2),
                    "error": "".join(traceback.format_exception_only(err))[-2000:],
                }
            print(f"[{name}] {path.stem}: {run['notebooks'][path.stem]}", flush=True)
            current.clear()
            done = [v["seconds"] for v in run["notebooks"].values() if "seconds" in v]  # failed ones too
            run["total_seconds"] = round(sum(done), 2)
            _write(report, out)
        with tarfile.open(out / f"notebooks-{name}.tar.gz", "w:gz") as tar:
            for f in sorted(nb_dir.glob("*.ipynb")):
                tar.add(f, arcname=f.name)
    report["wall_seconds"] = round(time.perf_counter() - t_start, 2)
    _write(report, out)
    print(json.dumps({k: v.get("total_seconds") for k, v in report["runs"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
