"""Outcomes: how results and exceptions come back from a process pool, whole.

Why
---
A process pool pickles what a task returns or raises inside its own
machinery, with the standard pickler, and that breaks in ways a user cannot
see coming:

- a lambda, a closure or an instance of a class defined in ``__main__``
  cannot be returned at all;
- an exception whose pickle does not load back (an ``__init__`` whose
  arguments differ from ``args``) kills ``multiprocessing.Pool``'s
  result-handler thread (the future never completes, the pool is broken for
  good) and marks a ``concurrent.futures`` or loky pool broken, which fails
  every other caller's work too;
- a ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``, a user's own
  subclass) kills a ``multiprocessing.Pool`` worker.

What
----
An adapter never lets the pool see a task's result or exception.  In the
worker, :func:`outcome_of` runs the call, catches everything, and returns an
*outcome*: bytes, pickled right there with cloudpickle, holding either the
result or the exception made portable by
:func:`daskexec._serialize.portable_exception` (itself, else rebuilt without
its ``__init__``, else a :class:`~daskexec.errors.RemoteError` stand-in),
with the formatted traceback.  A result that cannot be pickled becomes a
:class:`~daskexec.errors.SerializationError` outcome.  The pool only ever
carries bytes, which it always can.

In the driver, :func:`settle` completes a future from an outcome: the result,
or the exception with the remote traceback as its ``__cause__`` (a
:class:`~daskexec.errors.RemoteTraceback`, as the stdlib pool does).  An
outcome that cannot be unpickled here becomes a ``SerializationError`` on
that future.  :func:`bridge` turns the pool's future of an outcome into the
caller's future of the value: cancelling it cancels the pool's future (so
pending work is dropped, and ``shutdown(cancel_futures=True)`` on the pool
cancels it), and an error of the pool itself (a dead worker, a
:class:`concurrent.futures.BrokenExecutor`) passes through unchanged.

The price is one more copy of the result's bytes on each side of the pipe.
"""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from daskexec._serialize import dumps, portable_exception
from daskexec.errors import RemoteError, RemoteTraceback, SerializationError

__all__ = ["bridge", "outcome_of", "settle"]


def outcome_of(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bytes:
    """Run ``fn(*args, **kwargs)`` and return its outcome, pickled (worker side).

    Never raises: whatever ``fn`` raises, ``BaseException`` included, is in
    the outcome, and so is an error pickling its result.
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

    Never raises (it runs in a pool's result-handling thread): an outcome
    that cannot be unpickled becomes a ``SerializationError`` on ``future``.
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


class _Bridge(Future[Any]):
    """The caller's future of a value, fed by the pool's future of its outcome."""

    def __init__(
        self, inner: Future[Any], translate: Callable[[BaseException], BaseException] | None
    ) -> None:
        super().__init__()
        self._inner = inner
        self._translate = translate

    def cancel(self) -> bool:
        # The pool decides: if it cancels its future, on_inner_done cancels this one.
        self._inner.cancel()
        return self.cancelled()

    def running(self) -> bool:
        return self._inner.running() and not self.done()

    def on_inner_done(self, inner: Future[Any]) -> None:
        if inner.cancelled():
            Future.cancel(self)
            self.set_running_or_notify_cancel()  # lets wait() and as_completed() see it
            return
        error = inner.exception()
        if error is None:
            settle(self, inner.result())
        else:
            self.set_exception(error if self._translate is None else self._translate(error))


def bridge(
    inner: Future[Any],
    translate: Callable[[BaseException], BaseException] | None = None,
) -> Future[Any]:
    """Return a future of the value whose outcome ``inner`` will hold.

    It completes when ``inner`` does: with the outcome's result or exception
    (see :func:`settle`), cancelled when ``inner`` is cancelled, or with
    ``inner``'s own exception, an engine failure, passed through
    ``translate`` when given.  Its ``cancel()`` cancels ``inner``.
    """
    outer = _Bridge(inner, translate)
    inner.add_done_callback(outer.on_inner_done)
    return outer
