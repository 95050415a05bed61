"""hdcid.workers: independent jobs in threads or forked processes, in order, errors raised here."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

import pytest
import torch

from hdcid.utils import GLOBAL_STATE_LOCK
from hdcid.workers import background, can_fork, map_jobs, resolve_pool

FORKS = pytest.mark.skipif(not can_fork(), reason="forked worker processes need Linux")
POOLS = ["threads", pytest.param("processes", marks=FORKS)]


def _square(x):
    return x * x


@pytest.mark.parametrize("pool", POOLS)
def test_results_come_back_in_the_order_of_the_jobs(pool):
    done = []
    jobs = [5, 1, 4, 2, 3]

    def slow_first(x):  # the first job ends last
        time.sleep(0.05 * x)
        return {"x": x, "t": torch.full((2,), float(x)), "pid": os.getpid()}

    got = map_jobs(slow_first, jobs, 3, pool, on_done=lambda: done.append(1))
    assert [g["x"] for g in got] == jobs and len(done) == len(jobs)
    assert all(torch.equal(g["t"], torch.full((2,), float(g["x"]))) for g in got)
    pids = {g["pid"] for g in got}
    assert (os.getpid() not in pids) if pool == "processes" else (pids == {os.getpid()})
    assert map_jobs(_square, [3], 4, pool) == [9]
    assert map_jobs(_square, [1, 2, 3], 1, pool) == [1, 4, 9]  # one worker: run here
    assert map_jobs(_square, [], 2, pool) == []

    made = []

    def jobs():  # made here while the workers run the ones before
        for x in (3, 1, 2):
            made.append((x, time.perf_counter()))
            time.sleep(0.1)
            yield x

    assert map_jobs(_square, jobs(), 2, pool) == [9, 1, 4] and [x for x, _ in made] == [3, 1, 2]


@pytest.mark.parametrize("pool", POOLS)
def test_a_failing_job_raises_here_and_stops_the_others(pool, tmp_path):
    """The first failure is raised in the caller, naming the job's error; the worker processes still
    busy are stopped and gone when it is raised, not left to run their jobs to the end (where the
    interpreter would wait for them at exit)."""

    def job(x):
        if x == 0:
            deadline = time.perf_counter() + 10
            while not list(tmp_path.glob("*.pid")) and time.perf_counter() < deadline:
                time.sleep(0.01)  # fails once another job is under way
            raise ValueError("job 0 found a bad shape (3, 4)")
        (tmp_path / f"{x}.tmp").write_text(str(os.getpid()))
        (tmp_path / f"{x}.tmp").rename(tmp_path / f"{x}.pid")  # whole when seen
        time.sleep(30 if pool == "processes" else 0.2)
        return x

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"job 0 found a bad shape \(3, 4\)"):
        map_jobs(job, [1, 0, 2, 3], 2, pool)
    assert time.perf_counter() - start < 20
    if pool == "processes":
        pids = {int(f.read_text()) for f in tmp_path.glob("*.pid")}
        assert pids and os.getpid() not in pids
        assert not [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@FORKS
def test_jobs_go_to_forked_workers_by_value_and_leave_the_callers_tensors_alone():
    """A job is pickled in the caller: the pool's own pickler would move the storage of every tensor
    in it into shared memory, in place, while the caller may be reading it (seen as wrong codes)."""
    t = torch.arange(6.0)
    ptr = t.data_ptr()
    assert map_jobs(lambda job: float(job["t"].sum()), [{"t": t}, {"t": t}, {"t": 2 * t}], 2, "processes") == [
        15.0,
        15.0,
        30.0,
    ]
    assert not t.is_shared() and t.data_ptr() == ptr


@FORKS
def test_forked_workers_run_with_one_torch_thread_and_leave_the_callers_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = map_jobs(lambda _: torch.get_num_threads(), [0, 1], 2, "processes")
        assert got == [1, 1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@FORKS
def test_a_forked_child_starts_with_hdcids_locks_free():
    """A lock held by another thread when the process forks would never be released in the child
    (only the forking thread is copied): hdcid.utils and hdcid.downstream.cache free theirs there."""
    from hdcid.downstream import cache

    held, release = threading.Event(), threading.Event()
    file_lock = cache._file_lock(__file__)

    def holder():
        with GLOBAL_STATE_LOCK, file_lock:
            held.set()
            release.wait(30)

    t = threading.Thread(target=holder)
    t.start()
    held.wait(30)
    try:
        pid = os.fork()
        if pid == 0:  # the child: both locks must be free
            ok = GLOBAL_STATE_LOCK.acquire(timeout=5) and cache._file_lock(__file__).acquire(timeout=5)
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        release.set()
        t.join()
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_pool_is_checked_against_the_device():
    cpu = torch.device("cpu")
    assert resolve_pool(None, cpu) == ("processes" if can_fork() else "threads")
    assert resolve_pool(None, torch.device("cuda")) == "threads"
    assert resolve_pool("threads", torch.device("cuda")) == "threads"
    with pytest.raises(ValueError, match='"processes" fits on the CPU only'):
        resolve_pool("processes", torch.device("cuda"))
    with pytest.raises(ValueError, match="pool must be one of"):
        resolve_pool("fibers", cpu)
    with pytest.raises(ValueError, match="pool must be one of"):
        map_jobs(_square, [1, 2], 2, "fibers")


@pytest.mark.parametrize("pool", POOLS)
def test_a_background_job_returns_what_the_call_returns(pool):
    """background(fn, ...) returns at once; result() gives fn's value (a forked worker's comes back
    pickled) or raises fn's error."""
    ran = threading.Event()
    gate = multiprocessing.get_context("fork" if pool == "processes" else None).Event()  # shared with a forked child

    def job(n, scale=1.0):
        ran.set()  # seen only by a thread: a forked child has its own copy
        assert gate.wait(30), "the caller never opened the gate"
        return {"pid": os.getpid(), "t": torch.arange(n) * scale}

    pending = background(job, 4, scale=0.5, pool=pool)
    assert not pending.done()  # returned while the job waits for the gate
    gate.set()
    got = pending.result(timeout=30)
    assert torch.equal(got["t"], torch.arange(4) * 0.5) and pending.done()
    assert (got["pid"] != os.getpid()) if pool == "processes" else ran.is_set()

    def fails():
        raise KeyError("the clip 'x' has no audio features")

    with pytest.raises(KeyError, match="has no audio features"):
        background(fails, pool=pool).result(timeout=30)
