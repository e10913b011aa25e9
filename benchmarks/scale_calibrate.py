"""Calibrate the simulator's Lithops localhost profile: per-call latency on this machine.

Runs one single-task call at a time through daskexec on
``daskexec_lithops.LithopsExecutor()`` (localhost) and prints, from the
scheduler's item records, the time from submission to the task starting,
the task's run time, and the time from its end to the driver holding the
result.  ``daskexec.testing._platforms.LITHOPS_LOCALHOST`` holds the result.
Only one Lithops program may run at a time on the shared machine::

    flock /tmp/daskexec-lithops.lock python benchmarks/scale_calibrate.py
"""

from __future__ import annotations

import statistics
import time

import dask
from dask import delayed

import daskexec
from daskexec_lithops import LithopsExecutor


def inc(x: int) -> int:
    return x + 1


def _quantiles(values: list[float]) -> str:
    v = sorted(values)
    n = len(v)
    return (
        f"median {statistics.median(v):.3f} p10 {v[n // 10]:.3f} "
        f"p90 {v[9 * n // 10]:.3f} max {v[-1]:.3f}"
    )


def main(calls: int = 12) -> None:
    ex = LithopsExecutor()
    s = daskexec.ExecutorScheduler(ex, pack_size=1)
    dask.compute(delayed(inc)(0), scheduler=s)  # warm-up
    parts: dict[str, list[float]] = {"start": [], "run": [], "back": [], "total": []}
    walls = []
    for i in range(calls):
        t0 = time.perf_counter()
        dask.compute(delayed(inc)(i, dask_key_name=f"inc-{i}"), scheduler=s)
        walls.append(time.perf_counter() - t0)
        for r in s.last_stats.items:
            parts["start"].append(r.started - r.submitted)
            parts["run"].append(r.finished - r.started)
            parts["back"].append(r.received - r.finished)
            parts["total"].append(r.received - r.submitted)
    ex.shutdown()
    print("compute", _quantiles(walls))
    for name, values in parts.items():
        print(name, _quantiles(values))
    with open("/proc/loadavg") as f:
        print("load average", f.read().strip())


if __name__ == "__main__":
    main()
