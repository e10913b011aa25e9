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

Importing the user's modules
    Ray workers import a task's functions and classes by module name.  Ray
    puts the driver script's directory and the working directory on its
    workers' ``sys.path`` (assuming, as Ray says, the same directory layout
    on every node); a module found anywhere else on the driver's path (a
    directory a program or test runner added to ``sys.path``, an editable
    install) is not importable there.  When this executor calls ``ray.init``
    (not through Ray Client, and unless the job's ``runtime_env`` has a
    ``working_dir``, where Ray adds nothing either), the job's workers get
    every ``sys.path`` directory of the driver that lies outside the Python
    installation, in the driver's order, ahead of their own.  A Ray the
    caller initialised keeps Ray's own rules (``runtime_env`` ``working_dir``
    or ``py_modules`` ship code to a cluster).

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
    does).  The trampoline catches it (``BaseException`` included: Ray
    would read ``KeyboardInterrupt`` as a cancellation and ``SystemExit`` as
    a dead worker) and returns it, as ``portable_exception`` makes it: the
    exception itself when its pickle loads back, else rebuilt without its
    ``__init__``, else a :class:`~daskexec.errors.RemoteError` with its type,
    text and traceback.  Left to Ray, an exception that does not unpickle
    (``__init__`` arguments other than ``args``) fails to load in the driver
    and looks like a lost task.  A result Ray cannot serialize fails its
    future with the pickler's error.  Failures of the engine
    (``WorkerCrashedError``, ``NodeDiedError``, ``ObjectLostError``, ...)
    fail the future with a ``RayEngineError`` (a ``BrokenExecutor``, Ray's
    error as its cause) as soon as Ray reports them, once Ray's own
    ``max_retries`` are used up.
    Ray itself re-runs a task lost to a dead worker or node (up to
    ``max_retries``, default 3, as Ray's default) and rebuilds lost outputs
    from their lineage, which only Ray can do; so the scheduler's own
    retries see a loss only once Ray gives up.  ``Future.cancel()`` marks
    the future cancelled and cancels the Ray task, queued or running: an
    interrupt first, and after a grace period ``ray.cancel(ref, force=True)``,
    which ends a running task's worker process (Ray starts a new one on
    demand).

References
    ``RayExecutor.__daskexec_engine__().references`` implements
    :class:`daskexec.engine.ReferenceEngine`: a work item runs as one task
    with ``num_returns = n_outputs + 1``; its status comes to the driver,
    its outputs stay in the object store on the node that computed them and
    go as task arguments straight to the tasks that consume them.  With
    ``max_retries > 0`` Ray rebuilds a lost output from its lineage.

    Ray serializes the outputs only after the task returned, and stores a
    value it cannot serialize as an error in that output's place: the item
    would look done and its consumers (or the final fetch) fail, naming no
    one.  So the trampoline serializes each output with Ray's serializer
    first (not the values whose type always serializes) and reports the
    first failure as the failure of the task that produced it, a
    :class:`~daskexec.errors.SerializationError`, with no output stored.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import logging
import os
import queue
import re
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

import cloudpickle
import ray
from ray.job_config import JobConfig

from daskexec._serialize import portable_exception
from daskexec.engine import EngineInfo
from daskexec.errors import RemoteTraceback, SerializationError
from daskexec.kit import deadline, results_in_order

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


class _Raised:
    """What a call raised, returned in place of its result (see "Errors" above).

    ``exc`` holds :func:`~daskexec._serialize.portable_exception`'s stand-in
    for the exception, which loads back as the exception itself, rebuilt, or a
    :class:`~daskexec.errors.RemoteError`; ``tb`` is the remote traceback.
    """

    def __init__(self, exc: BaseException, tb: str) -> None:
        self.exc: Any = portable_exception(exc, tb)
        self.tb = tb

    def exception(self) -> BaseException:
        """The exception to raise in the driver, the remote traceback as its cause."""
        exc: BaseException = self.exc
        with contextlib.suppress(Exception):
            exc.__cause__ = RemoteTraceback(f'\n"""\n{self.tb}"""')
        return exc


