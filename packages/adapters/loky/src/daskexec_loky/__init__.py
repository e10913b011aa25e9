"""daskexec adapter for loky's reusable process pool executor.

:class:`LokyExecutor` is a ``concurrent.futures.Executor`` registered as the
``loky`` backend.  Work runs on ``loky.get_reusable_executor()``: loky spawns
workers with its own safe start method, serializes functions with cloudpickle
(lambdas and closures work), and detects a worker that dies, failing the
affected futures with ``loky.process_executor.TerminatedWorkerError`` (a
:class:`concurrent.futures.BrokenExecutor`).

The reusable executor and ``shutdown``
--------------------------------------
loky keeps one reusable executor per thread and hands it to every caller
with matching arguments, so that worker processes outlive a single job.
A :class:`LokyExecutor` records each loky executor it submits to.
``shutdown()`` shuts those down: ``shutdown(wait=True)`` waits for their
pending work (anyone's, not just this executor's) and for every worker
process to exit.  Nothing is lost for other users of the same loky
executor: their work submitted before finishes, and their next
``get_reusable_executor()`` call starts a fresh one.  This choice gives the
guarantee the daskexec scheduler promises (no process left behind after a
compute) at the price of a worker start-up on the next use; to keep workers
warm across computes, keep one :class:`LokyExecutor` open and pass it to
each compute (the scheduler never shuts down an executor it was given).

Results and exceptions
----------------------
Work runs as a call of ``daskexec.kit.outcome_of``, which returns the
call's outcome as bytes pickled with cloudpickle in the worker, and the
caller's future decodes it (``daskexec.kit.bridge``).  loky never pickles
a task's result or exception itself: a lambda result works, and an exception
whose pickle does not load back comes back (rebuilt, or as a stand-in)
instead of marking the shared executor broken for every user.  loky's
``result_reducers`` therefore see only those bytes.

Crashes
-------
When a worker dies, loky marks its executor broken, fails the pending
futures, and kills the remaining workers.  The next ``submit`` here finds the
executor broken and asks loky for a new one, so a retry succeeds.

:meth:`LokyExecutor.terminate_workers` shuts down the loky executors this
one used and kills their workers (and the workers' children) with loky's
own ``kill_process_tree``; loky's manager thread then fails the running
futures as broken.  loky offers no public list of an executor's workers:
:func:`daskexec_loky._compat.executor_workers` reads the private
``_processes``.  Work of other users of the same reusable executor fails
too; that is the price of stopping ours now.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import loky
from loky.backend.utils import kill_process_tree
from loky.process_executor import BrokenProcessPool, ShutdownExecutorError, TerminatedWorkerError

from daskexec.engine import EngineInfo
from daskexec.kit import Intake, bridge, local_pool_info, outcome_of
from daskexec_loky._compat import executor_workers

__all__ = ["LokyExecutor", "TerminatedWorkerError"]
__version__ = "0.1.0"

T = TypeVar("T")

#: What one invocation costs beyond its work: a round trip through loky's
#: queues and two (un)pickles, about a millisecond.
_CALL_OVERHEAD = 1e-3


class LokyExecutor(concurrent.futures.Executor):
    """Run work on loky's reusable process pool.

    Parameters
    ----------
    max_workers
        Number of worker processes; ``None`` means loky's CPU count (which
        honours CPU affinity and container limits).
    timeout
        Seconds an idle worker waits for work before exiting (loky respawns
        workers on demand).
    **kwargs
        Passed to :func:`loky.get_reusable_executor` (``context``,
        ``initializer``, ``initargs``, ``env``, ``job_reducers``,
        ``result_reducers``).

    Notes
    -----
    See the module docstring for what ``shutdown`` does to the shared
    reusable executor.  A dead worker fails the pending futures with
    ``TerminatedWorkerError``; the next ``submit`` gets a fresh loky executor.
    """

    def __init__(self, max_workers: int | None = None, timeout: float = 300, **kwargs: Any) -> None:
        if max_workers is not None and (
            not isinstance(max_workers, int) or isinstance(max_workers, bool) or max_workers < 1
        ):
            raise ValueError(f"max_workers must be an int >= 1 or None, got {max_workers!r}")
        self._max_workers = max_workers if max_workers is not None else loky.cpu_count()
        self._options: dict[str, Any] = {"timeout": timeout, **kwargs}
        self._intake = Intake("LokyExecutor")  # shut-down state, unfinished futures, the lock
        self._current: loky.ProcessPoolExecutor | None = None
        self._used: list[loky.ProcessPoolExecutor] = []

    def _executor(self, stale: loky.ProcessPoolExecutor | None) -> loky.ProcessPoolExecutor:
        """The loky executor to submit to; a new one if ``stale`` is the current one (lock held)."""
        if self._current is None or self._current is stale:
            ex = loky.get_reusable_executor(max_workers=self._max_workers, **self._options)
            if ex is stale:  # loky has not noticed yet that it is broken
                ex = loky.get_reusable_executor(
                    max_workers=self._max_workers, kill_workers=True, reuse=False, **self._options
                )
            self._current = ex
            if not any(ex is used for used in self._used):
                self._used.append(ex)
        return self._current

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` in a worker process and return its future.

        Raises
        ------
        RuntimeError
            If the executor has been shut down.
        """
        with self._intake.accepting():
            ex = self._executor(None)
            try:
                inner = ex.submit(outcome_of, fn, *args, **kwargs)
            except (BrokenProcessPool, RuntimeError):
                # Broken by a dead worker, or shut down by another user of the
                # shared executor: carry on with a fresh one.
                inner = self._executor(ex).submit(outcome_of, fn, *args, **kwargs)
            return self._intake.track(bridge(inner, _engine_error))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work and shut down the loky executors this one used.

        Safe to call several times.  With ``cancel_futures=True`` the futures
        submitted here and not yet running are cancelled.  With ``wait=True``
        it returns once all work on those loky executors has finished and
        every worker process has exited.
        """
        with self._intake.lock:
            pending = self._intake.close()
            used = list(self._used)
            self._current = None
        if cancel_futures:
            for future in pending:
                future.cancel()
        for ex in used:
            ex.shutdown(wait=wait)

    def terminate_workers(self) -> None:
        """Shut down at once: cancel pending work and kill the worker processes.

        The meaning of Python 3.14's
        ``concurrent.futures.ProcessPoolExecutor.terminate_workers()``:
        futures submitted here and not yet running are cancelled, running
        ones fail with ``BrokenProcessPool`` (a
        :class:`concurrent.futures.BrokenExecutor`), and the workers of the
        loky executors this one used are killed (see the module docstring),
        also after ``shutdown(wait=False)``.
        It returns once every future is done and every worker process has
        exited.  Safe to call several times, and after :meth:`shutdown`.
        """
        with self._intake.lock:
            pending = self._intake.close()
            used = list(self._used)
            self._current = None
        for future in pending:
            future.cancel()  # those still queued
        for ex in used:
            # Not shutdown(kill_workers=True): after an earlier shutdown(wait=False)
            # loky's manager thread no longer hears it, and (loky 3.7) it crashes
            # on a cancelled future.  Its manager sees the workers die instead,
            # fails the running futures as broken and cleans up.
            ex.shutdown(wait=False)
            for process in executor_workers(ex):
                kill_process_tree(process)  # SIGKILL to it and its children; joins it
        concurrent.futures.wait(pending)

    def __daskexec_shut_down__(self) -> bool:
        """Whether :meth:`shutdown` was called (the daskexec engine protocol)."""
        return self._intake.closed

    def __daskexec_engine__(self) -> EngineInfo:
        """Describe this executor to the daskexec scheduler: a local process pool."""
        return local_pool_info(self._max_workers, "loky", _CALL_OVERHEAD)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._intake.state()}, {self._max_workers} workers>"


def _engine_error(error: BaseException) -> BaseException:
    """loky's error for work killed by a shutdown is a lost worker to the caller."""
    if isinstance(error, ShutdownExecutorError):
        lost: BaseException = BrokenProcessPool(
            "the loky executor running this work item was shut down with its workers "
            "killed (shutdown(kill_workers=True), by another user of the shared reusable "
            "executor or by get_reusable_executor(kill_workers=True))"
        )
        lost.__cause__ = error
        return lost
    return error
