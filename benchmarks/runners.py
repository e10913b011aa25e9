"""Who runs the graphs: daskexec on each backend, and the anchors a user would pick instead.

Runners come in groups; a group holds the daskexec backends of one kind of
engine and the anchors that compete with them, runs together, and its
ratios are taken against its own reference anchor measured in the same run:

- threads: daskexec ``threads``; reference: dask threads.
- processes: daskexec ``processes``, ``multiprocessing-pool``, ``loky``;
  reference: dask on ProcessPoolExecutor.
- ray: daskexec ``ray``; reference: ray_dask_get.
- lithops: daskexec ``lithops``; reference: dask on lithops executor.

Anchors of the threads group: Dask's ``sync`` and ``threads`` schedulers,
Dask with ``scheduler=ThreadPoolExecutor``, and ``distributed.LocalCluster``
(in-process workers).  Of the processes group: Dask's ``processes``
scheduler (which makes a new process pool in every compute, as users get
it, so its times include pool start-up), Dask with
``scheduler=ProcessPoolExecutor`` and with a loky ``ProcessPoolExecutor``
(pools made once and reused, as daskexec's are: the fair reference).  The
Ray group shares one Ray instance between daskexec and
``ray.util.dask.ray_dask_get``.  The Lithops anchor is
Dask's executor path on ``lithops.concurrent.futures``, from
``benchmarks/lithops_anchor.py`` when that module exists.

Executors and clusters are made once per group and reused across every
compute (a user would do the same); making them, plus one trivial compute
that starts their workers, is the runner's start-up, reported apart.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import daskexec

__all__ = ["GROUP_OF", "Group", "Outcome", "Runner", "make_groups"]

CPUS = os.cpu_count() or 1

#: daskexec backend -> group it runs in
GROUP_OF = {
    "threads": "threads",
    "processes": "processes",
    "multiprocessing-pool": "processes",
    "loky": "processes",
    "ray": "ray",
    "lithops": "lithops",
}
#: groups whose engine costs about a second per call run the ``small`` sizes
SLOW_GROUPS = {"lithops"}


@dataclass
class Outcome:
    """What one compute returned: its result (None if the runner cannot return it),
    seconds the runner measured itself (None: use wall time), and counters."""

    result: Any
    seconds: float | None = None
    counters: dict[str, int] | None = None
    checkable: bool = True


class Runner:
    """One way of computing a collection."""

    kind = "anchor"
    note = ""

    def __init__(self, label: str) -> None:
        self.label = label

    def start(self) -> None:
        """Make executors, clusters or connections; called once per group."""

    def compute(self, collection: Any) -> Outcome:
        raise NotImplementedError

    def close(self) -> None:
        """Release what ``start`` made."""


class DaskScheduler(Runner):
    """Dask's own named schedulers: ``sync``, ``threads``, ``processes``."""

    def __init__(self, name: str, note: str = "") -> None:
        super().__init__(f"dask {name}")
        self.name = name
        self.note = note

    def compute(self, collection: Any) -> Outcome:
        return Outcome(collection.compute(scheduler=self.name))


class DaskOnExecutor(Runner):
    """Dask's ``scheduler=<Executor>`` path (``dask.local.get_async`` over ``submit``)."""

    def __init__(self, label: str, factory: Any) -> None:
        super().__init__(label)
        self.factory = factory
        self.executor: concurrent.futures.Executor | None = None

    def start(self) -> None:
        self.executor = self.factory()

    def compute(self, collection: Any) -> Outcome:
        return Outcome(collection.compute(scheduler=self.executor))

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = None


class LocalClusterRunner(Runner):
    """``distributed.LocalCluster`` with one in-process worker of one thread per core."""

    note = f"processes=False, 1 worker x {CPUS} threads"

    def __init__(self) -> None:
        super().__init__("distributed LocalCluster")
        self.cluster: Any = None
        self.client: Any = None

    def start(self) -> None:
        import distributed

        for name in ("distributed", "tornado", "bokeh"):
            logging.getLogger(name).setLevel(logging.ERROR)
        self.cluster = distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=CPUS,
            processes=False,
            dashboard_address=None,
        )
        self.client = distributed.Client(self.cluster, set_as_default=False)

    def compute(self, collection: Any) -> Outcome:
        return Outcome(collection.compute(scheduler=self.client))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.cluster.close()
            self.client = self.cluster = None


class RayDaskGet(Runner):
    """``ray.util.dask.ray_dask_get`` on the group's Ray instance."""

    def __init__(self) -> None:
        super().__init__("ray_dask_get")

    def compute(self, collection: Any) -> Outcome:
        from ray.util.dask import ray_dask_get

        return Outcome(collection.compute(scheduler=ray_dask_get))


