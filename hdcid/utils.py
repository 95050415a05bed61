"""Seeding, device selection, quick mode, project paths and atomic file writes."""

from __future__ import annotations

import contextlib
import glob
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

# Held by code that uses state one process shares: seeding torch's global RNG and drawing from it
# (head initialisation, the dropout draws of the codes cache), or switching a model between train
# and eval mode to encode. Heads fitted in concurrent threads (``TaskOptions.workers``,
# ``pool="threads"``) then get the same numbers as one after another.
GLOBAL_STATE_LOCK = threading.RLock()


def _free_locks_in_forked_child() -> None:
    """A forked child runs only the thread that forked: a lock held by another thread of the parent
    at the fork would never be released there, so the child starts with its locks free."""
    GLOBAL_STATE_LOCK._at_fork_reinit()
    _UMASK_LOCK._at_fork_reinit()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_free_locks_in_forked_child)


def seed_everything(seed: int = 43, deterministic: bool = True) -> None:
    """Seed Python's `random`, NumPy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def get_rng_state() -> dict:
    """torch (CPU + CUDA), numpy and Python RNG states as weights_only-safe objects."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict) -> None:
    """Inverse of `get_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """`prefer` if given, else CUDA when available, else CPU. `HDCID_DEVICE` overrides."""
    choice = prefer or os.environ.get("HDCID_DEVICE")
    if choice:
        return torch.device(choice)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f", "")


def parse_bool(value: Any, name: str) -> bool:
    """A boolean setting read ONE way everywhere: True/False, 1/0, or (any case) true/false, yes/no,
    on/off, y/n, t/f; "" is False. Anything else raises ValueError naming `name` and the value."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {value!r}")


def env_flag(name: str, default: bool = False) -> bool:
    """The boolean environment variable `name` parsed by `parse_bool` (unset -> `default`)."""
    value = os.environ.get(name)
    return default if value is None else parse_bool(value, f"environment variable {name}")


def is_quick() -> bool:
    """Quick mode (CI and laptops): `HDCID_QUICK=1` in the environment (`parse_bool`; a value that
    is not a boolean, e.g. `HDCID_QUICK=banana`, raises ValueError)."""
    return env_flag("HDCID_QUICK")


def repo_root() -> Path:
    """The checkout holding this package (the folder with `pyproject.toml`), else the CWD."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def data_dir() -> Path:
    """Root of data: `HDCID_DATA`, else `<repo>/data`."""
    return Path(os.environ.get("HDCID_DATA", repo_root() / "data"))


def demo_root() -> Path:
    """Where the AV-Digits demo corpus is built: `HDCID_DEMO_ROOT`, else `<data>/demo`."""
    return Path(os.environ.get("HDCID_DEMO_ROOT", data_dir() / "demo"))


def cache_dir() -> Path:
    """Checkpoints and caches: `HDCID_CACHE`, else `<repo>/checkpoints`."""
    return Path(os.environ.get("HDCID_CACHE", repo_root() / "checkpoints"))


def output_dir(name: str | None = None) -> Path:
    """Executed notebooks and figures: `HDCID_OUTPUT`, else `<repo>/outputs`; `name` a subfolder."""
    root = Path(os.environ.get("HDCID_OUTPUT", repo_root() / "outputs"))
    path = root / name if name else root
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    A crash mid-write never leaves a half-written file and never destroys the previous one. The
    temporary is `.<name>.<pid>-<random>.tmp`: a process killed mid-write (SIGKILL) leaves it, and the
    next successful write of the same target removes it (``remove_stale_temporaries``). Writers of
    one target in several threads or processes at once each rename their own complete file; the
    last rename wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    began_ns = time.time_ns()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; use the usual mode
        os.replace(tmp_path, path)
        remove_stale_temporaries(path, before_ns=began_ns)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_stale_temporaries(path: str | Path, before_ns: int | None = None) -> list[Path]:
    """Delete the `atomic_path` temporaries of `path` (`.<name>.*.tmp` beside it) that no writer
    owns any more; returns the removed paths.

    A temporary tagged with a process id (`.<name>.<pid>-<random>.tmp`) is stale when that process
    no longer runs; the temporaries of running processes, this one's other threads included, are
    left alone whatever their age (a concurrent writer may have finished writing and not yet
    renamed). An untagged one is stale when last modified before `before_ns` (default: now).
    Where no process can be probed safely (not POSIX) only untagged temporaries are removed.
    """
    path = Path(path)
    cutoff = time.time_ns() if before_ns is None else before_ns
    removed = []
    for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        tag, dash, _ = p.name[len(path.name) + 2 :].partition("-")  # "<pid>-<random>.tmp" or "<random>.tmp"
        try:
            if dash and tag.isdigit():
                stale = _process_gone(int(tag))
            else:
                stale = p.stat().st_mtime_ns < cutoff
            if stale and p.is_file():
                p.unlink()
                removed.append(p)
        except FileNotFoundError:  # another writer removed or renamed it meanwhile
            pass
    return removed


def _process_gone(pid: int) -> bool:
    """True when no process `pid` runs (POSIX signal 0 probe); False where it cannot be told."""
    if pid == os.getpid() or os.name != "posix":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # another user's process / not a pid
        return False
    return False


_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask. Reading it means setting it, so threads take turns (two unguarded
    readers can leave the process at umask 0)."""
    with _UMASK_LOCK:
        mask = os.umask(0)
        os.umask(mask)
    return mask


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """`torch.save` through `atomic_path`."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)
