"""daskexec-lithops: Dask graphs on serverless functions, through Lithops.

:class:`LithopsExecutor` is a ``concurrent.futures.Executor`` whose calls run
on Lithops: on the localhost backend when nothing is configured, on any cloud
backend (AWS Lambda, Google Cloud Run, IBM Code Engine, Kubernetes, ...) that
a Lithops config names.  It describes itself to the daskexec scheduler
(``__daskexec_engine__``) and runs each batch of the scheduler as one Lithops
job (``submit_many``)::

    import daskexec
    from daskexec_lithops import LithopsExecutor

    with LithopsExecutor() as executor:
        x.compute(scheduler=daskexec.ExecutorScheduler(executor))
"""

from daskexec_lithops._checkpoint import LithopsCheckpointStorage
from daskexec_lithops._executor import (
    CLOUD_CALL_OVERHEAD,
    LOCALHOST_CALL_OVERHEAD,
    LithopsExecutor,
    LithopsWorkerError,
)

__version__ = "0.1.0"

__all__ = [
    "CLOUD_CALL_OVERHEAD",
    "LOCALHOST_CALL_OVERHEAD",
    "LithopsCheckpointStorage",
    "LithopsExecutor",
    "LithopsWorkerError",
]
