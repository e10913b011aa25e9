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
    python benchmarks/lithops_anchor.py --graphs transpose --size 4000 --chunk 1000 --bytes
    python benchmarks/lithops_anchor.py --graphs rechunk --size 4000 --width 100 --bytes

``--bytes`` adds what crossed the driver: for every path, the call data
Lithops uploaded (``func_data_size_bytes`` of each job) and the call results
it downloaded (``func_result_size`` of each call); for daskexec also its own
counters (``ComputeStats``: ``bytes_sent``, ``bytes_received``,
``store_peak_bytes``), and a daskexec run with the result store switched off
(results through the driver, as before the store).

Each Lithops invocation on localhost is a fresh Python process (about 0.5 to
1 s), so the anchor on a 1,000-task graph takes several minutes.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
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


def transpose(n: int = 4000, chunk: int = 1000) -> Any:
    """The ``transpose`` workload of ``benchmarks/workloads.py``: ``(x + x.T).mean()``."""
    import dask.array as da

    x = da.random.random((n, n), chunks=(chunk, chunk))
    return (x + x.T).mean()


def rechunk(n: int = 4000, width: int = 100) -> Any:
    """The ``rechunk`` workload of ``benchmarks/workloads.py``: all-to-all, then a sum."""
    import dask.array as da

    x = da.random.random((n, n), chunks=(n, width))
    return x.rechunk((width, n)).sum()


@dataclasses.dataclass
class Measured:
    """One compute: its time, its Lithops calls and the bytes that crossed the driver."""

    seconds: float
    invocations: int
    uploaded: int  # call data Lithops uploaded from the driver (all jobs)
    downloaded: int  # call results Lithops downloaded to the driver
    stats: Any = None  # daskexec's ComputeStats, when daskexec ran it


def _lithops_bytes(futures: list[Any]) -> tuple[int, int]:
    """(call data uploaded, call results downloaded) of a Lithops executor's futures."""
    data: dict[str, int] = {}
    results = 0
    for f in futures:
        data[f.job_key] = int(f.stats.get("func_data_size_bytes", 0))
        results += int(f.stats.get("func_result_size", 0))
    return sum(data.values()), results


def measure_lithops_anchor(collection: Any) -> Measured:
    """:func:`run_lithops_anchor`, with the bytes Lithops moved through the driver."""
    import dask
    import lithops.concurrent.futures as lithops_cf

    # The localhost runtime defaults to whichever ``python`` is on PATH; the
    # calls need this interpreter, which has Dask.  Lithops refuses a job
    # whose data exceeds 4 MiB (one task given two 8 MB chunks) unless told
    # otherwise: daskexec-lithops lifts that limit too.
    executor = lithops_cf.LocalhostExecutor(
        config={"lithops": {"data_limit": False}}, runtime=sys.executable, log_level=None
    )
    try:
        start = time.perf_counter()
        dask.compute(collection, scheduler=executor)
        seconds = time.perf_counter() - start
        futures = list(executor.lithops_executor.futures)
    finally:
        executor.shutdown(wait=True)
    return Measured(seconds, len(futures), *_lithops_bytes(futures))


class _NoStore(concurrent.futures.Executor):
    """A LithopsExecutor as daskexec saw it before its result store: results via the driver."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return self.inner.submit(fn, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # submit_many, __daskexec_compute_done__
        return getattr(self.inner, name)

    def __daskexec_engine__(self) -> Any:
        return dataclasses.replace(self.inner.__daskexec_engine__(), store=None)


def measure_daskexec_lithops(collection: Any, store: bool = True) -> Measured:
    """:func:`run_daskexec_lithops`, with daskexec's and Lithops' byte counters.

    ``store=False`` hides the executor's result store from the scheduler.
    """
    import dask

    import daskexec
    from daskexec_lithops import LithopsExecutor

    with LithopsExecutor() as executor:
        scheduler = daskexec.ExecutorScheduler(executor if store else _NoStore(executor))
        start = time.perf_counter()
        dask.compute(collection, scheduler=scheduler)
        seconds = time.perf_counter() - start
        futures = list(executor.lithops_executor.futures)
        invocations = executor.calls_submitted
    return Measured(seconds, invocations, *_lithops_bytes(futures), scheduler.last_stats)


def run_lithops_anchor(collection: Any) -> tuple[float, int]:
    """Compute ``collection`` with ``scheduler=lithops.concurrent.futures.LocalhostExecutor()``.

    Returns
    -------
    (seconds, invocations)
        Wall time of the compute, and how many Lithops calls it made.
    """
    m = measure_lithops_anchor(collection)
    return m.seconds, m.invocations


def run_daskexec_lithops(collection: Any) -> tuple[float, int]:
    """Compute ``collection`` with daskexec's scheduler on ``LithopsExecutor()`` (localhost).

    Returns
    -------
    (seconds, invocations)
        Wall time of the compute, and how many Lithops calls it made.
    """
    m = measure_daskexec_lithops(collection)
    return m.seconds, m.invocations


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"


def _bytes_row(label: str, m: Measured) -> str:
    ours = "-"
    if m.stats is not None:
        st = m.stats
        ours = (
            f"{_mib(st.bytes_sent)} out, {_mib(st.bytes_received)} back, "
            f"store peak {_mib(st.store_peak_bytes)}"
        )
    return (
        f"| {label} | {m.seconds:.1f} s | {m.invocations} | {_mib(m.uploaded)} "
        f"| {_mib(m.downloaded)} | {ours} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--graphs", default="seed", help="comma-separated: seed, tasks, transpose, rechunk"
    )
    parser.add_argument("--tasks", type=int, default=1000, help="size of the 'tasks' graph")
    parser.add_argument("--repeats", type=int, default=1, help="repeats; the median is shown")
    parser.add_argument("--size", type=int, default=4000, help="n of the 'transpose' graph")
    parser.add_argument("--chunk", type=int, default=1000, help="chunk of the 'transpose' graph")
    parser.add_argument("--width", type=int, default=100, help="chunk width of 'rechunk'")
    parser.add_argument(
        "--bytes", action="store_true", help="also show the bytes that crossed the driver"
    )
    args = parser.parse_args(argv)
    graphs: dict[str, Callable[[], Any]] = {
        "seed": seed_example,
        "tasks": lambda: many_tasks(args.tasks),
        "transpose": lambda: transpose(args.size, args.chunk),
        "rechunk": lambda: rechunk(args.size, args.width),
    }
    rows = []
    byte_rows = []
    for name in args.graphs.split(","):
        make = graphs[name]
        runs: dict[str, list[tuple[float, int]]] = {"anchor": [], "daskexec": []}
        for _ in range(args.repeats):
            anchor_run = measure_lithops_anchor(make())
            ours_run = measure_daskexec_lithops(make())
            runs["anchor"].append((anchor_run.seconds, anchor_run.invocations))
            runs["daskexec"].append((ours_run.seconds, ours_run.invocations))
        if args.bytes:
            byte_rows.append(_bytes_row(f"{name}: Dask executor path", anchor_run))
            byte_rows.append(_bytes_row(f"{name}: daskexec-lithops", ours_run))
            no_store = measure_daskexec_lithops(make(), store=False)
            byte_rows.append(_bytes_row(f"{name}: daskexec-lithops, no store", no_store))
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
    if byte_rows:
        print()
        print(
            "| run | seconds | invocations | call data up (Lithops) | call results down "
            "(Lithops) | daskexec ComputeStats |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        print("\n".join(byte_rows))


if __name__ == "__main__":
    main()
