"""The seed example on a process pool: row sums of a 10,000 x 1,000 random array.

Runs on ``daskexec_stdlib.ProcessPoolExecutor`` (the stdlib process pool with
cloudpickle transport and a safe start method), then on
``MultiprocessingPoolExecutor`` (``multiprocessing.Pool``), and checks both
against Dask's synchronous scheduler.  Needs ``pip install daskexec-stdlib``.

    python examples/processes.py
"""

from __future__ import annotations

import time

import dask
import dask.array as da
import numpy as np

import daskexec
from daskexec_stdlib import MultiprocessingPoolExecutor, ProcessPoolExecutor


def main() -> None:
    x = da.random.random((10000, 1000), chunks=(1000, 1000))
    y = np.sum(x, axis=1)
    expected = y.compute(scheduler="sync")

    for make in (ProcessPoolExecutor, MultiprocessingPoolExecutor):
        with make() as executor:
            scheduler = daskexec.ExecutorScheduler(executor)
            start = time.perf_counter()
            result = y.compute(scheduler=scheduler)
            elapsed = time.perf_counter() - start
        print(f"{make.__name__}: shape {result.shape}, sum {result.sum():.1f}, {elapsed:.2f}s")
        assert scheduler.last_stats is not None
        print(f"  scheduler: {scheduler.last_stats.summary()}")
        np.testing.assert_allclose(result, expected)

    # Or by backend name, or as Dask's default scheduler.
    with dask.config.set(scheduler=daskexec.ExecutorScheduler("processes")):
        result = y.compute()
    print(f"by name: shape {result.shape}, sum {result.sum():.1f}")


if __name__ == "__main__":  # worker processes re-import this module: keep the guard
    main()
