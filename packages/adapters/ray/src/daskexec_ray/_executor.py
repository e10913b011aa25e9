"""Ray as a ``concurrent.futures.Executor``, and as an engine whose results stay remote.

Design note
-----------
Connection
    ``RayExecutor`` uses whatever Ray this process is connected to.  When
    Ray is not initialised it calls ``ray.init`` itself: with ``address``
    (``"auto"``, ``"ray://host:port"``, ``"host:port"``), else with the
    ``RAY_ADDRESS`` environment variable (how Ray jobs find their cluster),
    else it starts a new local instance (``address="local"``: all cores, no
    dashboard, warnings only).  It never attaches silently to a stale
    cluster that another process left running.  ``shutdown()`` calls
    ``ray.shutdown()`` only if this executor called ``ray.init``: that stops
    a local instance it started and merely disconnects from a cluster it
    joined, which keeps running.

Tasks and futures
    Every call becomes one Ray task of a module-level trampoline
    (``_call(fn, args, kwargs)``); arguments travel as one tuple, so an
    ``ObjectRef`` inside them arrives as a reference, as in any executor.
    ``fn`` is pickled with cloudpickle (so ``register_pickle_by_value``
    applies), once per batch (``map``, ``submit_many``), and put in the
    object store when large.  Each task's first ``ObjectRef`` is bridged to a
    ``concurrent.futures.Future`` through ``ObjectRef.future()``.  Ray runs
    those completion callbacks on its own I/O thread, where a blocking
    ``ray.get`` deadlocks, so the bridge only enqueues, and one dispatcher
    thread per executor settles the futures and runs their callbacks.

Errors
    A task's exception comes back as its original type and message, with
    the remote traceback as its ``__cause__`` (as ``ProcessPoolExecutor``
    does).  Failures of the engine (``WorkerCrashedError``,
    ``NodeDiedError``, ``ObjectLostError``, ...) fail the future with a
    ``RayEngineError`` (a ``BrokenExecutor``, Ray's error as its cause) as
    soon as Ray reports them, once Ray's own ``max_retries`` are used up.
    Ray itself re-runs a task lost to a dead worker or node (up to
    ``max_retries``, default 3, as Ray's default) and rebuilds lost outputs
    from their lineage, which only Ray can do; so the scheduler's own
    retries see a loss only once Ray gives up.  ``Future.cancel()`` marks
    the future cancelled and force-cancels the Ray task, queued or running
    (``ray.cancel(ref, force=True)``, which ends a running task's worker
    process; Ray starts a new one on demand).

References
    ``RayExecutor.__daskexec_engine__().references`` implements
    :class:`daskexec.engine.ReferenceEngine`: a work item runs as one task
    with ``num_returns = n_outputs + 1``; its status comes to the driver,
    its outputs stay in the object store on the node that computed them and
    go as task arguments straight to the tasks that consume them.  With
    ``max_retries > 0`` Ray rebuilds a lost output from its lineage.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import cloudpickle
import ray

from daskexec.engine import EngineInfo
from daskexec.errors import RemoteTraceback

__all__ = ["RayEngineError", "RayExecutor"]

#: Options of ``ray.remote(...).options()`` that Dask annotations may set per
#: work item.  Other annotation keys (``priority``, ``retries``, ...) belong
#: to the scheduler or to other engines and are ignored here.
TASK_OPTIONS = frozenset(
    {
        "accelerator_type",
        "label_selector",
        "max_retries",
        "memory",
        "name",
        "num_cpus",
        "num_gpus",
        "placement_group",
        "placement_group_bundle_index",
        "placement_group_capture_child_tasks",
        "resources",
        "retry_exceptions",
        "runtime_env",
        "scheduling_strategy",
    }
)

# A function whose pickle is larger than this goes to the object store once
# per batch instead of inline with every task.
_PUT_FUNCTION_ABOVE = 64 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _call(fn: bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return cloudpickle.loads(fn)(*args, **kwargs)


def _run_item(fn: bytes, n_outputs: int, payload: Any, *inputs: Any) -> Any:
    status, outputs = cloudpickle.loads(fn)(payload, *inputs)
    outputs = tuple(outputs)
    if len(outputs) != n_outputs:
        raise ValueError(f"work item returned {len(outputs)} outputs, expected {n_outputs}")
    return (status, *outputs) if n_outputs else status


_remote_call = ray.remote(_call)
_remote_item = ray.remote(_run_item)


class RayEngineError(concurrent.futures.BrokenExecutor):
    """Ray lost a task: its worker process or node died, or its result was lost.

    Raised by a future (and by the reference engine's ``fetch``) once Ray has
    used up the task's ``max_retries``; ``__cause__`` is Ray's own exception
    (``WorkerCrashedError``, ``NodeDiedError``, ``ObjectLostError``, ...).
    A failure of the engine, not of the task: the executor keeps working,
    and running the task again may succeed.
    """


def _translate(exc: BaseException) -> BaseException:
    """What a Ray failure means for the caller.

    A task's own exception becomes that exception again (its original type
    and message) with the remote traceback as ``__cause__``; any other
    ``RayError`` is the engine's failure, a :class:`RayEngineError`.
    """
    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = exc.cause
        if isinstance(cause, ray.exceptions.RayError):
            exc = cause  # e.g. TaskCancelledError: not the task's own error
        elif isinstance(cause, Exception):
            text = _ANSI.sub("", str(exc))
            cause.__cause__ = RemoteTraceback(f'\n"""\n{text}\n"""')
            return cause
    if isinstance(exc, ray.exceptions.RayError):
        err = RayEngineError(
            f"Ray lost the task ({type(exc).__name__}: {_ANSI.sub('', str(exc)).strip()}); "
            "a worker process or node died (out of memory, os._exit, a killed node) "
            "after Ray's own retries (max_retries), or the task was cancelled"
        )
        err.__cause__ = exc
        return err
    return exc


class _RayFuture(Future[Any]):
    """A ``concurrent.futures.Future`` for one Ray task; ``cancel()`` cancels the task."""

    def __init__(self, ref: ray.ObjectRef[Any]) -> None:
        super().__init__()
        self.object_ref = ref

    def cancel(self) -> bool:
        if not super().cancel():
            return False
        self.set_running_or_notify_cancel()  # wake wait() and as_completed()
        # Ray already shut down, or the task already finished: nothing to stop
        with contextlib.suppress(Exception):
            ray.cancel(self.object_ref, force=True)
        return True

    def _settle_from(self, inner: Future[Any]) -> None:
        exc = inner.exception()
        if exc is not None:
            with contextlib.suppress(Exception):  # never lose a failure over its looks
                exc = _translate(exc)
        try:
            if exc is None:
                self.set_result(inner.result())
            else:
                self.set_exception(exc)
        except concurrent.futures.InvalidStateError:  # cancelled meanwhile
            pass


class RayExecutor(concurrent.futures.Executor):
    """Run calls as Ray tasks, on a local Ray instance or on a Ray cluster.

    Parameters
    ----------
    address
        Where the Ray cluster is: ``"auto"`` (a cluster already running on
        this machine, else ``ConnectionError``), ``"ray://host:10001"`` (Ray
        Client), ``"host:6379"``, or ``"local"`` (always a new local
        instance).  ``None``: use Ray if this process already initialised it,
        else the ``RAY_ADDRESS`` environment variable, else start a new local
        instance with the machine's cores, no dashboard and quiet logs.
    num_cpus, num_gpus, memory, resources, max_retries, runtime_env
        Default options of every task, passed to ``ray.remote(...).options()``
        (``num_cpus=None`` means Ray's default of 1 CPU per task).
        ``max_retries`` is how often Ray re-runs a task whose worker or node
        died (task exceptions are not retried); ``-1`` retries forever.
        Per-work-item options from ``dask.annotate(...)`` override these.
    ray_init_kwargs
        Extra keyword arguments for ``ray.init`` when this executor
        initialises Ray (for a local instance, e.g. ``{"num_cpus": 2}``).
        An error if Ray is already initialised in this process.

    Notes
    -----
    ``shutdown()`` stops a Ray instance only if this executor started it; a
    cluster it connected to, or a Ray the caller initialised, keeps running.
    The Ray workers import the functions they run by module name: on a
    cluster they need ``daskexec-core`` and ``daskexec-ray`` installed (or
    shipped with ``runtime_env={"py_modules": [...]}``).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: float | None = None,
        num_gpus: float | None = None,
        memory: float | None = None,
        resources: Mapping[str, float] | None = None,
        max_retries: int = 3,
        runtime_env: Mapping[str, Any] | None = None,
        ray_init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a str or None, got {type(address).__name__}")
        options: dict[str, Any] = {
            "num_cpus": num_cpus,
            "num_gpus": num_gpus,
            "memory": memory,
            "resources": dict(resources) if resources is not None else None,
            "max_retries": max_retries,
            "runtime_env": dict(runtime_env) if runtime_env is not None else None,
        }
        self._options = {k: v for k, v in options.items() if v is not None}
        self._call = _remote_call.options(**self._options)  # validates the options
        self._lock = threading.Lock()
        self._pending: set[_RayFuture] = set()
        self._shut = False
        self._settle_queue: queue.SimpleQueue[tuple[_RayFuture, Future[Any]] | None]
        self._settle_queue = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._owns_ray = _connect(address, dict(ray_init_kwargs or {}))
        self._references = _RayReferences(self)

    # -- concurrent.futures.Executor ----------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` as one Ray task; return its future.

        Raises
        ------
        RuntimeError
            If the executor has been shut down.
        """
        self._check_open()
        return self._track(self._call.remote(_shippable(fn), args, kwargs))

    def submit_many(self, fn: Callable[..., Any], payloads: Iterable[Any]) -> list[Future[Any]]:
        """Run ``fn(payload)`` for every payload, all submitted at once; futures in order.

        ``fn`` is serialized once for the whole batch.
        """
        return self._submit_batch(fn, [(p,) for p in payloads])

    def map(
        self,
        fn: Callable[..., Any],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[Any]:
        """Like ``Executor.map``, but every call is submitted before the first result.

        ``chunksize`` is accepted and ignored: each call is one Ray task.
        Results come in order; ``TimeoutError`` if one is not ready
        ``timeout`` seconds after ``map`` was called.  Closing the iterator
        early cancels the calls not yet consumed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        futures = self._submit_batch(fn, list(zip(*iterables, strict=False)))

        def results() -> Iterator[Any]:
            futures.reverse()
            try:
                while futures:
                    left = None if deadline is None else deadline - time.monotonic()
                    yield futures[-1].result(left)
                    futures.pop()
            finally:
                for f in futures:
                    f.cancel()

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; stop Ray if (and only if) this executor started it.

        Safe to call several times.  ``cancel_futures=True`` cancels every
        unfinished task; ``wait=True`` waits for the others to finish.  When
        this executor initialised Ray, calls still unfinished once ``wait``
        is done are cancelled, since disconnecting from Ray would orphan
        them.
        """
        with self._lock:
            first = not self._shut
            self._shut = True
            pending = list(self._pending)
        if cancel_futures or (self._owns_ray and not wait):
            for f in pending:
                f.cancel()
        if wait:
            concurrent.futures.wait(pending)
        self._stop_dispatcher_if_idle()
        if first and self._owns_ray:
            ray.shutdown()

    # -- daskexec -------------------------------------------------------------

    def __daskexec_engine__(self) -> EngineInfo:
        """Describe the cluster this executor runs on, as seen right now."""
        self._check_open()
        cpus = float(ray.cluster_resources().get("CPU", 1.0))  # type: ignore[no-untyped-call]
        per_task = float(self._options.get("num_cpus", 1.0))
        workers = int(cpus // per_task) if per_task > 0 else int(cpus)
        client = ray.util.client.ray.is_connected()  # type: ignore[no-untyped-call]
        return EngineInfo(
            workers=max(1, workers),
            out_of_process=True,
            # measured on a local instance: ~0.7 ms per task in a batch, ~2 ms
            # for one round trip; Ray Client adds a gRPC hop per call
            call_overhead=5e-3 if client else 1e-3,
            capabilities=frozenset(
                {"separate-processes", "survives-worker-death", "cancel-running"}
                | ({"retries-internally"} if self._options.get("max_retries") else set())
            ),
            references=self._references,
            name="ray",
        )

    # -- internals --------------------------------------------------------------

    def _check_open(self) -> None:
        if self._shut:
            raise RuntimeError(
                "cannot schedule new futures after shutdown: this RayExecutor has been "
                "shut down; create a new one"
            )
        if not ray.is_initialized():
            raise RuntimeError(
                "Ray is no longer initialised in this process (ray.shutdown() was "
                "called elsewhere); create a new RayExecutor"
            )

    def _task_options(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        opts = dict(self._options)
        opts.update(overrides.get("ray_remote_args", {}))  # ray.util.dask's annotation
        opts.update({k: v for k, v in overrides.items() if k in TASK_OPTIONS})
        return opts

    def _submit_batch(
        self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]
    ) -> list[Future[Any]]:
        self._check_open()
        shipped = _shippable(fn)
        return [self._track(self._call.remote(shipped, args, {})) for args in calls]

    def _track(self, ref: ray.ObjectRef[Any]) -> _RayFuture:
        fut = _RayFuture(ref)
        with self._lock:
            self._pending.add(fut)
            if self._dispatcher is None:
                self._dispatcher = threading.Thread(
                    target=self._dispatch, name="daskexec-ray-futures", daemon=True
                )
                self._dispatcher.start()
        fut.add_done_callback(self._forget)
        ref.future().add_done_callback(lambda inner: self._settle_queue.put((fut, inner)))
        return fut

    def _dispatch(self) -> None:
        while True:
            item = self._settle_queue.get()
            if item is None:
                return
            item[0]._settle_from(item[1])
            # hold no settled future (nor its object reference) while idle
            del item

    def _forget(self, fut: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(fut)
        self._stop_dispatcher_if_idle()

    def _stop_dispatcher_if_idle(self) -> None:
        with self._lock:
            if not self._shut or self._pending or self._dispatcher is None:
                return
            dispatcher, self._dispatcher = self._dispatcher, None
        self._settle_queue.put(None)
        if dispatcher is not threading.current_thread():
            dispatcher.join()


class _RayReferences:
    """The :class:`daskexec.engine.ReferenceEngine` of a :class:`RayExecutor`."""

    def __init__(self, executor: RayExecutor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._last: tuple[Callable[..., Any], Any] | None = None

    def submit_item(
        self,
        fn: Callable[..., tuple[Any, Sequence[Any]]],
        payload: Any,
        inputs: Sequence[Any],
        n_outputs: int,
        options: Mapping[str, Any],
    ) -> tuple[Future[Any], list[Any]]:
        """Run ``fn(payload, *input_values)`` as one Ray task.

        Returns the future of the work item's status and ``n_outputs``
        ``ObjectRef`` of its outputs, which stay in the object store.
        ``options`` (from Dask annotations) override the executor's task
        options; keys that are not Ray task options are ignored, and a
        ``ray_remote_args`` mapping (as ``ray.util.dask`` reads it) is
        merged in.  The status future fails with a ``RayError`` when the
        engine fails (worker or node died, task cancelled).
        """
        ex = self._executor
        ex._check_open()
        remote = _remote_item.options(num_returns=n_outputs + 1, **ex._task_options(options))
        refs = remote.remote(self._shipped(fn), n_outputs, payload, *inputs)
        if n_outputs == 0:
            refs = [refs]
        return ex._track(refs[0]), list(refs[1:])

    def fetch(self, refs: Sequence[Any]) -> list[Any]:
        """Return the values behind ``refs``, in order (``ray.get``).

        Raises
        ------
        RayEngineError
            If Ray lost a value and could not rebuild it.
        """
        try:
            return list(ray.get(list(refs)))
        except ray.exceptions.RayError as exc:
            raise _translate(exc) from exc

    def put(self, value: Any) -> Any:
        """Store ``value`` in Ray's object store; return its ``ObjectRef``."""
        return ray.put(value)

    def release(self, refs: Sequence[Any]) -> None:
        """Nothing to do: Ray frees an object once no ``ObjectRef`` to it is left.

        This engine keeps no reference of its own to any output, so the
        scheduler's dropping its ``ObjectRef`` objects is the release.
        """

    def _shipped(self, fn: Callable[..., Any]) -> Any:
        with self._lock:
            if self._last is None or self._last[0] is not fn:
                self._last = (fn, _shippable(fn))
            return self._last[1]


def _shippable(fn: Callable[..., Any]) -> Any:
    """``fn`` pickled with cloudpickle: its bytes, or an ``ObjectRef`` to them when large.

    cloudpickle rather than Ray's vendored copy, so that modules a user
    registered with ``cloudpickle.register_pickle_by_value`` travel by value
    here as on every other backend.
    """
    data = cloudpickle.dumps(fn)
    return ray.put(data) if len(data) > _PUT_FUNCTION_ABOVE else data


def _connect(address: str | None, init_kwargs: dict[str, Any]) -> bool:
    """Make sure Ray is initialised; return whether this call initialised it."""
    if ray.is_initialized():
        if init_kwargs:
            raise ValueError(
                "Ray is already initialised in this process, so ray_init_kwargs "
                f"{sorted(init_kwargs)} cannot apply; pass them to your ray.init() "
                "call, or create the RayExecutor before initialising Ray"
            )
        return False
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
    if address == "local":
        kwargs["include_dashboard"] = False
    kwargs.update(init_kwargs)
    ray.init(address=address, **kwargs)
    return True
