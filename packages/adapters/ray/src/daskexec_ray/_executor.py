"""Ray as a ``concurrent.futures.Executor``, and as an engine whose results stay remote.

Design note
-----------
Connection and imports
    See :mod:`daskexec_ray._connect`: this executor uses the Ray this
    process is connected to, or initialises one (and then stops it on
    ``shutdown``), giving its workers the driver's import path.

Tasks and futures
    Every call becomes one Ray task of a trampoline that returns the call's
    result, or its exception as a value (:mod:`daskexec_ray._remote`).
    Each task's first ``ObjectRef`` is bridged to a
    ``concurrent.futures.Future`` through ``ObjectRef.future()``
    (:func:`daskexec.kit.bridge`).  Ray runs those completion callbacks on
    its own I/O thread, where a blocking ``ray.get`` deadlocks, so they go
    to one :class:`daskexec.kit.Relay` thread per executor, which settles
    the futures and runs their callbacks.  The executor's bookkeeping is a
    :class:`daskexec.kit.Intake`; once it is shut down and idle, the relay
    thread ends and Ray is stopped if this executor started it.

Errors
    A task's exception comes back as its original type and message, with
    the remote traceback as its ``__cause__`` (as ``ProcessPoolExecutor``
    does).  A result Ray cannot serialize fails its future with the
    pickler's error.  Failures of the engine (``WorkerCrashedError``,
    ``NodeDiedError``, ``ObjectLostError``, ...) fail the future with a
    :class:`RayEngineError` (a ``BrokenExecutor``, Ray's error as its cause)
    as soon as Ray reports them, once Ray's own ``max_retries`` are used up.
    Ray itself re-runs a task lost to a dead worker or node (up to
    ``max_retries``, default 3, as Ray's default) and rebuilds lost outputs
    from their lineage, which only Ray can do; so the scheduler's own
    retries see a loss only once Ray gives up.  ``Future.cancel()`` marks
    the future cancelled and cancels the Ray task, queued or running: an
    interrupt first, and after a grace period ``ray.cancel(ref, force=True)``,
    which ends a running task's worker process (Ray starts a new one on
    demand).

References
    ``__daskexec_engine__().references`` keeps results in Ray's object store
    (:mod:`daskexec_ray._references`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

import ray

from daskexec.engine import EngineInfo
from daskexec.errors import RemoteTraceback
from daskexec.kit import EagerMap, Intake, Relay, bridge
from daskexec_ray._connect import connect, require_ray
from daskexec_ray._references import TASK_OPTIONS, RayReferences
from daskexec_ray._remote import decode, remote_call, shippable

__all__ = ["TASK_OPTIONS", "RayEngineError", "RayExecutor"]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Seconds a cancelled task has to stop on its own before its worker is killed.
_CANCEL_GRACE = 2.0


def _cancel(ref: ray.ObjectRef[Any]) -> None:
    """Stop a task, queued or running: politely first, then by killing its worker.

    ``ray.cancel(force=False)`` drops a queued task and interrupts a running
    one (``KeyboardInterrupt``); only a task still running after
    :data:`_CANCEL_GRACE` is force-cancelled.  Ray 2.60 can abort the driver
    when a force-cancel races with the task's completion ("Tried to complete
    task that was not pending"), so force is kept for tasks that ignore the
    interrupt.  Nothing happens once Ray is shut down (maybe just now, by
    the last pending future's callback): a Ray call would start a new
    instance.
    """
    if not ray.is_initialized():
        return
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


class RayExecutor(EagerMap, concurrent.futures.Executor):
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
    ``map`` submits every call (one Ray task each) before the first result
    (:class:`daskexec.kit.EagerMap`); ``chunksize`` is ignored.
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
        self._call = remote_call.options(**self._options)  # validates the options
        self._intake = Intake("RayExecutor", on_idle=self._on_idle)
        self._relay = Relay("daskexec-ray-futures")
        self._stop_ray = False  # shut down, and Ray is ours to stop once idle
        self._ray_stopped = threading.Event()
        self._owns_ray = connect(address, dict(ray_init_kwargs or {}), runtime_env)
        self._references = RayReferences(self, _translate)

    # -- concurrent.futures.Executor ----------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` as one Ray task; return its future.

        Raises
        ------
        RuntimeError
            If the executor has been shut down.
        """
        self._check_open()
        return self._track(self._call.remote(shippable(fn), args, kwargs))

    def submit_many(self, fn: Callable[..., Any], payloads: Iterable[Any]) -> list[Future[Any]]:
        """Run ``fn(payload)`` for every payload, all submitted at once; futures in order.

        ``fn`` is serialized once for the whole batch.
        """
        self._check_open()
        shipped = shippable(fn)
        return [self._track(self._call.remote(shipped, (p,), {})) for p in payloads]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work; stop Ray if (and only if) this executor started it.

        Safe to call several times.  ``cancel_futures=True`` cancels every
        unfinished call; ``wait=True`` waits for the others to finish.  When
        this executor initialised Ray, it stops Ray once no call is left
        unfinished: before returning with ``wait=True``; with ``wait=False``
        at once if nothing runs, else as soon as the last call has finished
        (stopping it earlier would lose their results).
        """
        with self._intake.lock:
            if not self._intake.closed and self._owns_ray:
                self._stop_ray = True
            pending = self._intake.close()
        if cancel_futures:
            for f in pending:
                f.cancel()
        if wait:
            concurrent.futures.wait(pending)
        self._intake.notify_if_idle()
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
        return self._intake.closed

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

    @property
    def _pending(self) -> list[Future[Any]]:
        """The unfinished futures (a test of this package counts them)."""
        return self._intake.pending()

    def _check_open(self) -> None:
        self._intake.check()
        require_ray()

    def _track(self, ref: ray.ObjectRef[Any]) -> Future[Any]:
        future = bridge(
            ref.future(),
            _translate,
            decode=decode,
            on_cancel=functools.partial(_cancel, ref),
            relay=self._relay,
        )
        return self._intake.track(future)

    def _on_idle(self) -> None:
        """Shut down and no call left: end the relay thread, and stop Ray if it is ours."""
        self._relay.stop()
        with self._intake.lock:
            if not self._stop_ray:
                return
            self._stop_ray = False
        try:
            ray.shutdown()
        finally:
            self._ray_stopped.set()
