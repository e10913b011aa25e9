"""daskexec on threads, processes and loky at the full benchmark sizes, side by side.

The result store's target (issue "Results stay where they were computed"):
processes and loky within 1.5x of threads on ``transpose`` and ``rechunk``,
with the bytes that crossed the driver shown.  No Dask anchors (at 3.2 GB
they take most of ``python -m benchmarks``' time); median of 3 after a
warm-up, runners taking turns::

    python -m benchmarks.store_fullsize
"""

from __future__ import annotations

import concurrent.futures
import statistics
import time
from typing import Any

import dask.array as da

import daskexec
from benchmarks.measure import peak_memory


def rechunk() -> Any:
    x = da.random.random((8000, 8000), chunks=(8000, 100))
    return x.rechunk((100, 8000)).sum()


def transpose() -> Any:
    x = da.random.random((20000, 20000), chunks=(2000, 2000))
    return (x + x.T).mean()


def main() -> None:
    from daskexec_loky import LokyExecutor
    from daskexec_stdlib import ProcessPoolExecutor

    work = {"transpose": transpose, "rechunk": rechunk}
    with (
        concurrent.futures.ThreadPoolExecutor(2) as th,
        ProcessPoolExecutor() as pp,
        LokyExecutor() as lk,
    ):
        runners = [("threads", th), ("processes", pp), ("loky", lk)]
        for name, make in work.items():
            times: dict[str, list[float]] = {label: [] for label, _ in runners}
            stats: dict[str, daskexec.ComputeStats] = {}
            for _, ex in runners:
                make().compute(scheduler=daskexec.ExecutorScheduler(ex))  # warm-up
            for _ in range(3):
                for label, ex in runners:
                    s = daskexec.ExecutorScheduler(ex)
                    start = time.perf_counter()
                    make().compute(scheduler=s)
                    times[label].append(time.perf_counter() - start)
                    assert s.last_stats is not None
                    stats[label] = s.last_stats
            peaks = {
                label: peak_memory(
                    lambda ex=ex, make=make: make().compute(
                        scheduler=daskexec.ExecutorScheduler(ex)
                    )
                )
                for label, ex in runners
            }
            base = statistics.median(times["threads"])
            for label, _ in runners:
                median = statistics.median(times[label])
                st = stats[label]
                print(
                    f"{name:10s} {label:10s} {median:7.2f}s {median / base:5.2f}x threads  "
                    f"driver out {st.bytes_sent / 2**20:.1f} MiB, back "
                    f"{st.bytes_received / 2**20:.2f} MiB, store peak "
                    f"{st.store_peak_bytes / 2**20:.0f} MiB, driver peak "
                    f"{peaks[label] / 2**20:.0f} MiB",
                    flush=True,
                )


if __name__ == "__main__":
    main()
