"""The adapter kit: what every executor adapter otherwise writes by hand.

An adapter turns an engine (a process pool, Ray, Lithops) into a
``concurrent.futures.Executor`` that the daskexec scheduler reads through
the engine protocol (:mod:`daskexec.engine`).  Around its engine-specific
part, each one needs the same pieces; this module holds them, so that an
adapter is its engine's specifics only.

Bookkeeping
    :class:`Intake`: whether the executor still takes work, the futures it
    handed out that are not done yet (``shutdown(cancel_futures=True)`` and
    ``terminate_workers()`` cancel them), one lock for both, the refusal a
    shut-down executor raises, and an optional hook for when it is shut down
    and idle (to release the engine then).

Outcomes
    An engine that pickles a task's result or exception with its own
    machinery breaks in ways a user cannot see coming: a lambda or a class
    defined in ``__main__`` cannot come back; an exception whose pickle does
    not load back (an ``__init__`` whose arguments differ from ``args``)
    kills ``multiprocessing.Pool``'s result-handler thread or marks a
    ``concurrent.futures``/loky pool broken; a ``BaseException`` kills a
    ``multiprocessing.Pool`` worker.  So the worker runs the call inside
    :func:`outcome_of`, which catches everything and returns an *outcome*:
    bytes, cloudpickled right there, holding the result or the exception
    made portable (itself, else rebuilt without its ``__init__``, else a
    :class:`~daskexec.errors.RemoteError` stand-in) with its traceback.  The
    engine only ever carries bytes.  In the driver, :func:`settle` completes
    a future from an outcome (the remote traceback as the exception's
    ``__cause__``, as the stdlib pool does).  The price is one more copy of
    the result's bytes on each side.

Bridging
    :func:`bridge` turns the engine's future (of an outcome, or of a value)
    into the caller's ``concurrent.futures.Future``: it decodes what the
    engine's future holds, translates the engine's own errors (a dead
    worker) into the adapter's, and cancels as the engine allows: either the
    engine's future decides (a stdlib pool), or the caller's future is
    cancelled at once and the engine told to stop (Ray, Lithops).  An engine
    that runs completion callbacks on a thread where blocking deadlocks
    (Ray's I/O thread) hands them to a :class:`Relay`.

Batches
    :func:`eager_map` is ``Executor.map`` over an adapter's ``submit_many``:
    every call submitted first (one engine job), then the results in order
    (:func:`results_in_order`, with :func:`deadline`); :class:`EagerMap`
    makes it an adapter's ``map`` method.

Local process pools
    :func:`local_pool_info` is the engine description of a pool of worker
    processes on this machine (the stdlib pools, loky).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, InvalidStateError
from typing import Any, Protocol, TypeVar

from daskexec._serialize import dumps, portable_exception
from daskexec._store import SharedMemoryStore
from daskexec.engine import EngineInfo
from daskexec.errors import RemoteError, RemoteTraceback, SerializationError

__all__ = [
    "EagerMap",
    "Intake",
    "Relay",
    "bridge",
    "deadline",
    "eager_map",
    "local_pool_info",
    "name_worker",
    "outcome_of",
    "results_in_order",
    "settle",
    "star",
]

logger = logging.getLogger("daskexec")

F = TypeVar("F", bound="Future[Any]")
T = TypeVar("T")

#: How a :func:`bridge` completes the caller's future from the engine's
#: result: :func:`settle` for an outcome, or the adapter's own.
Decode = Callable[["Future[Any]", Any], None]

# -- bookkeeping ----------------------------------------------------------------


class Intake:
    """Whether an executor still takes work, and its unfinished futures.

    Parameters
    ----------
    name
        What the refusal calls the executor (``"RayExecutor"``).
    on_idle
        Called once the intake is closed and every future it tracks is done:
        from the done callback of the last one, or from
        :meth:`notify_if_idle`.  It may be called more than once, from
        several threads, and never with the lock held by the intake itself:
        make it idempotent.

    ``lock`` is reentrant, so that an adapter may hold it around its own
    state while it submits.
    """

    def __init__(self, name: str = "executor", on_idle: Callable[[], object] | None = None) -> None:
        self.lock = threading.RLock()
        self._name = name
        self._on_idle = on_idle
        self._closed = False
        self._pending: set[Future[Any]] = set()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (``__daskexec_shut_down__`` returns this)."""
        return self._closed

    def check(self) -> None:
        """Raise as the stdlib pools do once closed.

        Raises
        ------
        RuntimeError
            ``cannot schedule new futures after shutdown`` (and which executor).
        """
        if self._closed:
            raise RuntimeError(
                f"cannot schedule new futures after shutdown: this {self._name} has been "
                "shut down; create a new one"
            )

    @contextlib.contextmanager
    def accepting(self) -> Iterator[None]:
        """Hold the lock while submitting; raise as :meth:`check` does once closed."""
        with self.lock:
            self.check()
            yield

    def track(self, future: F) -> F:
        """Count ``future`` as unfinished until it is done; return it."""
        with self.lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)
        return future

    def close(self) -> list[Future[Any]]:
        """Take no more work; return the futures not done yet (for cancelling)."""
        with self.lock:
            self._closed = True
            return list(self._pending)

    def pending(self) -> list[Future[Any]]:
        """The futures handed out and not done yet."""
        with self.lock:
            return list(self._pending)

    def idle(self) -> bool:
        """Whether it is closed and every future it tracks is done.

        A future counts as done as soon as it is (its done callbacks, this
        intake's included, may still be on their way).
        """
        with self.lock:
            return self._closed and all(f.done() for f in self._pending)

    def notify_if_idle(self) -> None:
        """Call ``on_idle`` now if the intake is :meth:`idle`."""
        if self._on_idle is not None and self.idle():
            self._on_idle()

    def _forget(self, future: Future[Any]) -> None:
        with self.lock:
            self._pending.discard(future)
        self.notify_if_idle()

    def state(self) -> str:
        """``"running"`` or ``"shut down"``, for an adapter's ``repr``."""
        return "shut down" if self._closed else "running"


