"""daskexec adapters for the standard library's process pools.

Two ``concurrent.futures.Executor`` classes that the daskexec scheduler (and
anyone else) can run work on, registered as the ``processes`` and
``multiprocessing-pool`` backends:

- :class:`ProcessPoolExecutor` wraps ``concurrent.futures.ProcessPoolExecutor``;
- :class:`MultiprocessingPoolExecutor` wraps ``multiprocessing.Pool``.

Both send functions, results and exceptions with cloudpickle (lambdas and
closures work both ways; an exception whose pickle does not load, or a
task's ``BaseException``, comes back on its future), start
workers with a safe start method (``forkserver`` on Linux, ``spawn``
elsewhere), report a dead worker as a :class:`concurrent.futures.BrokenExecutor`
on the affected futures instead of hanging, keep accepting work afterwards,
stop at once with ``terminate_workers()`` (as Python 3.14's process pool),
and describe themselves to the scheduler through ``__daskexec_engine__``.
"""

from __future__ import annotations

from ._common import WorkerLostError
from ._pool import MultiprocessingPoolExecutor
from ._process import ProcessPoolExecutor

__all__ = ["MultiprocessingPoolExecutor", "ProcessPoolExecutor", "WorkerLostError"]
__version__ = "0.1.0"
