"""Measured notebook runtimes (see `docs/runtimes.json`) and the runtime line each notebook shows.

Every notebook's first cell has a line `**Runtime** — quick ...; full ...`. It is not typed by hand:
it is generated from `docs/runtimes.json`, which holds the measured seconds per notebook and mode.

    python -m hdcid.runner --quick --record         # execute and record the seconds (quick mode)
    python -m hdcid.runtimes --merge outputs/test-notebooks/runtimes.json   # or take the notebook tests'
    python -m hdcid.runtimes                        # rewrite the runtime line of every notebooks/NN_name.py
    python -m hdcid.runtimes --check                # exit 1 when a line disagrees with the json

`make notebooks-sync` runs the rewrite before `jupytext --sync`; `tests/test_notebooks.py` checks that
every line agrees with the json. Nothing in hdcid imports this module except `hdcid.runner`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import re
import sys
from pathlib import Path

from hdcid.utils import atomic_path, repo_root

MODES = ("quick", "full")
RUNTIME_PREFIX = "# **Runtime** — "
_LINE = re.compile(r"^# \*\*Runtime\*\* — .*$", re.M)
DEFAULT_MACHINE = "a 2-core CPU, no GPU"


def runtimes_path() -> Path:
    return repo_root() / "docs" / "runtimes.json"


def load(path: str | Path | None = None) -> dict:
    """The runtimes file as a dict {"about": str, "notebooks": {name: {"note", "quick", "full"}}}."""
    path = Path(path) if path is not None else runtimes_path()
    if not path.exists():
        return {"about": "", "notebooks": {}}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("notebooks"), dict):
        raise ValueError(
            f"{path}: expected a JSON object with a 'notebooks' object, found {type(data).__name__} "
            f"with keys {sorted(data) if isinstance(data, dict) else '-'}"
        )
    return data


def record(
    name: str,
    mode: str,
    seconds: float,
    *,
    path: str | Path | None = None,
    command: str = "",
    machine: str = DEFAULT_MACHINE,
    note: str | None = None,
) -> dict:
    """Store the measured `seconds` of notebook `name` in `mode` ("quick" / "full"); atomic write."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not seconds >= 0:
        raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
    path = Path(path) if path is not None else runtimes_path()
    data = load(path)
    entry = data["notebooks"].setdefault(name, {"note": ""})
    if note is not None:
        entry["note"] = note
    entry[mode] = {
        "seconds": round(float(seconds), 1),
        "command": command,
        "machine": machine,
        "date": _dt.date.today().isoformat(),
    }
    data["notebooks"] = dict(sorted(data["notebooks"].items()))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    return data


def merge(
    source: str | Path,
    mode: str = "quick",
    *,
    path: str | Path | None = None,
    command: str = "",
    machine: str = DEFAULT_MACHINE,
) -> list[str]:
    """Record every `{name: seconds}` of `source` (the notebook tests' runtimes.json) in `mode`."""
    found = json.loads(Path(source).read_text())
    if not isinstance(found, dict) or not all(isinstance(v, (int, float)) for v in found.values()):
        raise ValueError(f"{source}: expected a JSON object {{notebook name: seconds}}, found {found!r:.200}")
    for name, seconds in found.items():
        record(name, mode, seconds, path=path, command=command or f"merged from {source}", machine=machine)
    return sorted(found)


def format_seconds(seconds: float) -> str:
    """~N s below two minutes, else ~N min."""
    return f"~{seconds:.0f} s" if seconds < 120 else f"~{seconds / 60:.0f} min"


def runtime_line(name: str, data: dict | None = None) -> str:
    """The notebook's runtime line (markdown, without the leading '# ') from the measured file."""
    data = load() if data is None else data
    entry = data["notebooks"].get(name)
    if entry is None or not all(m in entry for m in MODES):
        raise KeyError(
            f"docs/runtimes.json has no quick and full measurement for {name!r}; run "
            f"`python -m hdcid.runner --record` (full) and `--quick --record`"
        )
    machines = [entry[m].get("machine", DEFAULT_MACHINE) for m in MODES]
    label = {"quick": "quick (`HDCID_QUICK=1`)", "full": "full"}
    same = len(set(machines)) == 1
    parts = "; ".join(
        f"{label[m]}: {format_seconds(entry[m]['seconds'])}" + ("" if same else f" ({mach})")
        for m, mach in zip(MODES, machines)
    )
    where = f" on {machines[0]}" if same else ""
    note = f", {entry['note']}" if entry.get("note") else ""
    return f"**Runtime** — {parts}; measured{where}{note} (see `docs/runtimes.json`)."


def rewrite_lines(nb_dir: str | Path | None = None, data: dict | None = None, check: bool = False) -> list[str]:
    """Rewrite (or with check=True only compare) the runtime line of every `NN_name.py` source.

    Returns the names whose line differed. Each source must contain exactly one runtime line."""
    nb_dir = Path(nb_dir) if nb_dir is not None else repo_root() / "notebooks"
    data = load() if data is None else data
    changed = []
    for src in sorted(nb_dir.glob("[0-9][0-9]_*.py")):
        text = src.read_text()
        lines = _LINE.findall(text)
        if len(lines) != 1:
            raise ValueError(f"{src}: expected exactly one line starting {RUNTIME_PREFIX!r}, found {len(lines)}")
        want = "# " + runtime_line(src.stem, data)
        if lines[0] != want:
            changed.append(src.stem)
            if not check:
                with atomic_path(src) as tmp:
                    Path(tmp).write_text(text.replace(lines[0], want))
    return changed


