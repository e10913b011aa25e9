"""How an executor describes itself to the scheduler.

The scheduler's defaults (how many tasks go out in one ``map`` call, how many
tasks share one work item, how many work items may be in flight) follow from
a few facts about the engine behind an executor: how many work items it runs
at once, whether payloads and results cross a process boundary, what one
invocation costs, and whether results stay in the engine as references.

An executor states these facts by defining ``__daskexec_engine__()``, which
returns an :class:`EngineInfo`.  Executors that do not (a plain
``ThreadPoolExecutor`` or ``ProcessPoolExecutor``, a third-party executor)
are described by :func:`describe`, which knows the stdlib pools and
otherwise assumes the safe case: out of process, one worker per CPU.

An executor may also define ``submit_many(fn, payloads) -> list[Future]``:
submit every payload as one engine-level job (one Lithops job, one Ray batch)
and return one ``concurrent.futures.Future`` per payload, in order.  The
scheduler then uses it for a batch (one job for the whole batch); without
it, the scheduler submits each work item of a batch with
``executor.submit``.  Either way it sees each work item finish as soon as
it does.

An executor may define ``__daskexec_shut_down__() -> bool``: whether it was
shut down (and takes no more work), so that the scheduler reports a shut-down
executor as that, at construction and when a submission fails.  The stdlib
pools are asked through :mod:`daskexec._compat`; other executors are assumed
to be running.

An executor may define ``__daskexec_compute_done__()``: the scheduler calls
it after every compute (returned, failed or interrupted), so that the engine
can release what that compute left behind (a Lithops executor deletes the
storage its finished jobs wrote) while the executor itself lives on.

Engines whose results can stay remote implement :class:`ReferenceEngine` and
return it as ``EngineInfo.references``: then a result consumed only by other
remote work never travels to the driver.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from daskexec._store import ResultStore, StoreClient
from daskexec.cost import Billing

__all__ = [
    "CAPABILITIES",
    "CleansUpPerCompute",
    "DescribesEngine",
    "EngineInfo",
    "ReferenceEngine",
    "ReportsShutDown",
    "ResultStore",
    "StoreClient",
    "SubmitsMany",
    "describe",
    "is_shut_down",
]

#: Capabilities an engine may declare, with what each one means.  Tests state
#: the capabilities they require; an unknown name is an error.
CAPABILITIES: dict[str, str] = {
    "shared-memory": "tasks run in the driver's process and see its globals",
    "separate-processes": "tasks run in processes other than the driver's",
    "survives-worker-death": (
        "after a worker process dies, the executor reports the loss as an "
        "engine failure and keeps accepting work (so a retry can succeed)"
    ),
    "cancel-running": "work items already running can be stopped on error",
    "results-stay-remote": (
        "results stay where they were computed (a result store, or the engine's own "
        "object store); the driver holds handles and fetches only the outputs"
    ),
    "result-store": "results stay in a daskexec ResultStore that the engine names",
    "retries-internally": (
        "the engine re-runs work lost with a worker on its own (Ray's task "
        "retries), so the scheduler may never see the failure"
    ),
}


@dataclass(frozen=True)
class EngineInfo:
    """Facts about an executor's engine that the scheduler plans with.

    Parameters
    ----------
    workers
        How many work items the engine runs at the same time.
    out_of_process
        Whether payloads and results cross a process boundary: the scheduler
        then serializes work with cloudpickle (lambdas and closures work) and
        checks that every task can be serialized before it is sent.
    call_overhead
        Seconds one invocation costs beyond the work it carries (a thread
        hand-off: microseconds; a process pool: about a millisecond; a
        serverless call: a second).  The scheduler packs more tasks into one
        work item the higher this is.
    max_inflight
        How many work items the scheduler may have submitted and unfinished
        at once; ``None`` lets the scheduler choose from ``workers``.
    capabilities
        Names from :data:`CAPABILITIES` that this engine provides.
    references
        An engine whose results stay remote (see :class:`ReferenceEngine`),
        or ``None`` when results come back to the driver as values.
    store
        Where results stay when the engine does not keep them itself: called
        once per compute with a token naming the compute, it returns that
        compute's :class:`~daskexec.ResultStore` (for example
        :class:`daskexec.SharedMemoryStore` for workers on this machine).
        ``None``: results come back to the driver as values.
    name
        A short label for reports and error messages.
    billing
        How the engine bills each invocation (a :class:`~daskexec.cost.Billing`:
        list price, memory, vCPUs), for engines billed by the second; the
        scheduler then reports each compute's GB-seconds and price.
    """

    workers: int
    out_of_process: bool
    call_overhead: float = 0.0
    max_inflight: int | None = None
    capabilities: frozenset[str] = field(default_factory=frozenset)
    references: ReferenceEngine | None = None
    store: Callable[[str], ResultStore] | None = None
    name: str = "executor"
    billing: Billing | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"EngineInfo.workers must be an int >= 1, got {self.workers!r}")
        if self.call_overhead < 0:
            raise ValueError(
                f"EngineInfo.call_overhead must be >= 0 seconds, got {self.call_overhead!r}"
            )
        if self.max_inflight is not None and self.max_inflight < 1:
            raise ValueError(
                f"EngineInfo.max_inflight must be >= 1 or None, got {self.max_inflight!r}"
            )
        unknown = set(self.capabilities) - set(CAPABILITIES)
        if unknown:
            raise ValueError(
                f"unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}"
            )
        caps = set(self.capabilities)
        if self.store is not None:
            caps |= {"result-store", "results-stay-remote"}
        if self.references is not None:
            caps.add("results-stay-remote")
        object.__setattr__(self, "capabilities", frozenset(caps))


@runtime_checkable
class ReferenceEngine(Protocol):
    """An engine that keeps results remote and hands the driver references.

    The scheduler runs a work item as ``fn(payload, *inputs)`` where each
    input is the value behind one reference in ``inputs`` (the engine
    resolves them where the work runs).  ``fn`` returns a pair
    ``(status, outputs)``: ``status`` is small and comes back to the driver;
    ``outputs`` is a sequence of exactly ``n_outputs`` values that stay in the
    engine, one reference each.
    """

    def submit_item(
        self,
        fn: Callable[..., tuple[Any, Sequence[Any]]],
        payload: Any,
        inputs: Sequence[Any],
        n_outputs: int,
        options: Mapping[str, Any],
    ) -> tuple[Future[Any], list[Any]]:
        """Start one work item; return a future of its status and its output references.

        ``options`` are engine-specific placement options taken from the
        tasks' Dask annotations (for Ray: ``num_cpus``, ``resources``, ...);
        it is empty when the tasks carry none.  Cancelling the returned future
        must stop the work item if it has not finished.
        """
        ...

    def fetch(self, refs: Sequence[Any]) -> list[Any]:
        """Return the values behind ``refs``, in order."""
        ...

    def put(self, value: Any) -> Any:
        """Store a driver-side value in the engine and return its reference."""
        ...

    def release(self, refs: Sequence[Any]) -> None:
        """Drop the scheduler's hold on ``refs`` so the engine can free them."""
        ...


