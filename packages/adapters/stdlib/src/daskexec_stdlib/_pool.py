"""``MultiprocessingPoolExecutor``: ``multiprocessing.Pool`` as a ``concurrent.futures.Executor``.

Data flow
---------
::

    submit -> Future (PENDING) -> queue -> dispatch -> pool.apply_async -> worker
                                               ^                             |
                                               +--- result-handler callback -+

``submit`` appends a work item to a queue and returns a real
``concurrent.futures.Future``.  At most ``2 * processes`` items are handed to
the pool at a time (marked RUNNING then, as the stdlib pool does with its
call queue); the others stay PENDING and can be cancelled.  The pool's
result-handler thread completes a future through ``apply_async``'s
callbacks and dispatches the next item.  What comes back is the call's
outcome, bytes (see ``daskexec.kit``): the pool never pickles a task's
result or exception itself, so neither a lambda result nor an exception
whose pickle does not load can kill that thread, and a task's
``BaseException`` cannot kill its worker.

Worker death
------------
``multiprocessing.Pool`` silently replaces a worker that dies, and the work
item it was running never completes: ``get()`` hangs and so would
``close(); join()``.  Each pool therefore has a watcher thread that waits on
the sentinels of the pool's worker processes (the pool never retires a
worker on its own here: ``maxtasksperchild`` is not offered).  When one
fires, the watcher fails every dispatched future with
:class:`~daskexec_stdlib.WorkerLostError` (which worker had which item is not
knowable), terminates that pool, and the queued items go to a fresh pool
started on demand.  Reading the worker list uses the pool's private
``_pool`` attribute, once, right after the pool starts.

:meth:`MultiprocessingPoolExecutor.terminate_workers` cancels the queued
items, fails the dispatched ones with ``WorkerLostError`` and calls
``Pool.terminate()`` (``SIGTERM`` to the workers, then joins them), killing
a worker that has not exited a second later.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import functools
import itertools
import multiprocessing.connection
import multiprocessing.pool
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from daskexec.kit import settle

from ._common import TERMINATE_GRACE, Context, LocalPool, WorkerLostError, end_processes, pack_call
from ._compat import pool_processes

__all__ = ["MultiprocessingPoolExecutor"]

T = TypeVar("T")

# At interpreter exit multiprocessing terminates every pool's workers; that is
# no worker death to report, and no reason to start a new pool.  (atexit runs
# handlers last-registered first, so this flag is set before that happens.)
_EXITING = threading.Event()
atexit.register(_EXITING.set)

# (future, runner, runner args) of one work item
_Item = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


class _Generation:
    """One ``multiprocessing.Pool`` and the thread that watches its workers."""

    def __init__(self, pool: multiprocessing.pool.Pool) -> None:
        self.pool = pool
        # Holding the Process objects keeps their sentinels open and valid.
        self.workers = pool_processes(pool)
        self.closing = threading.Event()
        self.watcher: threading.Thread | None = None


class MultiprocessingPoolExecutor(LocalPool):
    """``multiprocessing.Pool`` behind the ``concurrent.futures.Executor`` interface.

    Parameters
    ----------
    processes
        Number of worker processes; ``None`` means one per CPU this process
        may use.
    context
        Start method name or multiprocessing context; ``None`` means
        ``forkserver`` on Linux and ``spawn`` elsewhere, never ``fork``.
    initializer, initargs
        Run ``initializer(*initargs)`` in each worker when it starts.

    Notes
    -----
    Functions, results and exceptions travel with cloudpickle, so lambdas
    and closures work both ways.  A task's exception, a ``BaseException``
    included, is raised by ``result()`` with the worker's traceback as its
    ``__cause__``; a result that cannot be pickled fails its future with
    :class:`daskexec.errors.SerializationError`.  A worker that dies fails
    the work items handed to the pool at that moment with
    :class:`~daskexec_stdlib.WorkerLostError` (a
    :class:`concurrent.futures.BrokenExecutor`) instead of hanging them, and
    the executor keeps accepting work on a fresh pool.  ``shutdown`` follows
    the stdlib contract; with ``wait=True`` no worker process is left.
    """

    engine_name = "multiprocessing-pool"
    worker_noun = "processes"

    def __init__(
        self,
        processes: int | None = None,
        context: str | Context | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(processes, context)
        self._initializer = initializer
        self._initargs = initargs
        self._limit = 2 * self._workers_count
        self._ids = itertools.count()
        self._queue: collections.deque[_Item] = collections.deque()
        self._inflight: dict[int, Future[Any]] = {}
        self._gen: _Generation | None = None  # started on first dispatch
        self._retired: list[_Generation] = []

    # -- submitting ------------------------------------------------------------

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` in a worker process and return its future.

        A call that cannot be serialized returns a future holding the
        serialization error.

        Raises
        ------
        RuntimeError
            If the executor has been shut down.
        """
        future: Future[T] = Future()
        try:
            runner, runner_args = pack_call(fn, args, kwargs)
        except Exception as exc:
            self._intake.check()
            future.set_exception(exc)
            return future
        with self._intake.accepting():
            self._queue.append((self._intake.track(future), runner, runner_args))
            self._dispatch_locked()
        return future

    def _dispatch_locked(self) -> None:
        """Hand queued items to the pool up to the in-flight limit (lock held)."""
        while self._queue and len(self._inflight) < self._limit:
            future, runner, runner_args = self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while queued
            if self._gen is None:
                self._gen = self._start_generation()
            key = next(self._ids)
            self._inflight[key] = future
            self._gen.pool.apply_async(
                runner,
                runner_args,
                callback=functools.partial(self._complete, key, True),
                error_callback=functools.partial(self._complete, key, False),
            )

    def _start_generation(self) -> _Generation:
        pool = self._context.Pool(self._workers_count, self._initializer, self._initargs)
        gen = _Generation(pool)
        gen.watcher = threading.Thread(
            target=self._watch, args=(gen,), name="daskexec-pool-watcher", daemon=True
        )
        gen.watcher.start()
        return gen

    def _complete(self, key: int, ok: bool, value: Any) -> None:
        # Runs in the pool's result-handler thread.
        with self._intake.lock:
            future = self._inflight.pop(key, None)
            if future is None:
                return  # already failed as lost to a dead worker
            self._dispatch_locked()
            idle = self._intake.closed and not self._inflight and not self._queue
            gen = self._gen
        if ok:
            settle(future, value)
        else:  # the runner itself failed: not a task's error
            future.set_exception(value)
        if idle and gen is not None:
            # shutdown(wait=False) left work running: let the workers go now.
            gen.closing.set()
            gen.pool.close()

    # -- worker death ------------------------------------------------------------

    def _watch(self, gen: _Generation) -> None:
        sentinels = [p.sentinel for p in gen.workers]
        while not gen.closing.is_set():
            dead = multiprocessing.connection.wait(sentinels, timeout=0.1)
            if dead:
                break
        else:
            return
        with self._intake.lock:
            if gen.closing.is_set() or self._gen is not gen or _EXITING.is_set():
                return
            gen.closing.set()
            self._gen = None
            self._retired.append(gen)
            lost = list(self._inflight.values())
            self._inflight.clear()
            self._dispatch_locked()  # queued work goes to a fresh pool
        pids = [p.pid for p in gen.workers if p.sentinel in dead]
        error = WorkerLostError(
            f"worker process {', '.join(map(str, pids))} of the multiprocessing pool died "
            f"while {len(lost)} work item(s) were in flight; they are failed because the "
            "pool cannot tell which one it ran. Likely cause: a task crashed the "
            "interpreter, called os._exit, or was killed (out of memory?). The executor "
            "has started a new pool, so resubmitting the work is safe."
        )
        for future in lost:
            future.set_exception(error)
        gen.pool.terminate()

    # -- shutting down -----------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting work and release the worker processes.

        Safe to call several times.  With ``cancel_futures=True`` the futures
        not yet handed to the pool are cancelled.  With ``wait=True`` it
        returns once every submitted future is done and every worker process
        has exited; with ``wait=False`` it returns at once and the pool
        closes when its last work item finishes.
        """
        with self._intake.lock:
            pending = self._intake.close()  # no future is added from now on
            if cancel_futures:
                while self._queue:
                    self._queue.popleft()[0].cancel()
            idle = not self._inflight and not self._queue
            gen = self._gen
        if not wait:
            if idle and gen is not None:
                gen.closing.set()
                gen.pool.close()
            return
        # cancelled while queued: done, but wait() sees them only once notified
        concurrent.futures.wait([f for f in pending if not f.cancelled()])
        with self._intake.lock:
            gens = [*self._retired, *([self._gen] if self._gen is not None else [])]
        for g in gens:
            if not g.closing.is_set():
                g.closing.set()
                g.pool.close()
        for g in gens:
            if g.watcher is not None and g.watcher is not threading.current_thread():
                g.watcher.join()
            g.pool.join()

    def terminate_workers(self) -> None:
        """Shut down at once: cancel queued work and terminate the worker processes.

        The meaning of Python 3.14's
        ``concurrent.futures.ProcessPoolExecutor.terminate_workers()``:
        futures not yet handed to the pool are cancelled, the ones handed to
        it fail with :class:`~daskexec_stdlib.WorkerLostError` (a
        :class:`concurrent.futures.BrokenExecutor`), and the workers are sent
        ``SIGTERM`` by ``multiprocessing.Pool.terminate()`` (``SIGKILL`` if
        one is still running a second later).  It returns once
        every future is done and every worker process has exited.  Safe to
        call several times, and after :meth:`shutdown`.
        """
        with self._intake.lock:
            self._intake.close()
            queued = [item[0] for item in self._queue]
            self._queue.clear()
            lost = list(self._inflight.values())
            self._inflight.clear()  # a late result finds nothing to complete
            if self._gen is not None:
                self._retired.append(self._gen)
                self._gen = None
            gens = list(self._retired)
            for g in gens:
                g.closing.set()  # the watcher must not report these workers' deaths
        for future in queued:
            future.cancel()
        for g in gens:
            # Pool.terminate() sends SIGTERM, then joins the workers: one whose
            # task ignores SIGTERM is killed after a grace period.  (Not before
            # terminate(): killing an idle worker that holds the task queue's
            # read lock would hang terminate() for good.)
            watchdog = threading.Timer(TERMINATE_GRACE, end_processes, (g.workers, 0))
            watchdog.daemon = True
            watchdog.start()
            try:
                g.pool.terminate()
            finally:
                watchdog.cancel()
                watchdog.join()
            if g.watcher is not None and g.watcher is not threading.current_thread():
                g.watcher.join()
        error = WorkerLostError(
            "terminate_workers() stopped the worker processes of the multiprocessing pool "
            "while this work item was handed to them"
        )
        for future in lost:
            future.set_exception(error)
