"""The public scheduler: a Dask get function over any ``concurrent.futures.Executor``.

Three ways to use it, all the same machinery::

    s = ExecutorScheduler(executor)
    x.compute(scheduler=s)
    with dask.config.set(scheduler=s): ...
    y.compute(scheduler=executor_scheduler, executor=ex, batch_size=10)   # the seed's form

The executor is described once per compute (``daskexec.describe``), and the
batch size, pack size, wait and in-flight limit not given follow from that
description, so that a thread pool, a process pool and a serverless engine
each get sensible defaults without tuning.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import math
import os
import time
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from dask.callbacks import local_callbacks, unpack_callbacks

from daskexec import _checkpoint, _graph, _packing, _timeline, _worker
from daskexec._checkpoint import Checkpoint, CheckpointStorage, as_checkpoint
from daskexec._inline import InlineExecutor
from daskexec._run import Run, Settings
from daskexec._stragglers import check_backups, check_item_timeout
from daskexec.backends import check_backend, create_executor
from daskexec.cost import Billing, bill
from daskexec.engine import CleansUpPerCompute, EngineInfo, describe, is_shut_down
from daskexec.stats import ComputeStats, _record, _watchers

__all__ = ["ExecutorScheduler", "executor_scheduler"]

ExecutorLike = concurrent.futures.Executor | str | None
CheckpointLike = Checkpoint | CheckpointStorage | str | os.PathLike[str] | None


#: Our own keywords, which a get call may override.
OPTIONS = (
    "batch_size",
    "timeout",
    "pack_size",
    "max_inflight",
    "retries",
    "item_timeout",
    "backups",
    "checkpoint",
)

#: Keywords that Dask, and libraries on top of it, pass to every get function
#: (``dask.compute``, ``da.store(..., flush=True)`` from xarray's ``to_zarr``,
#: ``num_workers=`` meant for Dask's local schedulers): accepted and unused.
PASSED_THROUGH = frozenset(
    {
        "num_workers",
        "pool",
        "cache",
        "chunksize",
        "optimize_graph",
        "rerun_exceptions_locally",
        "get_id",
        "pack_exception",
        "raise_exception",
        "dumps",
        "loads",
        "flush",
        "traverse",
        "lock",
        "regions",
        "return_stored",
        "compute",
        "dependencies",
        "func_dumps",
        "func_loads",
        "return_futures",
        "resources",
        "workers",
        "allow_other_workers",
        "retries_on_failure",
    }
)


def _check_keywords(kwargs: Mapping[str, Any]) -> None:
    """Refuse near-misses of our own options; let other libraries' keywords through."""
    for name in kwargs:
        if name in PASSED_THROUGH:
            continue
        close = difflib.get_close_matches(name, (*OPTIONS, "executor", "retry_on"), n=1)
        if close:
            raise TypeError(
                f"daskexec: unknown keyword {name!r} for the scheduler; did you mean {close[0]!r}?"
            )
        warnings.warn(
            f"daskexec: keyword {name!r} is not an option of the daskexec scheduler and is "
            f"ignored; its options are {', '.join(OPTIONS)}",
            UserWarning,
            stacklevel=4,
        )


def _check_retry_on(retry_on: object) -> tuple[type[BaseException], ...]:
    """``retry_on`` as a tuple of exception classes (a single class is accepted)."""
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    if not isinstance(retry_on, (tuple, list)) or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in retry_on
    ):
        raise TypeError(
            "daskexec: retry_on must be an exception class or a tuple of exception classes, "
            f"got {retry_on!r}"
        )
    return tuple(retry_on)


def _check_executor(executor: object) -> None:
    if executor is None:
        return
    if isinstance(executor, str):
        check_backend(executor)
        return
    if not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(
            "daskexec: executor must be a concurrent.futures.Executor (or a backend name "
            f"such as 'threads'), got {type(executor).__name__}: {executor!r}"
        )
    if is_shut_down(executor):
        raise RuntimeError(
            f"daskexec: the {type(executor).__name__} passed as executor has been shut down; "
            "pass an executor that is still running"
        )


