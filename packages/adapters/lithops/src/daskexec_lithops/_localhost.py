"""Lithops localhost: stop abandoned calls, notice a dead worker process at once.

On the localhost backend (v2, the default) each call is a process of its own
(``localhost-runner-v2.py run_job``, the Lithops worker handler, which forks
a JobRunner child for the function), started by one of ``worker_processes``
consumer threads of the backend's environment.  Lithops alone falls short
twice:

- A call whose future the caller abandoned (the scheduler cancels every
  call of a compute that failed) still starts when its turn comes and runs
  to its end, holding one of the few local worker slots: the next compute
  waits for it.
- A handler process that dies (killed by a signal, by the out-of-memory
  killer) writes no status, and the client notices only when the call's
  execution timeout passes (3600 s by default on localhost).  A JobRunner
  child it forked runs on, an orphan.

:class:`LocalCalls` hooks into the environment to fix both:

- ``task_processes`` (the environment's map of running call processes,
  filled under ``task_processes_lock``) becomes a dict that tells it about
  every process as it starts.  A call abandoned before its process starts is
  killed the moment it does; one abandoned while running is killed at once
  (its process group: the handler and the JobRunner).  The check and the
  registration take the same lock, so no abandoned call slips through.
- A watchdog thread polls the processes of running calls (``Popen.poll``)
  every :data:`POLL_SECONDS`; when a process has exited and the call's
  status is not in storage (the handler writes it before it exits), the
  call is lost: its process group is killed (an orphaned JobRunner too) and
  the executor is told, which fails the call's future with a
  ``LithopsWorkerError``.
- ``_process_task`` (what a consumer thread runs for one call: start the
  process, wait for it, remove the call's task file) is wrapped
  (:func:`daskexec_lithops._compat.wrap_process_task`) to learn when a call
  is completely over, which is when its job's files may be deleted.

These are internals of ``lithops.localhost.v2`` (3.8).  :func:`install`
returns None when they are not there as expected (another localhost version,
a container environment); the executor then works as Lithops alone does.  A
test of this package fails when :func:`install` stops installing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from daskexec_lithops._compat import wrap_process_task

logger = logging.getLogger("daskexec_lithops")

__all__ = ["POLL_SECONDS", "LocalCalls", "install"]

#: How often the watchdog looks at the processes of running calls.
POLL_SECONDS = 0.2

Call = tuple[str, str]  # (job key, call id)


def install(fexec: Any, on_lost: Callable[[str, str, int | None], None]) -> LocalCalls | None:
    """Hook into the localhost environment of ``fexec``; None where that is not possible."""
    try:
        from lithops.localhost.v2.localhost import DefaultEnvironment
    except ImportError:  # pragma: no cover - another Lithops layout
        return None
    env: Any = getattr(getattr(fexec, "compute_handler", None), "env", None)
    if type(env) is not DefaultEnvironment or not hasattr(os, "killpg"):
        return None
    processes = getattr(env, "task_processes", None)
    lock = getattr(env, "task_processes_lock", None)
    if type(processes) is not dict or lock is None:
        return None
    calls = LocalCalls(env, fexec.executor_id, fexec.internal_storage, on_lost)
    if not wrap_process_task(env, calls.around_call):
        return None
    env.task_processes = _Processes(calls, processes)
    return calls


class _Processes(dict):  # type: ignore[type-arg]
    """The environment's ``task_processes``, reporting each process as it starts."""

    def __init__(self, calls: LocalCalls, items: dict[str, Any]) -> None:
        super().__init__(items)
        self._calls = calls

    def __setitem__(self, key: str, process: Any) -> None:
        super().__setitem__(key, process)
        self._calls._started(key, process)  # under env.task_processes_lock


