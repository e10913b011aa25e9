"""The calls of a Lithops job in flight: each one's future, and what ends it.

``lithops.concurrent.futures`` tracks each call (its watcher reads the job
monitor, its resolver threads download results) and completes one future
per call.  :meth:`Calls.bridge` turns each into the caller's future
(:func:`daskexec.kit.bridge`): decoded from the call's outcome, or failed
with :class:`LithopsWorkerError` when Lithops' worker handler reported the
failure (the call's process died, or ran past its execution timeout).
Lithops cannot recall a dispatched call, so the caller's future is
cancelled at once and the call abandoned (on localhost its process is
killed).  On localhost, a call whose process died without a status fails
at once (:meth:`Calls.lost`), where Lithops alone waits for the execution
timeout.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import threading
from typing import Any

from daskexec.kit import bridge, settle
from daskexec_lithops._compat import call_lost, failed_in_handler
from daskexec_lithops._localhost import LocalCalls

__all__ = ["Calls", "LithopsWorkerError"]


class LithopsWorkerError(concurrent.futures.BrokenExecutor):
    """A Lithops call failed in the engine, not in the function it ran.

    Raised (through a future) when the process running the call died before
    reporting a result (``os._exit``, a crash, a kill by the out-of-memory
    killer), when the call ran past its execution timeout, or when Lithops
    lost track of it.  The executor itself keeps working: a retry of the same
    call may succeed.  The error Lithops reported is the ``__cause__``.
    """


class Calls:
    """The tracker's future of each call in flight, by (job key, call id)."""

    def __init__(self, fexec: Any, lock: threading.RLock) -> None:
        self._fexec = fexec
        self._lock = lock
        self._tracked: dict[tuple[str, str], concurrent.futures.Future[Any]] = {}
        #: the localhost hooks (set once installed), else None
        self.local: LocalCalls | None = None

    def bridge(
        self, tracked: list[concurrent.futures.Future[Any]]
    ) -> list[concurrent.futures.Future[Any]]:
        """The caller's futures of the tracker's ``tracked``, one each, in order."""
        ours = []
        for inner in tracked:
            lf = inner.lithops_future  # type: ignore[attr-defined]
            with self._lock:
                self._tracked[(lf.job_key, lf.call_id)] = inner
            inner.add_done_callback(self._untrack)
            ours.append(
                bridge(
                    inner,
                    functools.partial(_engine_failure, inner),
                    decode=_decode,
                    on_cancel=functools.partial(self._abandon, inner),
                )
            )
        return ours

    def _untrack(self, inner: concurrent.futures.Future[Any]) -> None:
        lf = getattr(inner, "lithops_future", None)
        if lf is not None:
            with self._lock:
                self._tracked.pop((lf.job_key, lf.call_id), None)

    def lost(self, job_key: str, call_id: str, returncode: int | None) -> None:
        """A localhost call's process died without reporting: fail its future now."""
        with self._lock:
            inner = self._tracked.get((job_key, call_id))
        if inner is None:
            return
        how = "was killed" if returncode is None or returncode < 0 else "exited"
        code = "" if returncode is None else f" (exit code {returncode})"
        error = LithopsWorkerError(
            f"Lithops call {call_id} of job {job_key} failed in the engine, not in the "
            f"function: its worker process {how}{code} without reporting a result. Likely "
            f"cause: a signal (SIGKILL, the out-of-memory killer) or a crash. The executor "
            f"still takes work: retrying the call may succeed."
        )
        with contextlib.suppress(Exception):
            # Lithops would otherwise watch for its status until the execution timeout
            self._fexec.job_monitor.remove([inner.lithops_future])  # type: ignore[attr-defined]
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            inner.set_exception(error)

    def _abandon(self, inner: concurrent.futures.Future[Any]) -> None:
        """Abandon the call of a cancelled future (its future is cancelled already)."""
        self._untrack(inner)
        lf = getattr(inner, "lithops_future", None)
        if self.local is not None and lf is not None:
            # on localhost, its process stops (or never starts): nothing waits for it
            self.local.abandon(lf.job_key, lf.call_id)
        # Settled, the tracker forgets the call: shutdown() need not wait for it.
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            inner.set_exception(
                concurrent.futures.CancelledError("abandoned: its future was cancelled")
            )


def _decode(future: concurrent.futures.Future[Any], outcome: Any) -> None:
    """Complete ``future`` from a call's outcome (see :mod:`daskexec_lithops._remote`)."""
    if isinstance(outcome, bytes):
        settle(future, outcome)
        return
    future.set_exception(
        LithopsWorkerError(
            f"a Lithops call reported success without the outcome daskexec-lithops "
            f"sends back (got {type(outcome).__name__}); the executor still takes work"
        )
    )


def _engine_failure(inner: concurrent.futures.Future[Any], exc: BaseException) -> BaseException:
    """``exc`` itself for the function's own error; a LithopsWorkerError for the engine's."""
    lf = getattr(inner, "lithops_future", None)
    if lf is None or isinstance(exc, concurrent.futures.BrokenExecutor):
        return exc
    if not (failed_in_handler(lf) or call_lost(lf)):
        return exc
    timeout = getattr(lf, "execution_timeout", None)
    error = LithopsWorkerError(
        f"Lithops call {lf.call_id} of job {lf.job_id} failed in the engine, not in "
        f"the function: {type(exc).__name__}: {exc}. Likely cause: its process died "
        f"(os._exit, a crash, out of memory) or it ran past the execution timeout "
        f"({timeout} s). The executor still takes work: retrying the call may succeed."
    )
    error.__cause__ = exc
    return error
