"""The default executor, a thread pool the scheduler owns.

It is shut down on success, error and Ctrl-C, and the driver holds no more
than Dask's threaded scheduler on a large reduction.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from typing import Any

import dask
import dask.array as da
import pytest
from dask import delayed

import daskexec
from daskexec.testing.graphs import (
    Interrupt,
    fail,
    inc,
    slow_inc,
)


def sleep_then(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


def _peak(collection: Any, scheduler: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        value = dask.compute(collection, scheduler=scheduler)[0]
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_own_executor_is_shut_down_on_success_and_error(no_leaks: None) -> None:
    s = daskexec.ExecutorScheduler()
    assert delayed(inc)(1).compute(scheduler=s) == 2
    with pytest.raises(ValueError):
        delayed(fail)(1).compute(scheduler=s)


def test_keyboard_interrupt_shuts_down_own_executor(no_leaks: None) -> None:
    s = daskexec.ExecutorScheduler(pack_size=1)
    tasks = [delayed(slow_inc)(i, 0.05) for i in range(40)]
    with Interrupt(after=3), pytest.raises(KeyboardInterrupt):
        dask.compute(*tasks, scheduler=s)


@pytest.mark.timeout(60)
def test_sigint_with_an_owned_executor_returns_at_once(no_leaks: None) -> None:
    import signal

    s = daskexec.ExecutorScheduler()
    # Ctrl-C as in a terminal (a background job, as CI may be, starts with SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            dask.compute(delayed(sleep_then)(1, 6.0), scheduler=s)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    elapsed = time.monotonic() - start
    assert elapsed < 3, f"Ctrl-C took {elapsed:.1f}s"


def test_peak_memory_on_a_large_reduction_is_no_higher_than_dask_threaded(
    scheduler: daskexec.ExecutorScheduler,
) -> None:
    # 64 chunks of 2 MB each: holding them all would need 128 MB.
    x = da.random.default_rng(0).random((8000, 4000), chunks=(1000, 500))
    total = (x + 1).sum()
    # the lower of two runs each: thread timing makes single peaks noisy
    ours_value, ours = min(_peak(total, scheduler) for _ in range(2))
    dask_value, theirs = min(_peak(total, "threads") for _ in range(2))
    assert abs(ours_value - dask_value) < 1e-6 * abs(dask_value)
    assert ours <= theirs * 1.05, (
        f"daskexec peak {ours / 1e6:.1f} MB > dask threaded {theirs / 1e6:.1f} MB"
    )