def _check_options(
    batch_size: int | None,
    timeout: float | None,
    pack_size: int | None,
    max_inflight: int | None,
    retries: int,
    item_timeout: float | None = None,
    backups: bool | None = None,
) -> None:
    check_item_timeout(item_timeout)
    check_backups(backups)
    for name, value in (
        ("batch_size", batch_size),
        ("pack_size", pack_size),
        ("max_inflight", max_inflight),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"daskexec: {name} must be an integer >= 1 or None, got {value!r}")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout < 0
    ):
        raise ValueError(
            f"daskexec: timeout must be a number of seconds >= 0 or None, got {timeout!r}"
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"daskexec: retries must be an integer >= 0, got {retries!r}")


class ExecutorScheduler:
    """A Dask scheduler that runs graphs on a ``concurrent.futures.Executor``.

    Parameters
    ----------
    executor
        The executor to run tasks on; a backend name (``"threads"``,
        ``"processes"``, ``"loky"``, ``"ray"``, ``"lithops"``: see
        :func:`daskexec.available_backends`); or ``None`` for a
        ``ThreadPoolExecutor`` with one thread per CPU.  An executor passed in
        is never shut down by the scheduler; one it makes (from ``None`` or a
        name) is shut down at the end of every compute, also on error and on
        ``KeyboardInterrupt``.
    batch_size
        The most tasks sent in one batch (one ``submit_many`` call).  Default: no limit
        beyond the in-flight limit.
    timeout
        Seconds a partial batch may wait for more ready tasks of its kind
        while other work is in flight.  Default: 0 for cheap engines, a
        fraction of the call overhead for expensive ones.
    pack_size
        Tasks per work item (before chains and reductions fed only by the
        item join it).  Default: chosen per batch from the engine's call
        overhead and measured task times.
    max_inflight
        The most work items submitted and unfinished at once.  Default: the
        engine's ``max_inflight``, else one per worker for a cheap engine
        (threads, processes) and two per worker for an expensive one.
    retries
        How often a work item the engine lost (dead worker, timeout, lost
        node) is sent again before :class:`~daskexec.errors.EngineFailure`.
    retry_on
        Task exception types that are retried like engine failures (none by
        default: a task's own error fails the compute at once).
    checkpoint
        Where task results are kept across computes (a local directory, or a
        :class:`~daskexec.Checkpoint`): each task's result is written there
        as it completes, and a later compute of the same keys loads them
        instead of running their producers.  Checked at once: a location
        that cannot be created or written raises
        :class:`~daskexec.CheckpointError`.  ``compute(checkpoint=False)``
        turns it off for one compute.
    item_timeout
        Seconds a work item may run before it counts as lost: it is
        cancelled where the engine can, its late result is ignored, and it
        is sent again within ``retries``, then
        :class:`~daskexec.errors.ItemTimeoutError` names its tasks.  Counted
        from when a worker was free for it (the driver's model of the
        engine's ``workers``, the same on every backend), not from when it
        was queued.  Per layer: ``dask.annotate(item_timeout=...)`` (the
        smallest among an item's tasks applies).  Default: no deadline.
    backups
        Backup copies of stragglers: a work item running more than 3 times
        its group's median (once the group has 10 tasks and half of them
        are done) is sent again, and the first copy to finish wins.
        ``None`` (default): only for tasks safe to run twice (array, bag and
        dataframe chunks, ``delayed(pure=True)``; never a task that writes,
        such as ``store``/``to_zarr`` or ``to_parquet``); ``True``: for any
        task (you vouch that running it twice is harmless); ``False``:
        never.  Per layer: ``dask.annotate(backups=True|False)`` overrides.

    Attributes
    ----------
    last_stats
        :class:`~daskexec.stats.ComputeStats` of the latest compute, or None.
    """

    def __init__(
        self,
        executor: ExecutorLike = None,
        *,
        batch_size: int | None = None,
        timeout: float | None = None,
        pack_size: int | None = None,
        max_inflight: int | None = None,
        retries: int = 2,
        retry_on: tuple[type[BaseException], ...] = (),
        checkpoint: CheckpointLike = None,
        item_timeout: float | None = None,
        backups: bool | None = None,
    ) -> None:
        _check_executor(executor)
        _check_options(batch_size, timeout, pack_size, max_inflight, retries, item_timeout, backups)
        self.executor = executor
        self.batch_size = batch_size
        self.timeout = timeout
        self.pack_size = pack_size
        self.max_inflight = max_inflight
        self.retries = retries
        self.retry_on = _check_retry_on(retry_on)
        self.checkpoint = as_checkpoint(checkpoint)
        self.item_timeout = item_timeout
        self.backups = backups
        self.last_stats: ComputeStats | None = None

    def __repr__(self) -> str:
        return f"ExecutorScheduler({self.executor!r})"

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        """Compute ``keys`` of graph ``dsk``: the Dask get-function protocol."""
        return self.get(dsk, keys, **kwargs)

    def get(
        self,
        dsk: Any,
        keys: Any,
        *,
        callbacks: Any = None,
        executor: ExecutorLike = None,
        batch_size: int | None = None,
        timeout: float | None = None,
        pack_size: int | None = None,
        max_inflight: int | None = None,
        retries: int | None = None,
        checkpoint: CheckpointLike | bool = None,
        item_timeout: float | None = None,
        backups: bool | None = None,
        **kwargs: Any,
    ) -> Any:
        """Compute ``keys`` of ``dsk``; keyword arguments override this scheduler's settings."""
        start = time.perf_counter()
        _check_keywords(kwargs)
        ex_arg = self.executor if executor is None else executor
        _check_executor(ex_arg)
        batch_size = self.batch_size if batch_size is None else batch_size
        timeout = self.timeout if timeout is None else timeout
        pack_size = self.pack_size if pack_size is None else pack_size
        max_inflight = self.max_inflight if max_inflight is None else max_inflight
        retries = self.retries if retries is None else retries
        item_timeout = self.item_timeout if item_timeout is None else item_timeout
        backups = self.backups if backups is None else backups
        _check_options(batch_size, timeout, pack_size, max_inflight, retries, item_timeout, backups)
        ckpt = _chosen_checkpoint(self.checkpoint, checkpoint)

        graph = _graph.prepare(dsk, keys)
        plan = _checkpoint.plan(graph, ckpt) if ckpt is not None else None
        if plan is not None:
            graph = plan.graph
        owned = not isinstance(ex_arg, concurrent.futures.Executor)
        if not owned and _worker.running_in(ex_arg):
            # a compute started by a task running on this very executor
            ex_arg, owned = InlineExecutor(), False
        ex = _make_executor(ex_arg)
        stats = ComputeStats()
        info: EngineInfo | None = None
        watchers = _watchers()
        run: Run | None = None
        failed = True
        try:
            info = describe(ex)
            stats.engine = info.name
            settings = Settings(
                batch_size=batch_size,
                timeout=_default_timeout(info) if timeout is None else float(timeout),
                pack_size=pack_size,
                max_inflight=max_inflight or info.max_inflight or _default_inflight(info),
                retries=retries,
                retry_on=self.retry_on,
                item_timeout=None if item_timeout is None else float(item_timeout),
                backups=backups,
            )
            with local_callbacks(callbacks) as cbs:
                start_state_cbs = unpack_callbacks(cbs)[1]  # type: ignore[no-untyped-call]
                started: list[Any] = []
                errored = True
                run = Run(graph, ex, info, settings, _callback_tuples(cbs), stats)
                if plan is not None:
                    run.checkpoint = plan
                    stats.loaded = len(plan.loaded)
                for w in watchers:
                    w.compute_started(stats, run.progress)
                try:
                    for cb in cbs:
                        if cb[0]:
                            cb[0](graph.nodes)
                        started.append(cb)
                    for f in start_state_cbs:
                        f(graph.nodes, run.state)
                    values = run.execute()
                    errored = False
                finally:
                    for cb in started:
                        if cb[4]:
                            cb[4](graph.nodes, run.state, errored)
            failed = False
        except BaseException:
            if run is not None:
                run.abort()
            raise
        finally:
            if run is not None:
                run.close()
            if isinstance(ex, CleansUpPerCompute):
                ex.__daskexec_compute_done__()
            if owned:
                # copies given up on (stragglers, items past their deadline)
                # may still run: stop them rather than wait
                _release(ex, failed or (run is not None and run.overtime.left_running))
            if ckpt is not None and failed:
                ckpt.sweep()  # what workers killed mid-write left
            stats.tasks = stats.remote_tasks + stats.local_tasks
            stats.seconds = time.perf_counter() - start
            _account(stats, info.billing if info is not None else None)
            if run is not None:
                for w in watchers:
                    w.compute_finished(stats, failed)
            self.last_stats = stats
            _record(stats)
        return _nested(keys, values)


