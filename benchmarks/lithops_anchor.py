"""Lithops anchor: Dask's own executor path on Lithops localhost, against daskexec-lithops.

Dask runs a graph on any ``concurrent.futures.Executor`` given as
``scheduler=``: it submits one call per task (``chunksize`` 1), at most
``num_workers`` at a time (the CPU count: Lithops' executor has no
``_max_workers``).  On Lithops each call is one job of one function
invocation, so that path makes about one invocation per task.
:func:`run_lithops_anchor` measures it; :func:`run_daskexec_lithops` measures
the same collection on daskexec's scheduler over ``LithopsExecutor``.  Both
return ``(seconds, invocations)``, timing the compute only (each makes its
executor before the clock starts and shuts it down after).

Run side by side, as a script::

    python benchmarks/lithops_anchor.py                       # seed example
    python benchmarks/lithops_anchor.py --graphs seed,tasks --tasks 1000

Each Lithops invocation on localhost is a fresh Python process (about 0.5 to
1 s), so the anchor on a 1,000-task graph takes several minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any


def seed_example() -> Any:
    """The seed's example: row sums of a 10,000 x 1,000 random array, in 10 chunks."""
    import dask.array as da
    import numpy as np

    x = da.random.random((10000, 1000), chunks=(1000, 1000))
    return np.sum(x, axis=1)


def _inc(i: int) -> int:
    return i + 1


def many_tasks(n: int = 1000) -> Any:
    """``n`` small independent tasks and one that sums them: ``n + 1`` tasks."""
    import dask

    return dask.delayed(sum)([dask.delayed(_inc)(i) for i in range(n)])


def run_lithops_anchor(collection: Any) -> tuple[float, int]:
    """Compute ``collection`` with ``scheduler=lithops.concurrent.futures.LocalhostExecutor()``.

    Returns
    -------
    (seconds, invocations)
        Wall time of the compute, and how many Lithops calls it made.
    """
    import dask
    import lithops.concurrent.futures as lithops_cf

    # The localhost runtime defaults to whichever ``python`` is on PATH; the
    # calls need this interpreter, which has Dask.
    executor = lithops_cf.LocalhostExecutor(runtime=sys.executable, log_level=None)
    try:
        start = time.perf_counter()
        dask.compute(collection, scheduler=executor)
        seconds = time.perf_counter() - start
        invocations = len(executor.lithops_executor.futures)
    finally:
        executor.shutdown(wait=True)
    return seconds, invocations


def run_daskexec_lithops(collection: Any) -> tuple[float, int]:
    """Compute ``collection`` with daskexec's scheduler on ``LithopsExecutor()`` (localhost).

    Returns
    -------
    (seconds, invocations)
        Wall time of the compute, and how many Lithops calls it made.
    """
    import dask

    import daskexec
    from daskexec_lithops import LithopsExecutor

    with LithopsExecutor() as executor:
        scheduler = daskexec.ExecutorScheduler(executor)
        start = time.perf_counter()
        dask.compute(collection, scheduler=scheduler)
        seconds = time.perf_counter() - start
        invocations = executor.calls_submitted
    return seconds, invocations


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graphs", default="seed", help="comma-separated: seed, tasks")
    parser.add_argument("--tasks", type=int, default=1000, help="size of the 'tasks' graph")
    parser.add_argument("--repeats", type=int, default=1, help="repeats; the median is shown")
    args = parser.parse_args(argv)
    graphs = {"seed": seed_example, "tasks": lambda: many_tasks(args.tasks)}
    rows = []
    for name in args.graphs.split(","):
        make = graphs[name]
        runs: dict[str, list[tuple[float, int]]] = {"anchor": [], "daskexec": []}
        for _ in range(args.repeats):
            runs["anchor"].append(run_lithops_anchor(make()))
            runs["daskexec"].append(run_daskexec_lithops(make()))
        anchor = statistics.median(s for s, _ in runs["anchor"])
        ours = statistics.median(s for s, _ in runs["daskexec"])
        label = name if name != "tasks" else f"{args.tasks + 1} tasks"
        rows.append(
            f"| {label} | {anchor:.1f} s, {runs['anchor'][0][1]} invocations "
            f"| {ours:.1f} s, {runs['daskexec'][0][1]} invocations | {anchor / ours:.1f}x |"
        )
    print("| graph | Dask executor path on Lithops | daskexec-lithops | speedup |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
