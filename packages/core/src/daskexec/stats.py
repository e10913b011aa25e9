"""What one compute did: counters for tests (batching, packing) and for tuning."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from daskexec._timeline import ItemRecord

__all__ = ["ComputeStats", "collect_stats"]


@dataclass
class ComputeStats:
    """Counters of one compute.

    Attributes
    ----------
    tasks
        Nodes in the graph that were run (remote plus local).
    remote_tasks
        Tasks run on the executor.
    local_tasks
        Bookkeeping nodes (aliases, literal data, containers) run in the driver.
    loaded
        Tasks not run because their results were loaded from the checkpoint
        (``checkpoint=``).  A load is a small task on the executor, so that
        the value is read where its consumer runs: loads count in
        ``remote_tasks`` too.
    map_calls
        Batches sent: calls of the engine's ``submit_many``, or rounds of
        ``submit`` for an executor without one.
    work_items
        Work items sent, first attempts only; each holds one or more tasks.
    invocations
        Executor invocations, retries included: what an engine that charges
        per call (a cloud function) bills.
    retries
        Work items sent again after an engine failure (or a task exception
        the caller asked to retry).
    engine_failures
        Work items the engine lost (a dead worker, a timeout), or that ran
        past their ``item_timeout``.
    timeouts
        Work items that ran past their ``item_timeout`` (given up on; sent
        again within the retry bound).
    backups
        Backup copies sent for stragglers (each is an invocation too).
    backups_won
        Backup copies whose result came first (the original was given up on).
    largest_batch
        The most tasks sent in one map call (chains and reductions that
        joined an item included).
    max_inflight
        The most work items in flight at once.
    peak_values
        The most task results the driver held at once: results stay only
        until their last consumer has run.
    fetched
        Values fetched from a result store or reference engine into the driver.
    bytes_sent
        Bytes the driver sent to the engine: work items (tasks, functions,
        inputs held in the driver), first attempts.
    bytes_received
        Bytes that came back to the driver: items' outcomes (results, unless
        they stay in a store) and the outputs fetched from a store.
    store_peak_bytes
        The most bytes held in the compute's result store at once (engines
        with a result store only).
    seconds
        Wall time of the compute, graph preparation included.
    engine
        The engine's name.
    started
        When the compute began (``time.time()`` in the driver).
    breakdown
        Where the wall time went, in seconds per part of
        :data:`daskexec.diagnostics.PARTS` (``tasks``, ``serialization``,
        ``transfer``, ``engine latency``, ``scheduling``): at each moment the
        time counts for the first of those that was happening anywhere, so
        the parts add up to ``seconds``.  Loading an item on a fresh worker
        (mostly imports) counts as engine latency: it is a cold start.
    worker_seconds
        Seconds workers were busy with this compute's items (entry to last
        task, retries included): what an engine billed by the second charges.
    gb_seconds, cost, price
        On an engine that declares its billing (``EngineInfo.billing``): the
        GB-seconds billed (each invocation rounded up as the provider does),
        their list price in US dollars, and which price that is; otherwise
        0, ``None`` and "".
    items
        One :class:`~daskexec.diagnostics.ItemRecord` per attempt at a work
        item, in the order they were sent, on the driver's clock.
    """

    tasks: int = 0
    remote_tasks: int = 0
    local_tasks: int = 0
    loaded: int = 0
    map_calls: int = 0
    work_items: int = 0
    invocations: int = 0
    retries: int = 0
    engine_failures: int = 0
    timeouts: int = 0
    backups: int = 0
    backups_won: int = 0
    largest_batch: int = 0
    max_inflight: int = 0
    peak_values: int = 0
    fetched: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    store_peak_bytes: int = 0
    seconds: float = 0.0
    engine: str = ""
    started: float = 0.0
    breakdown: dict[str, float] = field(default_factory=dict)
    worker_seconds: float = 0.0
    gb_seconds: float = 0.0
    cost: float | None = None
    price: str = ""
    items: list[ItemRecord] = field(default_factory=list, repr=False)
    #: (part, begin, end): the driver serializing work or decoding results
    driver_spans: list[tuple[str, float, float]] = field(default_factory=list, repr=False)

    @property
    def tasks_per_item(self) -> float:
        """Mean number of tasks a work item carried."""
        return self.remote_tasks / self.work_items if self.work_items else 0.0

    def summary(self) -> str:
        """One line for logs and examples."""
        return (
            f"{self.tasks} tasks ({self.remote_tasks} remote, {self.local_tasks} local"
            + (f", {self.loaded} loaded from the checkpoint" if self.loaded else "")
            + ") "
            f"in {self.work_items} work items over {self.map_calls} map calls, "
            f"{self.invocations} invocations, {self.retries} retries, "
            + (f"{self.backups} backups ({self.backups_won} won), " if self.backups else "")
            + (f"{self.timeouts} timed out, " if self.timeouts else "")
            + f"{_size(self.bytes_sent)} out and {_size(self.bytes_received)} back, "
            f"{self.seconds:.3f}s on {self.engine}"
            + (f" ({self.breakdown_summary()})" if self.breakdown else "")
            + (
                f"; {self.gb_seconds:.1f} GB-s, ${self.cost:.6f} at {self.price}"
                if self.cost is not None
                else ""
            )
        )

    def breakdown_summary(self) -> str:
        """The breakdown as percentages of the wall time, largest first."""
        total = sum(self.breakdown.values()) or 1.0
        parts = sorted(self.breakdown.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{name} {100 * v / total:.0f}%" for name, v in parts if v > 0)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GiB"


@dataclass
class _Collector:
    stats: list[ComputeStats] = field(default_factory=list)


_active = threading.local()


@contextlib.contextmanager
def collect_stats() -> Iterator[list[ComputeStats]]:
    """Collect the :class:`ComputeStats` of every compute run in this thread.

    >>> with collect_stats() as runs:            # doctest: +SKIP
    ...     y.compute(scheduler=executor_scheduler)
    >>> runs[-1].work_items                      # doctest: +SKIP
    """
    collectors: list[_Collector] = getattr(_active, "collectors", [])
    _active.collectors = collectors
    c = _Collector()
    collectors.append(c)
    try:
        yield c.stats
    finally:
        collectors.remove(c)


class Watcher(Protocol):
    """Told when a compute of this thread starts and ends (a live progress display)."""

    def compute_started(self, stats: ComputeStats, progress: Callable[[], Progress]) -> None: ...

    def compute_finished(self, stats: ComputeStats, failed: bool) -> None: ...


@dataclass(frozen=True)
class Progress:
    """Where a running compute is: tasks done of all, work items in flight."""

    done: int
    total: int
    inflight: int


@contextlib.contextmanager
def watching(watcher: Watcher) -> Iterator[None]:
    """Tell ``watcher`` about every compute run in this thread inside the block."""
    watchers: list[Watcher] = getattr(_active, "watchers", [])
    _active.watchers = watchers
    watchers.append(watcher)
    try:
        yield
    finally:
        watchers.remove(watcher)


def _watchers() -> list[Watcher]:
    return list(getattr(_active, "watchers", ()))


def _record(stats: ComputeStats) -> None:
    for c in getattr(_active, "collectors", ()):
        c.stats.append(stats)