def _call(fn: bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return cloudpickle.loads(fn)(*args, **kwargs)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included
        return _Raised(exc, traceback.format_exc())


def _run_item(fn: bytes, n_outputs: int, payload: Any, *inputs: Any) -> Any:
    status: Any
    try:
        status, outputs = cloudpickle.loads(fn)(payload, *inputs)
        # no outputs at all: the item did not even load (its status says why)
        outputs = tuple(outputs) or (None,) * n_outputs
        if len(outputs) != n_outputs:
            raise ValueError(f"work item returned {len(outputs)} outputs, expected {n_outputs}")
        for i, value in enumerate(outputs):
            try:
                _check_storable(value)
            except Exception as exc:
                status = _output_failure(status, payload, i, value, exc)
                outputs = (None,) * n_outputs
                break
    except BaseException as exc:  # not a task's error: the core catches and reports those
        status, outputs = _Raised(exc, traceback.format_exc()), (None,) * n_outputs
    return (status, *outputs) if n_outputs else status


#: Values Ray always stores: nothing to check.
_PLAIN = frozenset({type(None), bool, int, float, complex, str, bytes})


def _check_storable(value: Any) -> None:
    """Raise the pickler's error if Ray cannot store ``value`` as a task's return value.

    Ray serializes a task's return values only after the task returned, and
    stores a failure as an error in that one output's place: the work item
    would look successful and its consumers fail instead.  So each output is
    serialized here first, with Ray's own serializer (its custom serializers
    apply), unless its type always serializes.  NumPy arrays (and the
    blocks of pandas objects) go out of band, so checking them costs no
    copy; plain Python objects are pickled twice.
    """
    if type(value) in _PLAIN:
        return
    np = sys.modules.get("numpy")
    if np is not None and type(value) is np.ndarray and not value.dtype.hasobject:
        return
    _ray_serialize(value)


def _ray_serialize(value: Any) -> None:
    """COMPAT(ray): serialize ``value`` as Ray serializes a task's return value.

    Ray has no public call for this; ``SerializationContext.serialize`` is
    what its task-return path uses (checked against Ray 2.60).  A test
    (``test_unpicklable_output_names_its_producer``) fails if it moves.
    """
    worker = ray._private.worker.global_worker
    worker.get_serialization_context().serialize(value)  # type: ignore[no-untyped-call]


def _output_failure(status: bytes, payload: Any, index: int, value: Any, exc: Exception) -> bytes:
    """COMPAT(core): ``status`` as the failure of the task whose output ``index`` Ray cannot store.

    The core names the task behind each output; until it offers a way for an
    engine to report "output ``index`` cannot be stored", this reads its
    internals: the reference payload (``loads_item``'s arguments), the work
    item's ``exports``, the status as a cloudpickled ``ItemResult`` and a
    ``TaskFailure`` of stage ``"dump"`` (reported once, never retried), as
    the core's own workers report a result they cannot pickle.
    """
    from daskexec import _serialize
    from daskexec._worker import TaskFailure

    key = _serialize.loads_item(*payload).exports[index]
    kind = type(value)
    error = SerializationError(
        f"the result of task {key!r} (a {kind.__module__}.{kind.__qualname__}) cannot be "
        f"serialized to stay in Ray's object store ({type(exc).__name__}: {exc}); return "
        "a picklable value, or register a serializer for its type with "
        "ray.util.register_serializer"
    )
    result = _serialize.loads(status)
    result.failure = TaskFailure(key, error, traceback.format_exc(), "dump")
    result.values = None
    return _serialize.dumps(result)


_remote_call = ray.remote(_call)
_remote_item = ray.remote(_run_item)


#: Seconds a cancelled task has to stop on its own before its worker is killed.
_CANCEL_GRACE = 2.0


def _cancel(ref: ray.ObjectRef[Any]) -> None:
    """Stop a task, queued or running: politely first, then by killing its worker.

    ``ray.cancel(force=False)`` drops a queued task and interrupts a running
    one (``KeyboardInterrupt``); only a task still running after
    :data:`_CANCEL_GRACE` is force-cancelled.  Ray 2.60 can abort the driver
    when a force-cancel races with the task's completion ("Tried to complete
    task that was not pending"), so force is kept for tasks that ignore the
    interrupt.
    """
    with contextlib.suppress(Exception):
        ray.cancel(ref, force=False)

    def force() -> None:
        with contextlib.suppress(Exception):
            if ray.is_initialized() and not ray.wait([ref], timeout=0)[0]:
                ray.cancel(ref, force=True)

    timer = threading.Timer(_CANCEL_GRACE, force)
    timer.daemon = True
    timer.start()


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
        # Ray already shut down (maybe just now, by the last pending future's
        # callback: a Ray call would start a new instance), or the task
        # already finished: nothing to stop
        if ray.is_initialized():
            _cancel(self.object_ref)
        return True

    def _settle_from(self, inner: Future[Any]) -> None:
        exc = inner.exception()
        result = None
        if exc is not None:
            with contextlib.suppress(Exception):  # never lose a failure over its looks
                exc = _translate(exc)
        else:
            result = inner.result()
            if isinstance(result, _Raised):
                exc, result = result.exception(), None
        try:
            if exc is None:
                self.set_result(result)
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
    shipped with ``runtime_env={"py_modules": [...]}``).  When this
    executor initialises Ray (not through Ray Client), its workers import
    the user's own modules from the driver's ``sys.path`` directories.
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
        self._stop_ray = False  # shut down, and Ray is ours to stop once idle
        self._ray_stopped = threading.Event()
        self._settle_queue: queue.SimpleQueue[tuple[_RayFuture, Future[Any]] | None]
        self._settle_queue = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._owns_ray = _connect(address, dict(ray_init_kwargs or {}), runtime_env)
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
        until = deadline(timeout)
        return results_in_order(self._submit_batch(fn, list(zip(*iterables, strict=False))), until)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; stop Ray if (and only if) this executor started it.

        Safe to call several times.  ``cancel_futures=True`` cancels every
        unfinished call; ``wait=True`` waits for the others to finish.  When
        this executor initialised Ray, it stops Ray once no call is left
        unfinished: before returning with ``wait=True``; with ``wait=False``
        at once if nothing runs, else as soon as the last call has finished
        (stopping it earlier would lose their results).
        """
        with self._lock:
            if not self._shut and self._owns_ray:
                self._stop_ray = True
            self._shut = True
            pending = list(self._pending)
        if cancel_futures:
            for f in pending:
                f.cancel()
        if wait:
            concurrent.futures.wait(pending)
            with self._lock:  # their done callbacks may still be on their way
                self._pending.difference_update(pending)
        self._stop_dispatcher_if_idle()
        self._stop_ray_if_idle()
        if wait and self._owns_ray:  # another thread may be stopping it right now
            self._ray_stopped.wait()

    def terminate_workers(self) -> None:
        """Shut down at once: cancel every unfinished call, ending the processes running them.

        The meaning of Python 3.14's
        ``concurrent.futures.ProcessPoolExecutor.terminate_workers()``, on
        Ray: every call not finished is cancelled, queued or running
        (``ray.cancel(force=True)`` ends the worker process of a running
        one; Ray starts new workers on demand), and Ray is stopped if this
        executor started it.  Returns once every future is done.  Safe to
        call several times, and after :meth:`shutdown`; the daskexec
        scheduler calls it on an executor it created when a compute fails.
        """
        self.shutdown(wait=True, cancel_futures=True)

    # -- daskexec -------------------------------------------------------------

    def __daskexec_shut_down__(self) -> bool:
        """Whether :meth:`shutdown` was called (the daskexec engine protocol)."""
        return self._shut

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
        _require_ray()

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
        self._stop_ray_if_idle()

    def _stop_ray_if_idle(self) -> None:
        with self._lock:
            if not self._stop_ray or self._pending:
                return
            self._stop_ray = False
        try:
            ray.shutdown()
        finally:
            self._ray_stopped.set()

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
        _require_ray()
        try:
            return list(ray.get(list(refs)))
        except ray.exceptions.RayError as exc:
            raise _translate(exc) from exc

    def put(self, value: Any) -> Any:
        """Store ``value`` in Ray's object store; return its ``ObjectRef``."""
        _require_ray()
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