class LocalCalls:
    """What the localhost backend's call processes do, for one executor."""

    def __init__(
        self,
        env: Any,
        executor_id: str,
        storage: Any,
        on_lost: Callable[[str, str, int | None], None],
    ) -> None:
        self._env = env
        self._executor_id = executor_id
        self._storage = storage
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._running: dict[Call, Any] = {}  # call -> its Popen
        self._abandoned: set[Call] = set()
        self._exited: set[Call] = set()  # its process is gone (and was judged)
        self._over: set[Call] = set()  # the consumer thread is done with it
        self._wake = threading.Event()
        self._closed = False
        self._watchdog: threading.Thread | None = None

    def around_call(self, process_task: Callable[[str], None]) -> Callable[[str], None]:
        """What the environment runs for one call: ``process_task``, then noting it over."""

        def run(task_payload: str) -> None:
            call = _call_of(task_payload)
            try:
                process_task(task_payload)
            finally:
                if call is not None:
                    self._exit(call, None)
                    with self._lock:
                        self._over.add(call)
                        self._changed.notify_all()

        return run

    # -- what the executor asks ------------------------------------------------

    def abandon(self, job_key: str, call_id: str) -> None:
        """Stop the call: kill its process now, or the moment it starts."""
        call = (job_key, call_id)
        with self._env.task_processes_lock:
            with self._lock:
                self._abandoned.add(call)
                process = self._running.get(call)
            if process is not None:
                _kill_group(process)

    def over(self, job_key: str, call_id: str) -> bool:
        """Whether the call's process is gone and Lithops is done with its files."""
        with self._lock:
            return (job_key, call_id) in self._over

    def wait_over(self, calls: list[Call], timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until each of ``calls`` is over."""
        with self._lock:
            self._changed.wait_for(lambda: self._over.issuperset(calls), timeout)

    def forget(self, job_key: str) -> None:
        """Drop what is known of a job's calls (its data was deleted)."""
        with self._lock:
            for calls in (self._abandoned, self._exited, self._over):
                calls.difference_update([c for c in calls if c[0] == job_key])

    def close(self) -> None:
        """Stop the watchdog (the environment's processes are Lithops' to stop)."""
        with self._lock:
            self._closed = True
            watchdog = self._watchdog
        self._wake.set()
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join()

    # -- what the environment tells ------------------------------------------------

    def _started(self, key: str, process: Any) -> None:
        job_key, _, call_id = key.rpartition("-")
        call = (job_key, call_id)
        with self._lock:
            abandoned = call in self._abandoned
            if not abandoned:
                self._running[call] = process
                if self._watchdog is None and not self._closed:
                    self._watchdog = threading.Thread(
                        target=self._watch, name="daskexec-lithops-watchdog", daemon=True
                    )
                    self._watchdog.start()
        if abandoned:
            _kill_group(process)
        else:
            self._wake.set()

    def _watch(self) -> None:
        while True:
            with self._lock:
                if self._closed:
                    return
                running = list(self._running.items())
            if not running:
                self._wake.wait()
                self._wake.clear()
                continue
            for call, process in running:
                if process.poll() is not None:
                    self._exit(call, process)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

    def _exit(self, call: Call, process: Any) -> None:
        """The call's process has exited: if it wrote no status, the call is lost."""
        with self._lock:
            if call in self._exited:
                return
            self._exited.add(call)
            process = self._running.pop(call, process)
            if call in self._abandoned or self._closed:
                return
        if self._has_status(call):
            return
        returncode = None if process is None else process.returncode
        if process is not None:
            _kill_group(process)  # a JobRunner child left orphaned
        job_key, call_id = call
        logger.debug("Lithops call %s of job %s lost (exit code %s)", call_id, job_key, returncode)
        self._on_lost(job_key, call_id, returncode)

    def _has_status(self, call: Call) -> bool:
        job_key, call_id = call
        job_id = job_key[len(self._executor_id) + 1 :]
        try:
            status = self._storage.get_call_status(self._executor_id, job_id, call_id)
        except Exception:
            logger.debug("could not read the status of call %s", call, exc_info=True)
            return True  # unknown: leave it to Lithops' own timeout
        return status is not None


def _call_of(task_payload: str) -> Call | None:
    try:
        payload = json.loads(task_payload)
        return payload["job_key"], payload["call_ids"][0]
    except Exception:
        return None


def _kill_group(process: Any) -> None:
    """SIGKILL the call's process group: the handler and the JobRunner it forked.

    Lithops starts every call process in a session of its own, so its group
    id is its pid; the group outlives a dead handler as long as a member
    does, so the id cannot have been reused by then.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