def _chosen_checkpoint(mine: Checkpoint | None, given: CheckpointLike | bool) -> Checkpoint | None:
    """The checkpoint of one compute: the scheduler's, unless the call names one or ``False``."""
    if given is None or given is True:
        return mine
    if given is False:
        return None
    return as_checkpoint(given)


def _release(ex: concurrent.futures.Executor, failed: bool) -> None:
    """Shut down an executor the scheduler made; after a failure, without waiting.

    A failed or interrupted compute returns at once: queued work is
    cancelled, process workers are killed when the executor can do that
    (``terminate_workers()``, as Python 3.14's process pool), and running
    in-process tasks finish in the background.
    """
    if not failed:
        ex.shutdown(wait=True, cancel_futures=True)
        return
    ex.shutdown(wait=False, cancel_futures=True)
    terminate = getattr(ex, "terminate_workers", None)
    if callable(terminate):
        terminate()


def _callback_tuples(cbs: Sequence[Any]) -> list[tuple[Any, ...]]:
    return [tuple(cb) for cb in cbs]


def _default_inflight(info: EngineInfo) -> int:
    # A cheap engine gets one work item per worker, as Dask's local scheduler
    # runs one task per worker: more would make data before it can be used.
    # An expensive one gets a second round queued behind the first.
    if info.call_overhead < _packing.CHEAP_CALL:
        return info.workers
    return 2 * info.workers


