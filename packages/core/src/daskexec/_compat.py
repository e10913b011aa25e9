"""Facts the stdlib pools know but do not publish: one function per fact.

The core reads executors only through the engine protocol
(:mod:`daskexec.engine`) and public stdlib API, except here.  Each function
reads one private attribute of a ``concurrent.futures`` pool, says which,
and returns ``None`` when the attribute is missing (another Python), so
that the caller falls back to a safe default; ``tests/test_compat.py``
fails loudly if a supported Python drops the name.
"""

from __future__ import annotations

import concurrent.futures


def pool_workers(executor: concurrent.futures.Executor) -> int | None:
    """How many workers a stdlib thread or process pool runs, if it is one.

    Both keep the ``max_workers`` they were created with (or their default)
    in ``_max_workers``; neither has a public accessor.
    """
    if not isinstance(
        executor, (concurrent.futures.ThreadPoolExecutor, concurrent.futures.ProcessPoolExecutor)
    ):
        return None
    workers = getattr(executor, "_max_workers", None)
    return workers if isinstance(workers, int) and workers >= 1 else None


def pool_shut_down(executor: concurrent.futures.Executor) -> bool | None:
    """Whether a stdlib thread or process pool was shut down, if it is one.

    ``ThreadPoolExecutor`` records it in ``_shutdown``, ``ProcessPoolExecutor``
    in ``_shutdown_thread``; neither has a public accessor.
    """
    if isinstance(executor, concurrent.futures.ThreadPoolExecutor):
        name = "_shutdown"
    elif isinstance(executor, concurrent.futures.ProcessPoolExecutor):
        name = "_shutdown_thread"
    else:
        return None
    state = getattr(executor, name, None)
    return state if isinstance(state, bool) else None
