"""The executor a compute started from inside one of its own executor's workers runs on.

A task that calls ``.compute()`` with the scheduler that runs it (directly, or
through ``dask.config.set(scheduler=...)``) would wait for work queued behind
itself on a pool whose every thread may be waiting the same way: a deadlock.
Dask's threaded scheduler gives such a nested call a pool of its own; here it
runs in the calling worker thread, one task after another, which can neither
starve nor oversubscribe the pool the outer compute is using.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from daskexec.engine import EngineInfo

T = TypeVar("T")


class InlineExecutor(concurrent.futures.Executor):
    """Runs each call at once, in the calling thread."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def __daskexec_engine__(self) -> EngineInfo:
        return EngineInfo(
            workers=1,
            out_of_process=False,
            capabilities=frozenset({"shared-memory"}),
            name="inline (nested compute)",
        )