def _default_timeout(info: EngineInfo) -> float:
    if info.call_overhead < 0.01:
        return 0.0
    return min(0.1, info.call_overhead / 5)


def _make_executor(executor: ExecutorLike) -> concurrent.futures.Executor:
    if executor is None:
        return concurrent.futures.ThreadPoolExecutor(
            max_workers=os.cpu_count() or 1, thread_name_prefix="daskexec"
        )
    if isinstance(executor, str):
        return create_executor(executor)
    return executor


def _account(stats: ComputeStats, billing: Billing | None) -> None:
    """Align the workers' clocks, split the wall time (see ``_timeline``), price it."""
    end = time.time()
    stats.started = end - stats.seconds
    _timeline.align_clocks(stats.items)
    stats.breakdown = _timeline.breakdown(stats.items, stats.driver_spans, stats.started, end)
    stats.worker_seconds = sum(r.worker_seconds for r in stats.items)
    if billing is not None:
        durations = (r.worker_seconds for r in stats.items if not r.lost)
        stats.gb_seconds, stats.cost = bill(billing, durations)
        stats.price = billing.price.name


def _nested(keys: Any, values: Mapping[Hashable, Any]) -> Any:
    if isinstance(keys, list):
        return tuple(_nested(k, values) for k in keys)
    return values[keys]


def executor_scheduler(
    dsk: Any,
    keys: Any,
    executor: ExecutorLike = None,
    batch_size: int | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> Any:
    """The seed's get function, ``y.compute(scheduler=executor_scheduler, executor=ex)``.

    Accepts every keyword of :class:`ExecutorScheduler`; see there.
    """
    options = {
        k: kwargs.pop(k)
        for k in ("pack_size", "max_inflight", "retries", "item_timeout", "backups")
        if k in kwargs
    }
    retry_on = kwargs.pop("retry_on", ())
    scheduler = ExecutorScheduler(
        executor, batch_size=batch_size, timeout=timeout, retry_on=retry_on, **options
    )
    return scheduler.get(dsk, keys, **kwargs)