def _require_ray() -> None:
    """Fail unless Ray is initialised: ``ray.get``/``put`` would start a new local Ray."""
    if not ray.is_initialized():
        raise RuntimeError(
            "Ray is no longer initialised in this process (its RayExecutor was shut "
            "down, or ray.shutdown() was called elsewhere); create a new RayExecutor"
        )


def _shippable(fn: Callable[..., Any]) -> Any:
    """``fn`` pickled with cloudpickle: its bytes, or an ``ObjectRef`` to them when large.

    cloudpickle rather than Ray's vendored copy, so that modules a user
    registered with ``cloudpickle.register_pickle_by_value`` travel by value
    here as on every other backend.
    """
    data = cloudpickle.dumps(fn)
    return ray.put(data) if len(data) > _PUT_FUNCTION_ABOVE else data


def _connect(
    address: str | None, init_kwargs: dict[str, Any], task_env: Mapping[str, Any] | None
) -> bool:
    """Make sure Ray is initialised; return whether this call initialised it.

    ``task_env`` is the executor's own ``runtime_env`` for its tasks.
    """
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
    job_config = kwargs.get("job_config")
    ships_code = any(
        _has_working_dir(env)
        for env in (kwargs.get("runtime_env"), getattr(job_config, "runtime_env", None), task_env)
    )
    if not address.startswith("ray://") and not ships_code:
        kwargs["job_config"] = _with_import_path(job_config, _driver_import_path())
    ray.init(address=address, **kwargs)
    return True


