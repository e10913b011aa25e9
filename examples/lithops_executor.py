"""The seed example on Lithops: row sums of a 10,000 x 1,000 random array.

With no Lithops configuration this runs on Lithops' localhost backend (each
call a fresh local Python process), with nothing to set up.  With a Lithops
config file (``~/.lithops/config`` or ``LITHOPS_CONFIG_FILE``) naming a cloud
backend, the same script runs on cloud functions: see
packages/adapters/lithops/README.md.

    python examples/lithops_executor.py
"""

from __future__ import annotations

import time

import dask.array as da
import numpy as np

import daskexec
from daskexec_lithops import LithopsExecutor


def main() -> None:
    x = da.random.random((10000, 1000), chunks=(1000, 1000))
    with LithopsExecutor() as executor:
        scheduler = daskexec.ExecutorScheduler(executor)
        start = time.perf_counter()
        y = np.sum(x, axis=1).compute(scheduler=scheduler)
        seconds = time.perf_counter() - start
        print(y)
        print(f"{y.shape[0]} row sums in {seconds:.1f} s on Lithops {executor.backend}")
        print(scheduler.last_stats)
        print(
            f"Lithops: {executor.jobs_submitted} jobs, "
            f"{executor.calls_submitted} calls (function invocations)"
        )


if __name__ == "__main__":
    main()
