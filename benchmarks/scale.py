"""Scale benchmark: 10^4 to 10^6 tasks, on this machine and on a simulated 1,000-worker platform.

``python -m benchmarks.scale [--sizes 1e4,1e5,1e6] [--quick] ...`` (``nox -s
bench-scale``) writes ``benchmarks/results/scale.md``, ``.png`` and
``.json`` (``scale-quick.*`` with ``--quick``).

Graphs (``--graphs``), each built at about ``n`` tasks
---------------------------------------------------------
``tree``
    A legacy dict graph: ``n/2`` independent ``inc`` tasks
    (``{("x", i): (inc, i)}``) and a pairwise tree sum over them
    (``n/2 - 1`` ``add`` tasks).
``tree-100ms``
    The tree graph whose ``inc`` tasks each cost 100 ms of simulated time
    (``daskexec.testing.simulated.spend``), simulated part only: tasks that
    do real work, where the work bound, not the driver, should set the time.
``seed``
    The seed example scaled up: ``np.sum(x, axis=1)`` of a random array cut
    into many 20 x 20 chunks.
``rechunk``
    ``x.rechunk((15, 15)).sum()`` of a random array in 10 x 10 chunks: each
    new chunk takes pieces of up to four old ones.

Real machine (``tree`` only)
----------------------------
The default executor (``daskexec.ExecutorScheduler()``, a thread pool)
against Dask's threaded scheduler (``dask.threaded.get``), in the same run,
on the same graph: tasks per second of each (median of the timed repeats)
and their ratio, and the driver's peak memory: the ``tracemalloc`` peak
during one extra, untimed compute, counted from a baseline taken with the
graph already built, per task.  ``--skip-anchor-above N`` skips Dask's
threaded scheduler on graphs larger than ``N`` (it takes minutes at 10^6);
the full run includes it.

Simulated platform (every graph)
--------------------------------
Each graph on :class:`daskexec.testing.simulated.SimulatedExecutor` with the
``aws-lambda`` profile (1,000 workers): a fresh executor per graph, so the
run starts with no warm environment.  Reported:

- the virtual wall time of ``compute`` (the virtual clock read before and
  after it: the driver's own CPU time, graph preparation included, plus
  the simulated waits);
- the two lower bounds: the *total-work* bound, the work the invocations
  measured (CPU time of each successful call, as the simulator ran it)
  over the 1,000 workers; and the *critical-path* bound, the longest chain
  of tasks in the graph times the mean measured cost of a task, plus one
  invocation's mean latency (invoke, cold start and result delay of the
  profile: the first call on a fresh platform is cold);
- invocations, cold starts, lost invocations, stragglers, peak concurrency;
- the driver's CPU seconds (per task), its peak memory (``tracemalloc``,
  in an extra untimed run, which counts the simulator thread's transient
  memory too), and the dispatch rate it sustains: tasks and work items per
  virtual second, and tasks per second of driver CPU (the most the driver
  could feed the platform);
- where the gap to the larger bound comes from, by ablation
  (``--no-ablate`` skips it): the same compute with the driver's time not
  counted (``follow_driver=False``), and again on an ideal platform (no cold
  starts, stragglers, failures or rate limits; latencies kept).  Driver =
  full - no-driver; platform imperfections = no-driver - ideal; what is
  left (ideal - bound) is the latency of the rounds of invocations the
  graph's shape and the scheduler's batching need.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks.measure import peak_memory, timed

HERE = Path(__file__).resolve().parent

__all__ = ["main"]


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


#: Simulated cost of each leaf of the ``tree-100ms`` graph: a task that does
#: real work, where the tree graph's ``inc`` costs about a microsecond.
COSTLY_SECONDS = 0.1


def costly_inc(x: int) -> int:
    """``inc`` that costs :data:`COSTLY_SECONDS` of simulated time (real time elsewhere)."""
    from daskexec.testing.simulated import spend

    spend(COSTLY_SECONDS)
    return x + 1


# -- graphs -----------------------------------------------------------------------


def tree_graph(n: int, leaf: Callable[[int], int] = inc) -> tuple[dict[Hashable, Any], Hashable]:
    """About ``n`` tasks: ``n/2`` ``leaf`` (``inc``) tasks and a pairwise tree sum over them."""
    m = max(2, n // 2)
    dsk: dict[Hashable, Any] = {("x", i): (leaf, i) for i in range(m)}
    level: list[Hashable] = [("x", i) for i in range(m)]
    k = 0
    while len(level) > 1:
        nxt: list[Hashable] = []
        for a, b in zip(level[::2], level[1::2], strict=False):
            dsk[("s", k)] = (add, a, b)
            nxt.append(("s", k))
            k += 1
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return dsk, level[0]


def seed_graph(n: int) -> Any:
    """The seed example with many small (20 x 20) chunks: about ``n`` tasks."""
    import dask.array as da
    import numpy as np

    blocks = max(4, n // 3)  # random, sum and reduction tasks per block
    cols = 100
    rows = max(1, blocks // cols)
    x = da.random.random((rows * 20, cols * 20), chunks=(20, 20))
    return np.sum(x, axis=1)


def rechunk_graph(n: int) -> Any:
    """10 x 10 chunks rechunked to 15 x 15, then summed: about ``n`` tasks.

    Each new chunk takes pieces of up to four old ones (Dask's split and
    merge tasks), which makes about 3.4 tasks per old chunk.
    """
    import dask.array as da

    k = max(2, int((n / 3.4) ** 0.5))
    x = da.random.random((10 * k, 10 * k), chunks=(10, 10))
    return x.rechunk((15, 15)).sum()


#: ``tree-100ms``: the tree graph whose leaves cost 100 ms each (simulated
#: part only): where the work, not the driver, should set the time.
GRAPHS = ("tree", "tree-100ms", "seed", "rechunk")


@dataclass
class Graph:
    name: str
    size: int  # the size asked for
    tasks: int  # tasks in the graph as built
    depth: int  # tasks on the longest chain
    run: Callable[[Any], Any]  # run(scheduler) -> result
    expected: Any
    check: Callable[[Any, Any], bool]


def _depth(dsk: dict[Hashable, Any]) -> int:
    from dask.core import get_dependencies

    deps = {k: get_dependencies(dsk, k) for k in dsk}
    depth: dict[Hashable, int] = {}
    for root in dsk:
        if root in depth:
            continue
        stack = [root]
        while stack:
            k = stack[-1]
            todo = [d for d in deps[k] if d not in depth]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            depth[k] = 1 + max((depth[d] for d in deps[k]), default=0)
    return max(depth.values())


def build(name: str, n: int) -> Graph:
    """Build graph ``name`` at size ``n``, with its expected result."""
    import numpy as np

    if name in ("tree", "tree-100ms"):
        dsk, out = tree_graph(n, inc if name == "tree" else costly_inc)
        m = sum(1 for k in dsk if k[0] == "x")  # type: ignore[index]
        levels = (m - 1).bit_length() + 1
        return Graph(
            name,
            n,
            len(dsk),
            levels,
            lambda s: s.get(dsk, out) if callable(getattr(s, "get", None)) else s(dsk, out),
            m * (m + 1) // 2,
            lambda a, b: a == b,
        )
    coll = seed_graph(n) if name == "seed" else rechunk_graph(n)
    graph = dict(coll.__dask_graph__())
    expected = coll.compute(scheduler="sync") if n <= 20_000 else None
    return Graph(
        name,
        n,
        len(graph),
        _depth(graph),
        lambda s: coll.compute(scheduler=s),
        expected,
        lambda a, b: b is None or bool(np.allclose(a, b)),
    )


# -- measurements ---------------------------------------------------------------------


@dataclass
class RealRow:
    size: int
    tasks: int
    daskexec_seconds: float
    daskexec_peak: int
    dask_seconds: float | None = None
    dask_peak: int | None = None

    @property
    def ratio(self) -> float | None:
        """daskexec's tasks/s over Dask threaded's."""
        return None if self.dask_seconds is None else self.dask_seconds / self.daskexec_seconds


def _peak(fn: Callable[[], Any]) -> int:
    """Peak bytes ``fn()`` allocated (tracemalloc), from a baseline taken just before it."""
    return peak_memory(fn, "tracemalloc")


def measure_real(g: Graph, repeats: int, anchor: bool, memory: bool) -> RealRow:
    import dask.threaded

    import daskexec

    s = daskexec.ExecutorScheduler()
    runners: list[tuple[str, Callable[[], Any]]] = [("daskexec", lambda: g.run(s))]
    if anchor:
        runners.append(("dask", lambda: g.run(dask.threaded.get)))
    times: dict[str, list[float]] = {name: [] for name, _ in runners}
    for _ in range(repeats):  # runners take turns, so the machine's noise falls on both
        for name, fn in runners:
            result, seconds = timed(fn)
            if not g.check(result, g.expected):
                raise AssertionError(f"{name} on tree-{g.size}: wrong result {result!r}")
            times[name].append(seconds)
            del result
    row = RealRow(g.size, g.tasks, statistics.median(times["daskexec"]), 0)
    if memory:
        row.daskexec_peak = _peak(runners[0][1])
    if anchor:
        row.dask_seconds = statistics.median(times["dask"])
        if memory:
            row.dask_peak = _peak(runners[1][1])
    return row


@dataclass
class SimRow:
    graph: str
    size: int
    tasks: int
    depth: int
    wall: float  # virtual seconds of compute()
    real_seconds: float
    driver_cpu: float  # CPU seconds of the driver thread during compute()
    peak: int | None
    invocations: int
    work_items: int
    remote_tasks: int
    cold_starts: int
    failures: int
    stragglers: int
    peak_concurrency: int
    work_seconds: float
    busy_seconds: float
    waiting_seconds: float
    latency: float  # mean invoke + cold start + result delay of the profile
    workers: int
    no_driver: float | None = None
    ideal: float | None = None
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def work_bound(self) -> float:
        return self.work_seconds / self.workers

    @property
    def critical_bound(self) -> float:
        per_task = self.work_seconds / max(1, self.remote_tasks)
        return self.depth * per_task + self.latency

    @property
    def bound(self) -> float:
        return max(self.work_bound, self.critical_bound)

    @property
    def ratio(self) -> float:
        return self.wall / self.bound


def _simulate(g: Graph, platform: Any, follow_driver: bool) -> tuple[Any, float, float, Any, Any]:
    import daskexec
    from daskexec.testing.simulated import SimulatedExecutor

    ex = SimulatedExecutor(platform, seed=0, follow_driver=follow_driver)
    try:
        s = daskexec.ExecutorScheduler(ex)
        gc.collect()
        v0, c0, r0 = ex.now(), time.thread_time(), time.perf_counter()
        result = g.run(s)
        wall, cpu = ex.now() - v0, time.thread_time() - c0
        real = time.perf_counter() - r0
        if not g.check(result, g.expected):
            raise AssertionError(f"simulated {g.name}-{g.size}: wrong result")
        return ex.last_run, wall, cpu, s.last_stats, real
    finally:
        ex.shutdown()


def measure_simulated(g: Graph, platform: Any, memory: bool, ablate: bool) -> SimRow:
    import daskexec
    from daskexec.testing.simulated import Fixed, SimulatedExecutor

    run, wall, cpu, stats, real = _simulate(g, platform, True)
    p = platform
    row = SimRow(
        graph=g.name,
        size=g.size,
        tasks=g.tasks,
        depth=g.depth,
        wall=wall,
        real_seconds=real,
        driver_cpu=cpu,
        peak=None,
        invocations=run.invocations,
        work_items=stats.work_items,
        remote_tasks=stats.remote_tasks,
        cold_starts=run.cold_starts,
        failures=run.failures,
        stragglers=run.stragglers,
        peak_concurrency=run.peak_concurrency,
        work_seconds=run.work_seconds,
        busy_seconds=run.busy_seconds,
        waiting_seconds=run.waiting_seconds,
        latency=p.invoke.mean + p.cold_start.mean + p.result.mean,
        workers=p.concurrency,
        summary=run.summary(),
    )
    if memory:
        ex = SimulatedExecutor(platform, seed=0)
        try:
            s = daskexec.ExecutorScheduler(ex)
            row.peak = _peak(lambda: g.run(s))
        finally:
            ex.shutdown()
    if ablate:
        row.no_driver = _simulate(g, platform, False)[1]
        ideal = replace(
            platform,
            cold_start=Fixed(0.0),
            failure_rate=0.0,
            straggler_rate=0.0,
            invoke_rate=None,
            scale_burst=None,
            scale_rate=None,
        )
        row.ideal = _simulate(g, ideal, False)[1]
    return row


def platform_floor(
    platform: Any, counts: tuple[int, ...] = (1, 10, 100, 1000), seeds: int = 5
) -> dict[int, float]:
    """Median virtual seconds for ``n`` no-op calls submitted at once, driver not counted.

    What the platform alone costs a round of ``n`` invocations (the invoke
    rate, the slowest of ``n`` latencies and cold starts): no scheduler, and
    no driver, can run a graph that needs ``n`` calls at once faster.
    """
    import concurrent.futures

    from daskexec.testing.simulated import SimulatedExecutor

    floor: dict[int, float] = {}
    for n in counts:
        times = []
        for seed in range(seeds):
            ex = SimulatedExecutor(platform, seed=seed, follow_driver=False)
            try:
                t0 = ex.now()
                concurrent.futures.wait([ex.submit(int, i) for i in range(n)])
                times.append(ex.now() - t0)
            finally:
                ex.shutdown()
        floor[n] = statistics.median(times)
    return floor


# -- command line ---------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    p.add_argument("--sizes", type=_sizes, default=None, help="graph sizes (default 1e4,1e5,1e6)")
    p.add_argument("--graphs", default=",".join(GRAPHS), help="comma-separated graphs")
    p.add_argument("--quick", action="store_true", help="small sizes, 1 repeat (CI smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3; 1 at 1e6)")
    p.add_argument("--platform", default="aws-lambda", help="simulated platform profile")
    p.add_argument(
        "--skip-anchor-above",
        type=float,
        default=None,
        help="skip Dask's threaded scheduler on graphs larger than this",
    )
    p.add_argument("--parts", default="real,sim", help="real, sim or both")
    p.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    p.add_argument("--no-ablate", action="store_true", help="skip the ablation runs")
    p.add_argument("--out", type=Path, default=HERE / "results", help="output folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    p.add_argument(
        "--merge",
        action="store_true",
        help="add this run's rows to those of the JSON already written (sizes run apart)",
    )
    return p.parse_args(argv)


def _load(path: Path) -> tuple[list[RealRow], list[SimRow], str]:
    """The rows and the command of an earlier run's JSON, to merge with (``--merge``)."""
    if not path.exists():
        return [], [], ""
    data = json.loads(path.read_text())
    real = [RealRow(**row) for row in data["real"]]
    sim = [SimRow(**row) for row in data["simulated"]]
    return real, sim, data["info"].get("command", "")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if str(HERE.parent) not in sys.path:
        sys.path.insert(0, str(HERE.parent))
    from benchmarks import scale_report
    from daskexec.testing.simulated import PLATFORMS

    sizes = args.sizes or ([2_000] if args.quick else [10_000, 100_000, 1_000_000])
    graphs = [g for g in args.graphs.split(",") if g]
    parts = set(args.parts.split(","))
    platform = PLATFORMS[args.platform]
    started = time.perf_counter()
    real_rows: list[RealRow] = []
    sim_rows: list[SimRow] = []
    for n in sizes:
        for name in graphs:
            t0 = time.perf_counter()
            g = build(name, n)
            print(
                f"{name}-{n}: {g.tasks} tasks, depth {g.depth}, built in "
                f"{time.perf_counter() - t0:.1f}s",
                flush=True,
            )
            if name == "tree" and "real" in parts:
                repeats = args.repeats or (1 if args.quick or n >= 1_000_000 else 3)
                anchor = args.skip_anchor_above is None or n <= args.skip_anchor_above
                row = measure_real(g, repeats, anchor, not args.no_memory)
                real_rows.append(row)
                print(f"  real: {scale_report.real_line(row)}", flush=True)
            if "sim" in parts:
                srow = measure_simulated(g, platform, not args.no_memory, not args.no_ablate)
                sim_rows.append(srow)
                print(f"  simulated: {scale_report.sim_line(srow)}", flush=True)
            del g
            gc.collect()
    took = time.perf_counter() - started
    stem = "scale-quick" if args.quick else "scale"
    command = "python -m benchmarks.scale " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.merge:
        old_real, old_sim, old_command = _load(args.out / f"{stem}.json")
        done = {(r.size, r.tasks) for r in real_rows}
        real_rows = [r for r in old_real if (r.size, r.tasks) not in done] + real_rows
        done_sim = {(r.graph, r.size) for r in sim_rows}
        sim_rows = [r for r in old_sim if (r.graph, r.size) not in done_sim] + sim_rows
        real_rows.sort(key=lambda r: r.tasks)
        sim_rows.sort(key=lambda r: (r.size, GRAPHS.index(r.graph)))
        command = f"{old_command.strip()}` then `{command.strip()}"
    info = scale_report.machine(command.strip(), took)
    if "sim" in parts:
        info["platform_floor"] = platform_floor(platform)
    args.out.mkdir(parents=True, exist_ok=True)
    scale_report.write_markdown(real_rows, sim_rows, info, args.platform, args.out / f"{stem}.md")
    with contextlib.suppress(TypeError):
        (args.out / f"{stem}.json").write_text(
            json.dumps(
                {
                    "info": info,
                    "real": [asdict(r) for r in real_rows],
                    "simulated": [asdict(r) for r in sim_rows],
                },
                indent=1,
                default=str,
            )
        )
    if not args.no_plot:
        scale_report.write_plot(real_rows, sim_rows, args.out / f"{stem}.png")
    print(f"wrote {args.out / stem}.md ({took:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
