"""The driver holds no more than Dask's threaded scheduler on a large reduction."""

from __future__ import annotations

import tracemalloc
from typing import Any

import dask
import dask.array as da
import pytest

import daskexec


def _peak(collection: Any, scheduler: Any) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        value = dask.compute(collection, scheduler=scheduler)[0]
        return value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.backend("threads")
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


def test_driver_holds_few_results_at_once(scheduler: daskexec.ExecutorScheduler) -> None:
    x = da.ones((4000, 4000), chunks=(250, 250))  # 256 chunks
    assert (x + 1).sum().compute(scheduler=scheduler) == 2 * 4000 * 4000
    st = scheduler.last_stats
    assert st is not None
    assert st.peak_values < 64, f"driver held {st.peak_values} results at once: {st.summary()}"
