"""The adapter kit: what every executor adapter otherwise writes by hand.

An adapter turns an engine (a process pool, Ray, Lithops) into a
``concurrent.futures.Executor``.  Each one needs the same bookkeeping
around its engine-specific part: whether it still takes work, the futures
it handed out and that are not done yet (``shutdown(cancel_futures=True)``
and ``terminate_workers()`` cancel them), one lock for both, and the
``__daskexec_shut_down__`` hook of the engine protocol.  :class:`Intake`
holds exactly that; the adapter keeps its engine's state under the same
lock.  :func:`results_in_order` is the iterator of an eager ``map``: an
adapter submits every call first (one engine job), then yields.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["Intake", "deadline", "results_in_order"]

F = TypeVar("F", bound="Future[Any]")


class Intake:
    """Whether an executor still takes work, and its unfinished futures.

    ``lock`` is reentrant, so that an adapter may hold it around its own
    state while it submits.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._closed = False
        self._pending: set[Future[Any]] = set()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (``__daskexec_shut_down__`` returns this)."""
        return self._closed

    @contextlib.contextmanager
    def accepting(self) -> Iterator[None]:
        """Hold the lock while submitting; raise as the stdlib pools do once closed.

        Raises
        ------
        RuntimeError
            ``cannot schedule new futures after shutdown``.
        """
        with self.lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
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

    def _forget(self, future: Future[Any]) -> None:
        with self.lock:
            self._pending.discard(future)

    def state(self) -> str:
        """``"running"`` or ``"shut down"``, for an adapter's ``repr``."""
        return "shut down" if self._closed else "running"


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
