"""What both stdlib adapters share: start method, cloudpickle transport, errors.

Both executors derive from :class:`LocalPool`: the worker count, the start
method, the :class:`daskexec.kit.Intake` (shut-down state, unfinished
futures, the lock), their description to the scheduler and their ``repr``.

Transport
---------
The stdlib pools pickle a call with the standard pickler, which refuses
lambdas and closures.  :func:`pack_call` turns ``fn(*args, **kwargs)`` into a
call of a module-level runner that any pickler handles:

- ``fn`` is always serialized with cloudpickle (by reference when it is
  importable, which costs about as much as pickling it by name);
- when every argument is a plain value (``bytes``, ``str``, numbers, ``None``,
  or a tuple of those) and there are no keyword arguments, the arguments
  travel as they are: the scheduler's payload, a ``(bytes, bytes)`` pair, is
  never copied into a second pickle;
- otherwise the whole call is one cloudpickle blob.

The runner returns the call's *outcome* (see ``daskexec.kit``): bytes
holding the result or the exception, pickled in the worker with cloudpickle.
The pool itself never pickles a task's result or exception, so a lambda
result, an exception whose pickle does not load, or a ``KeyboardInterrupt``
raised by a task cannot break it; the adapter decodes the outcome in the
driver with ``daskexec.kit.settle`` or ``bridge``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import multiprocessing.connection
import multiprocessing.context
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, ClassVar

import cloudpickle

from daskexec.engine import EngineInfo
from daskexec.kit import Intake, local_pool_info, outcome_of

__all__ = [
    "LocalPool",
    "WorkerLostError",
    "default_workers",
    "end_processes",
    "pack_call",
    "resolve_context",
]

Context = multiprocessing.context.BaseContext

_PLAIN = frozenset({bytes, bytearray, str, int, float, bool, complex, type(None)})

#: Seconds a worker may take to exit on SIGTERM from ``terminate_workers()``
#: before it is killed.
TERMINATE_GRACE = 1.0


class WorkerLostError(BrokenProcessPool):
    """A worker process died while work items were in flight.

    It subclasses :class:`concurrent.futures.BrokenExecutor` (through the
    stdlib's ``BrokenProcessPool``), so the daskexec scheduler treats it as an
    engine failure and retries the work; the executor stays usable.
    """


class LocalPool(concurrent.futures.Executor):
    """A pool of ``workers`` processes started with ``context``, as the scheduler sees it."""

    #: the backend name, for ``EngineInfo.name``
    engine_name: ClassVar[str]
    #: what ``repr`` calls the workers
    worker_noun: ClassVar[str] = "workers"

    def __init__(self, workers: int | None, context: str | Context | None) -> None:
        self._workers_count = default_workers(workers)
        self._context = resolve_context(context)
        self._intake = Intake(type(self).__name__)  # shut down?, unfinished futures, lock

    def __daskexec_shut_down__(self) -> bool:
        """Whether :meth:`shutdown` was called (the daskexec engine protocol)."""
        return self._intake.closed

    def __daskexec_engine__(self) -> EngineInfo:
        """Describe this pool to the daskexec scheduler: a local process pool."""
        return local_pool_info(self._workers_count, self.engine_name)

    def __repr__(self) -> str:
        details = f"{self._workers_count} {self.worker_noun}, {self._context.get_start_method()}"
        return f"<{type(self).__name__} {self._intake.state()}, {details}>"


def resolve_context(context: str | Context | None) -> Context:
    """Return the multiprocessing context to start workers with.

    ``None`` picks a safe start method: ``forkserver`` on Linux, else
    ``spawn`` (macOS and Windows default to it too).  Plain ``fork`` is never the
    default: forking a process that runs threads (the scheduler itself runs
    some) can deadlock the child.  A name or a context passed explicitly is
    used as given.
    """
    if context is None:
        forkserver = "forkserver" in multiprocessing.get_all_start_methods()
        name = "forkserver" if sys.platform.startswith("linux") and forkserver else "spawn"
        return multiprocessing.get_context(name)
    if isinstance(context, str):
        return multiprocessing.get_context(context)
    if isinstance(context, multiprocessing.context.BaseContext):
        return context
    raise TypeError(
        f"context must be None, a start method name or a multiprocessing context, "
        f"got {type(context).__name__}"
    )


def default_workers(workers: int | None) -> int:
    """Return ``workers``, or the CPUs this process may run on when it is ``None``."""
    if workers is None:
        try:
            return len(os.sched_getaffinity(0)) or 1
        except AttributeError:  # not Linux
            return os.cpu_count() or 1
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"the number of workers must be an int >= 1 or None, got {workers!r}")
    return workers


def pack_call(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """Return ``(runner, runner_args)``: ``runner(*runner_args)`` calls ``fn(*args, **kwargs)``.

    The runner is importable, its arguments pickle with the standard pickler,
    and it returns the call's outcome (see the module docstring).
    """
    if not kwargs and all(_is_plain(a) for a in args):
        return _run_plain, (cloudpickle.dumps(fn), *args)
    return _run_packed, (cloudpickle.dumps((fn, args, kwargs)),)


def _is_plain(value: Any) -> bool:
    kind = type(value)
    return kind in _PLAIN or (kind is tuple and all(type(v) in _PLAIN for v in value))


def _run_plain(fn_blob: bytes, *args: Any) -> bytes:
    return outcome_of(_call_plain, fn_blob, args)


def _run_packed(blob: bytes) -> bytes:
    return outcome_of(_call_packed, blob)


def _call_plain(fn_blob: bytes, args: tuple[Any, ...]) -> Any:
    return cloudpickle.loads(fn_blob)(*args)


def _call_packed(blob: bytes) -> Any:
    fn, args, kwargs = cloudpickle.loads(blob)
    return fn(*args, **kwargs)


def end_processes(processes: Iterable[Any], grace: float) -> None:
    """Stop ``processes`` (``multiprocessing`` processes) now; return once all have exited.

    The common part of both adapters' ``terminate_workers()``: they get
    ``SIGTERM`` (Python's default handler exits at once), and
    ``SIGKILL`` if still running ``grace`` seconds later; ``grace=0`` kills
    at once.  Only their sentinels are waited on: whoever started them
    still joins them.
    """
    running: dict[Any, int] = {}  # sentinel -> pid
    for process in processes:
        with contextlib.suppress(ValueError):  # closed: long gone
            running[process.sentinel] = process.pid
    deadline = time.monotonic() + grace
    for signum in (signal.SIGTERM, _SIGKILL) if grace > 0 else (_SIGKILL,):
        # A process whose sentinel is ready has exited, and its pid may be
        # reaped and reused: signal only the others.
        for sentinel in multiprocessing.connection.wait(list(running), 0):
            del running[sentinel]
        for pid in running.values():
            with contextlib.suppress(OSError):
                os.kill(pid, signum)
        while running:
            timeout = None if signum == _SIGKILL else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            for sentinel in multiprocessing.connection.wait(list(running), timeout):
                del running[sentinel]


_SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)  # Windows has no SIGKILL