# -- outcomes -------------------------------------------------------------------


def outcome_of(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bytes:
    """Run ``fn(*args, **kwargs)`` and return its outcome, pickled (worker side).

    Never raises: whatever ``fn`` raises, ``BaseException`` included, is in
    the outcome, and so is an error pickling its result (a
    :class:`~daskexec.errors.SerializationError`).
    """
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        tb = exc.__traceback__
        return _failure(exc, exc.__cause__, _format(exc, tb.tb_next if tb else None))
    try:
        return dumps((True, result))
    except Exception as exc:
        kind = type(result)
        error = SerializationError(
            f"the result of type {kind.__module__}.{kind.__qualname__} cannot be serialized "
            f"to send it back from the worker process ({type(exc).__name__}: {exc}); "
            "return picklable data instead"
        )
        return _failure(error, exc, _format(exc, exc.__traceback__))


def _format(exc: BaseException, tb: Any) -> str:
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _failure(exc: BaseException, cause: BaseException | None, tb: str) -> bytes:
    try:
        portable_cause = None if cause is None else portable_exception(cause, tb)
        return dumps((False, portable_exception(exc, tb), portable_cause, tb))
    except Exception:  # str() or vars() of the exception itself fails
        kind = type(exc)
        stand_in = RemoteError(f"{kind.__module__}.{kind.__qualname__}", "<unprintable>", tb)
        return dumps((False, stand_in, None, tb))


def settle(future: Future[Any], outcome: bytes) -> None:
    """Complete ``future`` with the result or the exception in ``outcome`` (driver side).

    The exception gets the remote traceback as its ``__cause__`` (a
    :class:`~daskexec.errors.RemoteTraceback`).  Never raises on a bad
    outcome (it runs in a pool's result-handling thread): one that cannot
    be unpickled becomes a ``SerializationError`` on ``future``.
    """
    try:
        ok, value, *failure = pickle.loads(outcome)
    except BaseException as exc:
        error = SerializationError(
            f"a task's result or exception cannot be deserialized in the driver "
            f"({type(exc).__name__}: {exc}); is every module it needs importable here?"
        )
        error.__cause__ = exc
        future.set_exception(error)
        return
    if ok:
        future.set_result(value)
        return
    cause, tb = failure
    remote = RemoteTraceback(tb)
    if cause is not None:
        cause.__cause__ = remote
        value.__cause__ = cause
    else:
        value.__cause__ = remote
    future.set_exception(value)


# -- bridging -------------------------------------------------------------------


class Relay:
    """One thread that runs the callbacks handed to it, in order.

    For an engine that completes its futures on a thread of its own where
    blocking deadlocks (Ray's I/O thread: a ``ray.get`` there never
    returns), while a caller's done callbacks may block.  The thread starts
    with the first :meth:`put`.  :meth:`stop` ends it; only stop it once
    every future it serves is done: what is put afterwards is dropped.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Callable[[Any], object], Any] | None]
        self._queue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def put(self, fn: Callable[[Any], object], arg: Any) -> None:
        """Have the thread call ``fn(arg)``."""
        with self._lock:
            if self._stopped:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put((fn, arg))

    def stop(self) -> None:
        """End the thread once it has run what it was given; wait for that (unless on it).

        Safe to call several times.
        """
        with self._lock:
            self._stopped = True
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(None)
        if thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                item[0](item[1])
            except Exception:  # the thread must live on: every later future needs it
                logger.exception("%s: a callback failed", self._name)
            del item  # hold nothing (a settled future, its result) while idle


class _Bridge(Future[Any]):
    """The caller's future, fed by the engine's."""

    def __init__(
        self,
        inner: Future[Any],
        translate: Callable[[BaseException], BaseException] | None,
        decode: Decode,
        on_cancel: Callable[[], object] | None,
    ) -> None:
        super().__init__()
        self._inner = inner
        self._translate = translate
        self._decode = decode
        self._on_cancel = on_cancel

    def cancel(self) -> bool:
        if self._on_cancel is None:
            # The engine decides: if it cancels its future, on_inner_done cancels this one.
            self._inner.cancel()
            return self.cancelled()
        if self.cancelled():
            return True
        if not Future.cancel(self):
            return False
        try:
            self.set_running_or_notify_cancel()  # lets wait() and as_completed() see it
        except RuntimeError:  # another thread cancelled it at the same moment: its call
            return True
        self._on_cancel()
        return True

    def running(self) -> bool:
        if self._on_cancel is not None:
            return Future.running(self)
        return self._inner.running() and not self.done()

    def on_inner_done(self, inner: Future[Any]) -> None:
        if self.done():  # cancelled here, and the engine's call ended anyway
            return
        if inner.cancelled():
            if Future.cancel(self):
                with contextlib.suppress(RuntimeError):  # notified already
                    self.set_running_or_notify_cancel()
            return
        error = inner.exception()
        try:
            if error is None:
                self._decode(self, inner.result())
                return
            if self._translate is not None:
                with contextlib.suppress(Exception):  # never lose a failure over its looks
                    error = self._translate(error)
            self.set_exception(error)
        except InvalidStateError:  # cancelled meanwhile
            pass


def bridge(
    inner: Future[Any],
    translate: Callable[[BaseException], BaseException] | None = None,
    *,
    decode: Decode = settle,
    on_cancel: Callable[[], object] | None = None,
    relay: Relay | None = None,
) -> Future[Any]:
    """Return the caller's future of what the engine's future ``inner`` will hold.

    Parameters
    ----------
    inner
        The engine's future.
    translate
        Applied to ``inner``'s own exception (the engine's failure, not the
        task's); the returned exception fails the caller's future.  When it
        raises, the original exception is used.
    decode
        Completes the caller's future from ``inner``'s result; by default
        :func:`settle`, for an outcome of :func:`outcome_of`.
    on_cancel
        ``None``: the engine decides; ``cancel()`` cancels ``inner``, and the
        caller's future is cancelled when ``inner`` is.  Else ``cancel()``
        cancels the caller's future at once (until it is done) and then
        calls ``on_cancel()`` to stop the engine's call; ``inner``'s later
        completion is ignored.
    relay
        If given, ``inner``'s completion is handled on the relay's thread
        instead of the thread that completes ``inner``.

    Returns
    -------
    concurrent.futures.Future
        Cancelled when ``inner`` is cancelled, else completed by ``decode``
        or with ``inner``'s translated exception.
    """
    outer = _Bridge(inner, translate, decode, on_cancel)
    if relay is None:
        inner.add_done_callback(outer.on_inner_done)
    else:
        inner.add_done_callback(functools.partial(relay.put, outer.on_inner_done))
    return outer


# -- batches --------------------------------------------------------------------


def deadline(timeout: float | None) -> float | None:
    """The ``time.monotonic()`` by which a ``map`` with ``timeout`` must be done."""
    return None if timeout is None else time.monotonic() + timeout


def results_in_order(futures: list[Future[Any]], until: float | None = None) -> Iterator[Any]:
    """Yield the results of ``futures`` in order, as ``Executor.map`` does.

    Past ``until`` (from :func:`deadline`, taken before submitting, as the
    stdlib does), ``TimeoutError``.  Closing the iterator early (or an
    error) cancels the calls not yet consumed.
    """
    pending = list(reversed(futures))

    def results() -> Iterator[Any]:
        try:
            while pending:
                left = None if until is None else until - time.monotonic()
                yield pending[-1].result(left)
                pending.pop()
        finally:
            for f in pending:
                f.cancel()

    return results()


def star(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """``fn(*args)``: a batch's function of one payload, for ``map`` over ``submit_many``."""
    return fn(*args)


def eager_map(
    submit_many: Callable[[Callable[[Any], Any], list[Any]], list[Future[Any]]],
    fn: Callable[..., T],
    iterables: tuple[Iterable[Any], ...],
    timeout: float | None = None,
    chunksize: int = 1,
) -> Iterator[T]:
    """``Executor.map`` over ``submit_many``: every call submitted first, as one batch.

    ``submit_many(f, payloads)`` runs ``f(payload)`` for every payload; here
    ``f`` is ``functools.partial(star, fn)`` and each payload one tuple of
    arguments.  Results come in order; ``TimeoutError`` if one is not ready
    ``timeout`` seconds after this call; closing the iterator early cancels
    the calls not yet consumed.  ``chunksize`` is checked (``>= 1``, as the
    stdlib process pool does) and otherwise left to the engine.

    Raises
    ------
    ValueError
        If ``chunksize < 1``.
    """
    if chunksize < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize!r}")
    until = deadline(timeout)
    futures = submit_many(functools.partial(star, fn), list(zip(*iterables, strict=False)))
    return results_in_order(futures, until)