@runtime_checkable
class DescribesEngine(Protocol):
    """An executor that states the facts the scheduler plans with."""

    def __daskexec_engine__(self) -> EngineInfo:
        """This executor's :class:`EngineInfo` (called once per compute)."""
        ...


@runtime_checkable
class SubmitsMany(Protocol):
    """An executor that submits a batch as one engine-level job."""

    def submit_many(self, fn: Callable[[Any], Any], payloads: Sequence[Any]) -> list[Future[Any]]:
        """Submit ``fn(payload)`` for every payload at once; one future each, in order.

        Each future completes as soon as its own call does (in any order),
        with the result or the exception of that call.
        """
        ...


@runtime_checkable
class ReportsShutDown(Protocol):
    """An executor that can say whether it was shut down."""

    def __daskexec_shut_down__(self) -> bool:
        """Whether ``shutdown`` was called: the executor takes no more work."""
        ...


@runtime_checkable
class CleansUpPerCompute(Protocol):
    """An executor that releases what one compute left behind, and lives on."""

    def __daskexec_compute_done__(self) -> None:
        """Called after every compute (returned, failed or interrupted)."""
        ...


def describe(executor: concurrent.futures.Executor) -> EngineInfo:
    """Return the :class:`EngineInfo` of ``executor``.

    An executor that defines ``__daskexec_engine__()`` describes itself.  The
    stdlib thread and process pools and Dask's synchronous executor are
    recognised; any other executor is assumed to run out of process with one
    worker per CPU, which is always safe, if not always fastest.
    """
    if isinstance(executor, DescribesEngine):
        info = executor.__daskexec_engine__()
        if not isinstance(info, EngineInfo):
            raise TypeError(
                f"{type(executor).__name__}.__daskexec_engine__() returned "
                f"{type(info).__name__}, expected daskexec.EngineInfo"
            )
        return info
    from dask.local import SynchronousExecutor

    from daskexec._compat import pool_workers
    from daskexec._store import SharedMemoryStore

    workers = pool_workers(executor) or os.cpu_count() or 1
    if isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        return EngineInfo(
            workers=workers,
            out_of_process=False,
            call_overhead=2e-5,
            capabilities=frozenset({"shared-memory"}),
            name="threads",
        )
    if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        return EngineInfo(
            workers=workers,
            out_of_process=True,
            call_overhead=1e-3,
            capabilities=frozenset({"separate-processes"}),
            store=SharedMemoryStore,
            name="process-pool",
        )
    if isinstance(executor, SynchronousExecutor):
        return EngineInfo(
            workers=1,
            out_of_process=False,
            capabilities=frozenset({"shared-memory"}),
            name="synchronous",
        )
    return EngineInfo(
        workers=workers, out_of_process=True, call_overhead=1e-3, name=type(executor).__name__
    )


def is_shut_down(executor: concurrent.futures.Executor) -> bool:
    """Whether ``executor`` says it was shut down (``False`` when it cannot say)."""
    return bool(shut_down_state(executor))


def shut_down_state(executor: concurrent.futures.Executor) -> bool | None:
    """Whether ``executor`` was shut down: ``None`` when it cannot say.

    An executor says so through ``__daskexec_shut_down__()``; the stdlib
    pools are asked through :mod:`daskexec._compat`.  Any other executor
    (distributed's ``ClientExecutor``, mpi4py's ``MPIPoolExecutor``) cannot
    say; its ``submit`` raising ``RuntimeError`` is then the only sign, as
    the ``concurrent.futures`` contract has it.
    """
    if isinstance(executor, ReportsShutDown):
        return bool(executor.__daskexec_shut_down__())
    from daskexec._compat import pool_shut_down

    return pool_shut_down(executor)
