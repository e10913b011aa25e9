"""daskexec: run any Dask graph on any ``concurrent.futures.Executor``.

>>> import daskexec, dask.array as da                       # doctest: +SKIP
>>> x = da.random.random((10000, 1000), chunks=(1000, 1000))  # doctest: +SKIP
>>> x.sum(axis=1).compute(scheduler=daskexec.ExecutorScheduler())  # doctest: +SKIP
"""

import dask.config

from daskexec._checkpoint import Checkpoint, CheckpointError, CheckpointStorage, DirectoryStorage
from daskexec._store import BackgroundDeleter, ResultStore, SharedMemoryStore, StoreClient
from daskexec.backends import available_backends, create_executor
from daskexec.engine import CAPABILITIES, EngineInfo, ReferenceEngine, describe
from daskexec.errors import (
    EngineFailure,
    GraphCycleError,
    ItemTimeoutError,
    MissingKeyError,
    RemoteError,
    RemoteTraceback,
    SerializationError,
)
from daskexec.scheduler import ExecutorScheduler, executor_scheduler
from daskexec.stats import ComputeStats, collect_stats

__version__ = "0.1.0"

__all__ = [
    "CAPABILITIES",
    "BackgroundDeleter",
    "Checkpoint",
    "CheckpointError",
    "CheckpointStorage",
    "ComputeStats",
    "DirectoryStorage",
    "EngineFailure",
    "EngineInfo",
    "ExecutorScheduler",
    "GraphCycleError",
    "ItemTimeoutError",
    "MissingKeyError",
    "ReferenceEngine",
    "RemoteError",
    "RemoteTraceback",
    "ResultStore",
    "SerializationError",
    "SharedMemoryStore",
    "StoreClient",
    "__version__",
    "available_backends",
    "collect_stats",
    "create_executor",
    "describe",
    "executor_scheduler",
]


def _shorten_tracebacks() -> None:
    """Hide the scheduler's frames from task tracebacks, as Dask hides its own schedulers'.

    ``dask.compute`` drops frames of the modules listed in
    ``admin.traceback.shorten``; ours join that list as a default, so that a
    user's configuration still wins.
    """
    ours = r"daskexec[\\/](scheduler|_run|_worker|_inline)\.py"
    paths = list(dask.config.get("admin.traceback.shorten", None) or [])
    if ours not in paths:
        dask.config.update_defaults({"admin": {"traceback": {"shorten": [*paths, ours]}}})


_shorten_tracebacks()
