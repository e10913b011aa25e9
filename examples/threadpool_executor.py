"""The seed's example: a row sum of a 10000 x 1000 random array, on a thread pool.

Run: python examples/threadpool_executor.py
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import dask.array as da
import numpy as np

import daskexec


def main() -> None:
    x = da.random.random((10000, 1000), chunks=(1000, 1000))
    y = np.sum(x, axis=1)

    # The default executor: a ThreadPoolExecutor with one thread per CPU.
    scheduler = daskexec.ExecutorScheduler()
    start = time.perf_counter()
    result = y.compute(scheduler=scheduler)
    elapsed = time.perf_counter() - start
    print(f"result: shape {result.shape}, sum {result.sum():.1f}, first {result[:3]}")
    print(f"time: {elapsed:.3f}s")
    assert scheduler.last_stats is not None
    print(f"scheduler: {scheduler.last_stats.summary()}")

    # The seed's own form, with an executor of your choosing and its knobs.
    with ThreadPoolExecutor(max_workers=4) as executor:
        result = y.compute(
            scheduler=daskexec.executor_scheduler, executor=executor, batch_size=10, timeout=0.01
        )
    print(f"seed form: shape {result.shape}, sum {result.sum():.1f}")


if __name__ == "__main__":
    main()
