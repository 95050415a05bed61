"""Independent jobs at once: in threads, or on the CPU in forked worker processes.

``map_jobs(fn, jobs, workers, pool)`` returns ``[fn(j) for j in jobs]``, running up to ``workers``
jobs at once. Used by ``hdcid.downstream.run_grid``, whose cells (a batched head fit each) are
independent and seeded, so the results do not depend on the pool or the number of workers.

* ``"processes"``: forked worker processes (Linux). A job is mostly many small tensor operators,
  and Python holds the GIL between them, so two threads on two cores reach ~1.4x; two processes
  ~1.9x. A forked worker inherits the caller's memory and ``fn``; each job is pickled in the caller
  and goes to it by value (``run_grid``'s jobs carry a cell's codes, not its data or models), and
  its result comes back pickled. Forking is safe here because the workers
  never use CUDA or the parent's other threads: the pool refuses a non-CPU device, the workers
  start with one torch thread (as ``torch.utils.data`` workers do), and hdcid's own locks are
  re-created in every forked child (``hdcid.utils``, ``hdcid.downstream.cache``).
* ``"threads"``: a thread pool; each worker starts with the caller's torch thread count (torch
  keeps it per thread) and seeded work holds ``hdcid.utils.GLOBAL_STATE_LOCK``.

``resolve_pool(None, device)`` picks processes on the CPU where the platform forks, else threads.
``background(fn, *args, pool=...)`` starts one job in a worker and returns at once; its
``result()`` waits for it (a notebook trains one cell while the next cells run).
"""

from __future__ import annotations

import multiprocessing
import pickle
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed

import torch

from hdcid.utils import GLOBAL_STATE_LOCK, get_device

__all__ = ["POOLS", "can_fork", "resolve_pool", "map_jobs", "background", "Pending"]

POOLS = ("processes", "threads")


def can_fork() -> bool:
    """True where worker processes can be forked (Linux; macOS forks unsafely, Windows not at all)."""
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def resolve_pool(pool: str | None, device: torch.device) -> str:
    """``pool`` checked, or for None: "processes" on the CPU where ``can_fork()``, else "threads"."""
    if pool is None:
        return "processes" if device.type == "cpu" and can_fork() else "threads"
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS} or None, got {pool!r}")
    if pool == "processes" and device.type != "cpu":
        raise ValueError(f'pool "processes" fits on the CPU only (forked workers cannot use {device}); use "threads"')
    if pool == "processes" and not can_fork():
        raise ValueError(f'pool "processes" needs fork(), which {sys.platform} does not offer safely; use "threads"')
    return pool


def map_jobs(fn: Callable, jobs: Iterable, workers: int, pool: str = "threads", on_done=None) -> list:
    """``[fn(j) for j in jobs]``, up to ``workers`` at once in a pool of ``pool`` ("threads" or
    "processes"; one worker runs them here, one after another). ``on_done()`` is called in this
    thread after each job (a progress bar). The first failing job's error is raised here.

    ``jobs`` may be a generator: each job is made here and handed to the pool at once, so making the
    next job overlaps with the workers running the earlier ones. Forked workers inherit ``fn`` and
    get each job pickled (they fork when the first job is handed over)."""
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    done = on_done or (lambda: None)
    if workers <= 1:
        out = []
        for j in jobs:
            out.append(fn(j))
            done()
        return out
    if pool == "threads":
        return _in_threads(fn, jobs, workers, done)
    return _in_processes(fn, jobs, workers, done)


class Pending:
    """A job started by ``background``: ``result()`` waits for it and returns its value (or raises
    its error) and frees its worker; ``done()`` says whether it has finished."""

    def __init__(self, future, executor, pickled: bool):
        self._future, self._executor, self._pickled = future, executor, pickled

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None):
        try:
            value = self._future.result(timeout)
        finally:
            if self._future.done():
                self._executor.shutdown(wait=False)
        return pickle.loads(value) if self._pickled else value