def _driver_import_path() -> list[str]:
    """The directories this process imports the user's own modules from, in order.

    Every ``sys.path`` entry outside the Python installation (its prefixes
    and user site directory): the script's directory, the working
    directory, ``PYTHONPATH``, directories a program or a test runner added,
    editable installs.  Ray itself gives its workers only the script's
    directory and the working directory.
    """
    import site

    prefixes = {
        os.path.realpath(p)
        for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)
    }
    with contextlib.suppress(Exception):
        prefixes.add(os.path.realpath(site.getusersitepackages()))
    paths: list[str] = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.curdir)
        if not os.path.isdir(path) or path in paths:
            continue
        if any(path == p or path.startswith(p + os.sep) for p in prefixes):
            continue
        paths.append(path)
    return paths


def _has_working_dir(runtime_env: Any) -> bool:
    """Whether ``runtime_env`` ships the user's code itself (then Ray adds no path either)."""
    return isinstance(runtime_env, Mapping) and bool(runtime_env.get("working_dir"))


def _with_import_path(job_config: Any, paths: list[str]) -> Any:
    """COMPAT(ray): a ``JobConfig`` whose workers put ``paths`` first on ``sys.path``.

    ``JobConfig._py_driver_sys_path`` is the field ``ray.init`` itself fills
    with the script's directory and the working directory (checked against
    Ray 2.60); each worker inserts its entries at the front of ``sys.path``,
    one by one, hence the reversed order.  A ``job_config`` of the caller is
    copied, not changed.
    """
    job_config = JobConfig() if job_config is None else copy.copy(job_config)
    own = list(getattr(job_config, "_py_driver_sys_path", None) or [])
    job_config._py_driver_sys_path = [*reversed(paths), *own]
    return job_config
