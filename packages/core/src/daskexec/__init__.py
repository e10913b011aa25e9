"""daskexec: run any Dask graph on any ``concurrent.futures.Executor``.

>>> import daskexec, dask.array as da                       # doctest: +SKIP
>>> x = da.random.random((10000, 1000), chunks=(1000, 1000))  # doctest: +SKIP
>>> x.sum(axis=1).compute(scheduler=daskexec.ExecutorScheduler())  # doctest: +SKIP
"""

from daskexec.backends import available_backends, create_executor
from daskexec.engine import CAPABILITIES, EngineInfo, ReferenceEngine, describe
from daskexec.errors import EngineFailure, GraphCycleError, MissingKeyError, RemoteTraceback
from daskexec.scheduler import ExecutorScheduler, executor_scheduler
from daskexec.stats import ComputeStats, collect_stats

__version__ = "0.1.0"

__all__ = [
    "CAPABILITIES",
    "ComputeStats",
    "EngineFailure",
    "EngineInfo",
    "ExecutorScheduler",
    "GraphCycleError",
    "MissingKeyError",
    "ReferenceEngine",
    "RemoteTraceback",
    "__version__",
    "available_backends",
    "collect_stats",
    "create_executor",
    "describe",
    "executor_scheduler",
]