def background(fn: Callable, *args, pool: str | None = None, **kwargs) -> Pending:
    """Start ``fn(*args, **kwargs)`` in one worker of ``pool`` and return at once: "processes", a
    forked process, which sees the caller's memory as it is at this call, or "threads"; None:
    ``resolve_pool`` for the default device (processes on the CPU where the platform forks)."""
    pool = resolve_pool(pool, get_device())
    if pool == "threads":
        ex = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(torch.get_num_threads(),))
        return Pending(ex.submit(fn, *args, **kwargs), ex, pickled=False)
    ex, future = _forked_pool(lambda _: fn(*args, **kwargs), 1, None)
    return Pending(future, ex, pickled=True)


def _in_threads(fn, jobs, workers, done) -> list:
    n_threads = torch.get_num_threads()  # every worker starts from the caller's count
    try:
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(n_threads,)) as ex:
            futures = [ex.submit(fn, j) for j in jobs]
            for f in as_completed(futures):
                f.result()  # raises the first failure here
                done()
    finally:
        torch.set_num_threads(n_threads)  # the count threads started later begin from
    return [f.result() for f in futures]


# What the forked workers run: set before they fork, read in the child (which has its own copy).
_JOB: Callable | None = None
_FORK_LOCK = threading.Lock()  # one forking map at a time (they share _JOB until their workers fork)


def _start_worker() -> None:
    torch.set_num_threads(1)  # no OpenMP team in a forked child (libgomp's is not fork-safe)


def _dumps(obj) -> bytes:
    """``obj`` pickled by value, here. A job handed to the pool as an object would be pickled by the
    pool's feeder thread with multiprocessing's pickler, which moves every tensor's storage into
    shared memory, in place: in the caller, while the caller may be reading it (a model's codebook
    buffer shared with a job gave wrong codes to the caller's encoding)."""
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _run_job(arg: bytes) -> bytes:
    return _dumps(_JOB(pickle.loads(arg)))  # both ways by value, no shared memory


def _forked_pool(job: Callable, workers: int, first) -> tuple[ProcessPoolExecutor, Future]:
    """A pool of ``workers`` forked processes that run ``job(arg)`` for each ``arg`` submitted to
    ``_run_job`` (results pickled), and the future of ``job(first)``, whose submission forks them."""
    global _JOB
    with _FORK_LOCK:
        _JOB = job  # inherited by the children
        ex = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker)
        try:
            with GLOBAL_STATE_LOCK:  # the workers fork in the first submit: not in a seeded draw
                return ex, ex.submit(_run_job, _dumps(first))
        finally:
            _JOB = None


def _in_processes(fn, jobs, workers, done) -> list:
    jobs = iter(jobs)
    first = next(jobs, _NONE)
    if first is _NONE:
        return []
    ex, future = _forked_pool(fn, workers, first)
    futures = [future]
    try:
        futures += [ex.submit(_run_job, _dumps(j)) for j in jobs]  # each job pickled here, to a worker
        for f in as_completed(futures):
            f.result()  # raises the first failure here
            done()
    except BaseException:  # a failure or an interrupt: stop the other jobs now, not at their end
        _terminate(ex)
        raise
    ex.shutdown()
    return [pickle.loads(f.result()) for f in futures]


_NONE = object()


def _terminate(ex: ProcessPoolExecutor) -> None:
    """Cancel the jobs of ``ex`` not yet started, stop its workers and wait for them to exit
    (``terminate_workers`` from Python 3.14 on). The worker processes are taken before ``shutdown``,
    which forgets them: stopped after it, the busy ones would run their jobs to the end and the
    interpreter would wait for them at exit."""
    procs = list((getattr(ex, "_processes", None) or {}).values())
    if hasattr(ex, "terminate_workers"):
        ex.terminate_workers()
    else:
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
    for p in procs:
        p.join(10)
