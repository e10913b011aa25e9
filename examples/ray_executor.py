"""The seed example on Ray: row sums of a 10,000 x 1,000 random array.

Runs on ``daskexec_ray.RayExecutor`` and checks the result against Dask's
synchronous scheduler.  With no address, the executor starts a local Ray
instance (all cores, no dashboard) and stops it when the ``with`` block ends.
The chunks stay in Ray's object store between tasks: only the 10 row-sum
blocks come back to this process.  Needs ``pip install daskexec-ray``.

    python examples/ray_executor.py                        # a local Ray
    python examples/ray_executor.py auto                   # this machine's cluster (ray start)
    python examples/ray_executor.py ray://head-node:10001  # a remote cluster, via Ray Client

On a cluster, the same code runs unchanged; only the address differs, and
the executor leaves a cluster it did not start running.  The cluster's
workers need ``daskexec-core`` and ``daskexec-ray`` installed (in the image,
or per job with ``runtime_env={"pip": ["daskexec-core", "daskexec-ray"]}``).
Resource options go per executor (``RayExecutor(address, num_cpus=2)``) or
per task with ``dask.annotate(num_gpus=1)`` / ``dask.annotate(resources=...)``.
"""

from __future__ import annotations

import sys
import time

import dask.array as da
import numpy as np

import daskexec
from daskexec_ray import RayExecutor


def main(address: str | None = None) -> None:
    x = da.random.random((10000, 1000), chunks=(1000, 1000))
    y = np.sum(x, axis=1)
    expected = y.compute(scheduler="sync")

    with RayExecutor(address) as executor:
        scheduler = daskexec.ExecutorScheduler(executor)
        for run in ("cold", "warm"):
            start = time.perf_counter()
            result = y.compute(scheduler=scheduler)
            elapsed = time.perf_counter() - start
            print(f"ray ({run}): shape {result.shape}, sum {result.sum():.1f}, {elapsed:.2f}s")
            assert scheduler.last_stats is not None
            print(f"  scheduler: {scheduler.last_stats.summary()}")
            np.testing.assert_allclose(result, expected)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