GPU_JSON = "gpu_collection.json"  # in docs/: written by benchmarks/gpu_collection.py on a GPU machine
GPU_BEGIN = "<!-- gpu-times: generated by `python -m hdcid.runtimes` from docs/gpu_collection.json -->"
GPU_END = "<!-- /gpu-times -->"


def gpu_table(gpu: dict, cpu: dict | None = None) -> str:
    """Markdown: per notebook, the CPU full-mode seconds (the json's "cpu_full", else
    `docs/runtimes.json`) beside each run of
    `benchmarks/gpu_collection.py` (its json: {"machine", "mode", "runs": {run: {"notebooks": {name:
    {"seconds"} | {"error"} | {"skipped"}}, "build_seconds", "clips", ...}}}), with totals."""
    cpu = load() if cpu is None else cpu
    if "cpu_full" in gpu:  # the CPU times of the same notebooks' version, stored beside the GPU ones
        cpu = {"notebooks": {n: {"full": {"seconds": v}} for n, v in gpu["cpu_full"]["seconds"].items()}}
    runs = gpu["runs"]
    m = gpu["machine"]
    names = sorted({n for r in runs.values() for n in r["notebooks"]} | set(cpu["notebooks"]))
    label = {
        "tiny": "GPU, tiny presets, corpus {scale:g}",
        "paper": "GPU, paper preset 1 epoch, pretraining set {pretrain_scale:g}x",
    }
    heads = ["notebook", "CPU (2 cores), tiny presets, corpus 1.0"] + [
        label.get(k, k).format(**v) for k, v in runs.items()
    ]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]

    def cell(entry: dict | None) -> str:
        if not entry:
            return "-"
        if "error" in entry:
            return f"failed after {entry['seconds']:.1f} s"
        if "unfinished_after" in entry:
            return f"stopped unfinished after {entry['unfinished_after']:.0f} s"
        return f"{entry['seconds']:.1f} s" if "seconds" in entry else entry.get("skipped", "-")

    for n in names:
        row = [n, cell(cpu["notebooks"].get(n, {}).get("full"))]
        row += [cell(r["notebooks"].get(n)) for r in runs.values()]
        lines.append("| " + " | ".join(row) + " |")
    cpu_total = sum(e["full"]["seconds"] for e in cpu["notebooks"].values() if "full" in e)
    totals = [
        f"{r['total_seconds']:.1f} s (+ corpus {r['build_seconds']:.0f} s)" if r.get("total_seconds") else "-"
        for r in runs.values()
    ]
    lines.append("| **sum** | " + " | ".join([f"{cpu_total:.1f} s", *totals]) + " |")
    about = [
        f"{gpu['mode']} mode; GPU: {m['device']}, torch {m['torch']} (CUDA {m['cuda']}), {m['cpu_count']} CPU "
        f"cores; CPU: {gpu.get('cpu_full', {}).get('source', '`docs/runtimes.json`')}. Commands:"
    ] + [f"- {k}: `{r['command']}`" + (f" ({r['note']})" if r.get("note") else "") for k, r in runs.items()]
    return "\n".join([*about, "", *lines])


def rewrite_gpu_table(doc: str | Path | None = None, check: bool = False) -> bool:
    """Rewrite (or only compare) the generated block of docs/notebooks.md from docs/gpu_collection.json.
    Returns True when the block differed. No json: nothing to do (False)."""
    src = repo_root() / "docs" / GPU_JSON
    doc = Path(doc) if doc is not None else repo_root() / "docs" / "notebooks.md"
    if not src.exists():
        return False
    text = doc.read_text()
    if text.count(GPU_BEGIN) != 1 or text.count(GPU_END) != 1:
        raise ValueError(f"{doc}: expected one block between {GPU_BEGIN!r} and {GPU_END!r}")
    head, rest = text.split(GPU_BEGIN)
    _, tail = rest.split(GPU_END)
    new = f"{head}{GPU_BEGIN}\n{gpu_table(json.loads(src.read_text()))}\n{GPU_END}{tail}"
    if new != text and not check:
        with atomic_path(doc) as tmp:
            Path(tmp).write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a line differs")
    parser.add_argument("--merge", metavar="JSON", help="record {name: seconds} from this file first")
    parser.add_argument("--mode", default="quick", choices=MODES, help="mode of the merged seconds")
    parser.add_argument("--command", default="", help="the command that measured the merged seconds")
    parser.add_argument("--machine", default=DEFAULT_MACHINE, help="where they were measured")
    args = parser.parse_args(argv)
    if args.merge:
        print("recorded:", ", ".join(merge(args.merge, args.mode, command=args.command, machine=args.machine)))
    changed = rewrite_lines(check=args.check)
    if rewrite_gpu_table(check=args.check):
        changed.append("docs/notebooks.md (GPU times)")
    verb = "differ" if args.check else "rewritten"
    print(f"runtime lines {verb}: {', '.join(changed) or 'none'}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
