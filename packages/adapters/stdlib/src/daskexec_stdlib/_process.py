"""``ProcessPoolExecutor``: the stdlib process pool, with cloudpickle and self-repair.

The stdlib ``concurrent.futures.ProcessPoolExecutor`` already detects a dead
worker: it fails every pending future with ``BrokenProcessPool`` (a
``BrokenExecutor``) and from then on refuses work.  This adapter wraps one
such pool and, when a ``submit`` finds it broken, retires it and starts a
fresh one, so that the scheduler's retry of the failed work succeeds.

Work goes to the pool as a call of an importable runner that returns the
call's outcome as bytes (see ``daskexec.kit``); the caller's future is a
bridge that decodes it when the pool's future completes, and cancels the
pool's future when cancelled.  A result or an exception that the pool's
pickler could not carry therefore cannot break the pool.

Work items submitted in the short window between a worker's death and the
pool noticing it land in the doomed pool and fail with the same error;
that is an engine failure like any other, and retried the same way.

:meth:`ProcessPoolExecutor.terminate_workers` has the meaning of Python
3.14's method of the same name, and also works after ``shutdown(wait=False)``
(the daskexec scheduler calls it then), where the stdlib's, which reads the
pool's worker list that ``shutdown`` drops, finds nothing to terminate.  The
stdlib pool offers no public list of its worker processes:
:func:`daskexec_stdlib._compat.process_pool_workers` reads the private
``_processes`` once, when the pool is created.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from daskexec.kit import bridge

from ._common import TERMINATE_GRACE, Context, LocalPool, end_processes, pack_call
from ._compat import process_pool_workers

__all__ = ["ProcessPoolExecutor"]

T = TypeVar("T")


class ProcessPoolExecutor(LocalPool):
    """A process pool that runs lambdas and closures and outlives dead workers.

    Parameters
    ----------
    max_workers
        Number of worker processes; ``None`` means one per CPU this process
        may use.
    mp_context
        Start method name or multiprocessing context; ``None`` means
        ``forkserver`` on Linux and ``spawn`` elsewhere, never ``fork`` (a
        forked child of a threaded driver can deadlock).
    **kwargs
        Passed to :class:`concurrent.futures.ProcessPoolExecutor`
        (``initializer``, ``initargs``, ``max_tasks_per_child``).

    Notes
    -----
    ``submit`` serializes the function with cloudpickle, so lambdas,
    closures and functions defined in ``__main__`` work; results and
    exceptions come back with cloudpickle too.  A task's exception, a
    ``BaseException`` included, is raised by ``result()`` with the worker's
    traceback as its ``__cause__``; a result that cannot be pickled fails its
    future with :class:`daskexec.errors.SerializationError`.  When a worker
    process dies (a crash, ``os._exit``, the OOM killer), the futures that
    were pending in the pool fail with ``BrokenProcessPool``, a subclass of
    :class:`concurrent.futures.BrokenExecutor`; the next ``submit`` starts a
    new pool transparently.  ``shutdown`` follows the stdlib contract and,
    with ``wait=True``, returns only once every worker process has exited.
    """

    engine_name = "processes"

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: str | Context | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(max_workers, mp_context)
        self._kwargs = kwargs
        self._retired: list[concurrent.futures.ProcessPoolExecutor] = []
        # each pool's live map of pid to worker Process, kept past its shutdown
        self._workers: dict[concurrent.futures.ProcessPoolExecutor, dict[int, Any]] = {}
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        # Creating the stdlib pool starts no process: workers spawn on demand.
        pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=self._workers_count, mp_context=self._context, **self._kwargs
        )
        self._workers[pool] = process_pool_workers(pool)
        return pool

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` in a worker process and return its future.

        A call that cannot be serialized returns a future holding the
        serialization error, as the stdlib pool does.

        Raises
        ------
        RuntimeError
            If the executor has been shut down.
        """
        try:
            runner, runner_args = pack_call(fn, args, kwargs)
        except Exception as exc:  # unpicklable: report it on the future
            failed: Future[T] = Future()
            failed.set_exception(exc)
            with self._intake.accepting():
                return failed
        with self._intake.accepting():
            try:
                inner = self._pool.submit(runner, *runner_args)
            except BrokenProcessPool:
                # A worker died: the stdlib pool is unusable for good.  Keep it
                # to join on shutdown and carry on with a fresh one.
                self._retired.append(self._pool)
                self._pool.shutdown(wait=False)
                self._pool = self._new_pool()
                inner = self._pool.submit(runner, *runner_args)
            return self._intake.track(bridge(inner))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work and release the worker processes.

        Safe to call several times.  With ``cancel_futures=True`` the futures
        not yet running are cancelled.  With ``wait=True`` it returns once
        every running future has finished and every worker process has
        exited; with ``wait=False`` it returns at once and the workers exit
        when their work is done.
        """
        with self._intake.lock:
            self._intake.close()
            pools = [*self._retired, self._pool]
        for pool in pools:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)

    def terminate_workers(self) -> None:
        """Shut down at once: cancel pending work and terminate the worker processes.

        The meaning of Python 3.14's
        ``concurrent.futures.ProcessPoolExecutor.terminate_workers()``:
        futures not yet running are cancelled, running ones fail with
        ``BrokenProcessPool`` (a :class:`concurrent.futures.BrokenExecutor`),
        and the workers are sent ``SIGTERM`` (``SIGKILL`` if one is still
        running a second later).  It returns once every future is done and
        every worker process has exited.  Safe to call several
        times, and after :meth:`shutdown`.
        """
        with self._intake.lock:
            pending = self._intake.close()
            pools = [*self._retired, self._pool]
        for future in pending:
            future.cancel()  # those still queued
        processes: list[Any] = []
        for pool in pools:
            processes.extend(self._workers[pool].copy().values())
            pool.shutdown(wait=False, cancel_futures=True)
        end_processes(processes, TERMINATE_GRACE)
        # Each pool's manager thread sees its workers gone and fails the
        # running futures as broken.
        concurrent.futures.wait(pending)