class LithopsAnchor(Runner):
    """Dask's executor path on Lithops localhost (``benchmarks/lithops_anchor.py``)."""

    note = "result not returned by the anchor; not checked"

    def __init__(self) -> None:
        super().__init__("dask on lithops executor")

    def compute(self, collection: Any) -> Outcome:
        from benchmarks.lithops_anchor import run_lithops_anchor

        seconds, invocations = run_lithops_anchor(collection)
        return Outcome(None, seconds, {"invocations": int(invocations)}, checkable=False)


class DaskexecRunner(Runner):
    """``daskexec.ExecutorScheduler`` on one executor of a named backend, reused."""

    kind = "daskexec"

    def __init__(self, backend: str) -> None:
        super().__init__(f"daskexec {backend}")
        self.backend = backend
        self.executor: concurrent.futures.Executor | None = None
        self.scheduler: daskexec.ExecutorScheduler | None = None

    def start(self) -> None:
        self.executor = daskexec.create_executor(self.backend)
        self.scheduler = daskexec.ExecutorScheduler(self.executor)
        self.note = f"engine: {daskexec.describe(self.executor).name}"

    def compute(self, collection: Any) -> Outcome:
        assert self.scheduler is not None
        result = collection.compute(scheduler=self.scheduler)
        s = self.scheduler.last_stats
        counters = None
        if s is not None:
            counters = {
                "tasks": s.tasks,
                "remote_tasks": s.remote_tasks,
                "local_tasks": s.local_tasks,
                "map_calls": s.map_calls,
                "work_items": s.work_items,
                "invocations": s.invocations,
                "retries": s.retries,
            }
        return Outcome(result, None, counters)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True)
            self.executor = self.scheduler = None


@dataclass
class Engine:
    """A shared engine a group starts before its runners (the Ray instance)."""

    label: str
    start: Any
    stop: Any


def _ray_engine() -> Engine:
    import ray

    started = False

    def start() -> None:
        nonlocal started
        if not ray.is_initialized():
            ray.init(
                num_cpus=CPUS,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
            started = True

    def stop() -> None:
        if started:
            ray.shutdown()

    return Engine("ray.init (local instance shared by the group)", start, stop)


@dataclass
class Group:
    """Runners measured together; ratios are taken against ``reference``."""

    name: str
    scale: str
    runners: list[Runner]
    reference: str
    engines: list[Engine] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _anchors(group: str) -> tuple[list[Runner], str, list[Engine], list[str]]:
    skipped: list[str] = []
    if group == "threads":
        return (
            [
                DaskScheduler("sync"),
                DaskScheduler("threads"),
                DaskOnExecutor(
                    "dask on ThreadPoolExecutor",
                    lambda: concurrent.futures.ThreadPoolExecutor(CPUS),
                ),
                *([LocalClusterRunner()] if _installed("distributed") else []),
            ],
            "dask threads",
            [],
            skipped if _installed("distributed") else ["distributed not installed"],
        )
    if group == "ray":
        return [RayDaskGet()], "ray_dask_get", [_ray_engine()], skipped
    if group == "lithops":
        if _installed("benchmarks.lithops_anchor"):
            return [LithopsAnchor()], "dask on lithops executor", [], skipped
        return [], "", [], ["lithops anchor: benchmarks/lithops_anchor.py not present"]
    # processes, and any third-party backend: assume it competes with process pools
    anchors: list[Runner] = [
        DaskScheduler("processes", note="new process pool in every compute"),
        DaskOnExecutor(
            "dask on ProcessPoolExecutor",
            lambda: concurrent.futures.ProcessPoolExecutor(CPUS),
        ),
    ]
    if _installed("loky"):
        import loky

        # loky's own pool class, not its reusable executor: daskexec-loky uses
        # that one, and two users with different options would replace it under
        # each other.
        anchors.append(
            DaskOnExecutor("dask on loky", lambda: loky.ProcessPoolExecutor(max_workers=CPUS))
        )
    else:
        skipped.append("loky not installed")
    return anchors, "dask on ProcessPoolExecutor", [], skipped


def make_groups(backends: list[str], quick: bool) -> list[Group]:
    """The groups that ``backends`` need, in a stable order."""
    order = ["threads", "processes", "ray", "lithops"]
    names: dict[str, list[str]] = {}
    for b in backends:
        names.setdefault(GROUP_OF.get(b, b), []).append(b)
    groups = []
    for name in sorted(names, key=lambda g: (order.index(g) if g in order else len(order), g)):
        anchors, reference, engines, skipped = _anchors(name)
        scale = "small" if name in SLOW_GROUPS else ("quick" if quick else "full")
        runners: list[Runner] = [DaskexecRunner(b) for b in names[name]]
        groups.append(Group(name, scale, [*runners, *anchors], reference, engines, skipped))
    return groups


def trivial(runner: Runner) -> float:
    """Seconds of a one-task compute: what it costs to get the first task back."""
    from dask import delayed

    from benchmarks.workloads import inc

    start = time.perf_counter()
    runner.compute(delayed(inc)(1))
    return time.perf_counter() - start
