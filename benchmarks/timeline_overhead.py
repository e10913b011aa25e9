"""What recording costs: the 10,000-task graph with a Timeline and a ProgressBar open, and without.

Run: python benchmarks/timeline_overhead.py [--backends threads,processes] [--repeat 7]

Every compute records one ItemRecord per work item and its breakdown anyway;
a Timeline only keeps the computes' stats, and a ProgressBar polls them from
a thread.  The runs alternate on one executor (off then on, then on then off...), and
the report is each one's best time and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import dask

import daskexec
from benchmarks.workloads import _overhead
from daskexec.diagnostics import ProgressBar, Timeline


def best_times(backend: str, n: int, repeat: int) -> tuple[float, float]:
    graph = _overhead(n)
    executor = daskexec.create_executor(backend)
    try:
        s = daskexec.ExecutorScheduler(executor)
        dask.compute(graph, scheduler=s)  # warm up the workers
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(repeat):
            for recording in (False, True) if i % 2 else (True, False):
                with contextlib.ExitStack() as stack:
                    if recording:
                        stack.enter_context(Timeline())
                        stack.enter_context(ProgressBar(file=io.StringIO()))
                    start = time.perf_counter()
                    dask.compute(graph, scheduler=s)
                    times[recording].append(time.perf_counter() - start)
        return min(times[False]), min(times[True])
    finally:
        executor.shutdown(wait=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="threads,processes")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print("| backend | off (s) | timeline + progress on (s) | on / off |")
    print("|---|---|---|---|")
    for backend in args.backends.split(","):
        off, on = best_times(backend, args.tasks, args.repeat)
        print(f"| {backend} | {off:.3f} | {on:.3f} | {on / off:.3f} |")


if __name__ == "__main__":
    main()
