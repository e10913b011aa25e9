"""daskexec-ray: Ray as a ``concurrent.futures.Executor`` and a daskexec backend.

>>> import dask.array as da, daskexec
>>> from daskexec_ray import RayExecutor
>>> with RayExecutor() as ex:  # a local Ray, or RayExecutor("ray://head:10001")
...     da.ones(10, chunks=5).sum().compute(scheduler=daskexec.ExecutorScheduler(ex))

Registered as the ``ray`` backend (``daskexec.create_executor("ray")``).
"""

from daskexec_ray._executor import TASK_OPTIONS, RayEngineError, RayExecutor

__all__ = ["TASK_OPTIONS", "RayEngineError", "RayExecutor"]
__version__ = "0.1.0"
