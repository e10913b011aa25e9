"""The seed example on loky: row sums of a 10,000 x 1,000 random array.

Runs on ``daskexec_loky.LokyExecutor`` (loky's reusable process pool) and
checks the result against Dask's synchronous scheduler.  Keeping one
executor open across computes keeps loky's workers warm; shutting it down
(here, leaving the ``with`` block) stops them.  Needs
``pip install daskexec-loky``.

    python examples/loky_executor.py
"""

from __future__ import annotations

import time

import dask.array as da
import numpy as np

import daskexec
from daskexec_loky import LokyExecutor


def main() -> None:
    x = da.random.random((10000, 1000), chunks=(1000, 1000))
    y = np.sum(x, axis=1)
    expected = y.compute(scheduler="sync")

    with LokyExecutor() as executor:
        scheduler = daskexec.ExecutorScheduler(executor)
        for run in ("cold", "warm"):
            start = time.perf_counter()
            result = y.compute(scheduler=scheduler)
            elapsed = time.perf_counter() - start
            print(f"loky ({run}): shape {result.shape}, sum {result.sum():.1f}, {elapsed:.2f}s")
            assert scheduler.last_stats is not None
            print(f"  scheduler: {scheduler.last_stats.summary()}")
            np.testing.assert_allclose(result, expected)


if __name__ == "__main__":  # worker processes re-import this module: keep the guard
    main()
