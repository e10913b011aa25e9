"""Check the simulator's ``lithops-localhost`` profile against what Lithops localhost did here.

Runs, on ``SimulatedExecutor(LITHOPS_LOCALHOST)``, the two experiments that
calibrated the profile on the real Lithops localhost backend
(``benchmarks/scale_calibrate.py``): twenty single-task calls at once on the
two workers (measured: 10.2-15.4 s on the loaded machine), and one call at a
time (measured: 0.91 s from submission to result, median).  Prints the
virtual seconds the simulation takes for each.  No Lithops needed.
"""

from __future__ import annotations

import statistics

import dask
from dask import delayed

import daskexec
from daskexec.testing.simulated import LITHOPS_LOCALHOST, SimulatedExecutor


def inc(x: int) -> int:
    return x + 1


def main() -> None:
    ex = SimulatedExecutor(LITHOPS_LOCALHOST, seed=0)
    s = daskexec.ExecutorScheduler(ex, pack_size=1)
    dask.compute(*[delayed(inc)(i) for i in range(4)], scheduler=s)  # as the calibration's warm-up
    twenty = []
    for rep in range(3):
        t0 = ex.now()
        tasks = [delayed(inc)(i, dask_key_name=f"inc-{rep}-{i}") for i in range(20)]
        dask.compute(*tasks, scheduler=s)
        twenty.append(ex.now() - t0)
    one = []
    for rep in range(12):
        t0 = ex.now()
        dask.compute(delayed(inc)(rep, dask_key_name=f"one-{rep}"), scheduler=s)
        one.append(ex.now() - t0)
    ex.shutdown()
    print("20 calls on 2 workers, virtual seconds:", ", ".join(f"{w:.2f}" for w in twenty))
    print(
        f"one call, virtual seconds: median {statistics.median(one):.3f}, "
        f"{min(one):.3f}-{max(one):.3f}"
    )


if __name__ == "__main__":
    main()
