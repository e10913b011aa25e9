"""Facts the stdlib pools know but do not publish: one function per fact.

Each function reads one private attribute, says which and why, and fails
loudly (naming the Python version and the attribute) when it is gone;
``packages/adapters/stdlib/tests/test_stdlib_compat.py`` checks every one
against the running Python.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing.pool
import sys
from typing import Any

__all__ = ["pool_processes", "process_pool_workers"]


def _gone(what: str, attribute: str, found: object) -> RuntimeError:
    return RuntimeError(
        f"daskexec_stdlib: {what} on Python {sys.version.split()[0]} no longer keeps its "
        f"worker processes in {attribute} (found {type(found).__name__}); "
        "daskexec_stdlib._compat needs updating for this Python"
    )


def pool_processes(pool: multiprocessing.pool.Pool) -> list[Any]:
    """The worker ``Process`` objects of a ``multiprocessing.Pool``, right after it started.

    ``Pool._pool`` is its list of workers (3.8 to 3.14); there is no public
    accessor.  Read once: the pool replaces a dead worker in that list.
    """
    workers = getattr(pool, "_pool", None)
    if not isinstance(workers, list):
        raise _gone("multiprocessing.Pool", "_pool", workers)
    return list(workers)


def process_pool_workers(pool: concurrent.futures.ProcessPoolExecutor) -> dict[int, Any]:
    """The dict of pid to worker ``Process`` that ``pool`` fills as it starts workers.

    ``ProcessPoolExecutor._processes`` (3.10 to 3.14 create it in
    ``__init__`` and only set the attribute to ``None`` on shutdown; the
    dict itself stays the manager thread's), so keep the dict it returns.
    """
    workers = getattr(pool, "_processes", None)
    if not isinstance(workers, dict):
        raise _gone("concurrent.futures.ProcessPoolExecutor", "_processes", workers)
    return workers
