"""The private names ``daskexec_stdlib._compat`` reads are still there, on this Python.

When one of these fails, a Python release changed what the adapter relies on:
the message names the Python version and the attribute.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import sys

import pytest

from daskexec_stdlib import _compat

PYTHON = sys.version.split()[0]


def test_multiprocessing_pool_keeps_its_workers_in_pool() -> None:
    pool = multiprocessing.get_context("spawn").Pool(2)
    try:
        workers = getattr(pool, "_pool", None)
        assert isinstance(workers, list), (
            f"Python {PYTHON}: multiprocessing.Pool._pool is gone or no longer a list "
            f"(found {type(workers).__name__}); update daskexec_stdlib._compat.pool_processes"
        )
        processes = _compat.pool_processes(pool)
        assert len(processes) == 2, processes
        assert all(hasattr(p, "sentinel") and hasattr(p, "pid") for p in processes), processes
    finally:
        pool.terminate()
        pool.join()


def test_process_pool_executor_keeps_its_workers_in_processes() -> None:
    pool = concurrent.futures.ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn")
    )
    try:
        workers = getattr(pool, "_processes", None)
        assert isinstance(workers, dict), (
            f"Python {PYTHON}: concurrent.futures.ProcessPoolExecutor._processes is gone or "
            f"no longer a dict (found {type(workers).__name__}); update "
            "daskexec_stdlib._compat.process_pool_workers"
        )
        live = _compat.process_pool_workers(pool)
        assert pool.submit(abs, -1).result(timeout=60) == 1
        assert len(live) == 1, "the dict is the pool's own, filled as workers start"
    finally:
        pool.shutdown()
    assert live, "the dict outlives shutdown (terminate_workers() reads it then)"


def test_a_missing_name_fails_loudly() -> None:
    class NotAPool:
        pass

    with pytest.raises(RuntimeError, match=rf"Python {PYTHON}.*_pool"):
        _compat.pool_processes(NotAPool())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match=rf"Python {PYTHON}.*_processes"):
        _compat.process_pool_workers(NotAPool())  # type: ignore[arg-type]