class _SubmitsMany(Protocol):
    def submit_many(
        self, fn: Callable[[Any], Any], payloads: list[Any], /
    ) -> list[Future[Any]]: ...


class EagerMap:
    """Mixin: ``Executor.map`` as one batch through the executor's own ``submit_many``.

    Put it before ``concurrent.futures.Executor`` among the bases of an
    executor that has ``submit_many(fn, payloads)`` (one engine job for a
    whole batch).
    """

    def map(
        self: _SubmitsMany,
        fn: Callable[..., T],
        *iterables: Iterable[Any],
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """Like ``Executor.map``, but every call is submitted, as one batch, before this returns.

        Results come in order; ``TimeoutError`` if one is not ready
        ``timeout`` seconds after ``map`` was called; closing the iterator
        early cancels the calls not yet consumed.  ``chunksize`` must be
        ``>= 1`` and is otherwise the engine's business (see
        :func:`eager_map`).
        """
        return eager_map(self.submit_many, fn, iterables, timeout, chunksize)


# -- local process pools --------------------------------------------------------


def local_pool_info(workers: int, name: str, call_overhead: float = 1e-3) -> EngineInfo:
    """The engine description of a pool of worker processes on this machine.

    Out of process, results kept in shared memory
    (:class:`~daskexec.SharedMemoryStore`), with the capabilities
    ``separate-processes``, ``survives-worker-death`` (a dead worker fails
    its work as a ``BrokenExecutor`` and the pool goes on) and
    ``cancel-running`` (``terminate_workers()`` stops running work).
    ``call_overhead`` defaults to a round trip through a pipe and two
    (un)pickles, about a millisecond.
    """
    return EngineInfo(
        workers=workers,
        out_of_process=True,
        call_overhead=call_overhead,
        capabilities=frozenset({"separate-processes", "survives-worker-death", "cancel-running"}),
        store=SharedMemoryStore,
        name=name,
    )


def name_worker(label: str) -> None:
    """Give the engine's own name for this worker to the work items it runs.

    Called by an adapter in its workers (a Lithops activation id, a Ray
    node); each work item's record (``ComputeStats.items``, the timeline)
    then shows it besides ``host/pid/thread``.
    """
    from daskexec._worker import LABEL_VARIABLE

    os.environ[LABEL_VARIABLE] = label
