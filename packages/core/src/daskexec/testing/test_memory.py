"""The driver holds few results at once."""

from __future__ import annotations

import dask.array as da

import daskexec


def test_driver_holds_few_results_at_once(scheduler: daskexec.ExecutorScheduler) -> None:
    x = da.ones((4000, 4000), chunks=(250, 250))  # 256 chunks
    assert (x + 1).sum().compute(scheduler=scheduler) == 2 * 4000 * 4000
    st = scheduler.last_stats
    assert st is not None
    assert st.peak_values < 64, f"driver held {st.peak_values} results at once: {st.summary()}"
