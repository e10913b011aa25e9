"""The conformance suite on distributed's ``ClientExecutor`` (``Client.get_executor()``).

One ``LocalCluster`` for the session, started with the first executor: two
worker processes of one thread each.  The client is not made Dask's default
scheduler (``set_as_default=False``): with a default client, Dask builds
shuffles and rechunks for its P2P extension, which only distributed's own
scheduler can run.  Each executor is ``client.get_executor(pure=False)``:
every ``submit`` is a call of its own, as in ``concurrent.futures`` (the
default ``pure=True`` makes identical calls one task with one result).

Run from this folder: ``pytest --pyargs daskexec.testing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from distributed import Client, LocalCluster

pytest_plugins = ["daskexec.testing.plugin"]


_NO_CANCEL_FUTURES = (
    "ClientExecutor.shutdown() takes no cancel_futures (Executor.shutdown has had it "
    "since Python 3.9)"
)
_KILLS_WORKER = (
    "a task raising KeyboardInterrupt or SystemExit kills its worker process (KilledWorker); "
    "the nanny's restart then failed here and left the shared cluster with no workers, so "
    "the test is not run"
)

#: What ClientExecutor does not do, as strict xfails: a fix upstream shows as XPASS.
DASKEXEC_KNOWN_FAILURES = {
    "test_executor_contract.py::test_shutdown_is_idempotent": _NO_CANCEL_FUTURES,
    "test_executor_contract.py::test_shutdown_cancel_futures": _NO_CANCEL_FUTURES,
    "test_executor_contract.py::test_submit_after_shutdown_raises": (
        "ClientExecutor.map() does not check for shutdown: it still submits"
    ),
    "test_executor_contract.py::test_unpicklable_result_is_an_error_not_a_lost_worker": (
        "a result that cannot be pickled never reaches the client: the future does not complete"
    ),
    "test_executor_contract.py::test_shutdown_no_wait_still_completes_work": (
        "ClientExecutor.shutdown(wait=False) cancels running futures, as its docstring says; "
        "concurrent.futures lets them finish"
    ),
}
DASKEXEC_NOT_RUN = {
    "test_executor_contract.py::test_base_exception_in_a_task_comes_back[Stop]": (
        "a task's BaseException that is not an Exception comes back, but it escapes into "
        "the client's event loop, and ClientExecutor.shutdown(wait=True) then never returns"
    ),
    "test_executor_contract.py::test_base_exception_in_a_task_comes_back[KeyboardInterrupt]": (
        _KILLS_WORKER
    ),
    "test_executor_contract.py::test_base_exception_in_a_task_comes_back[SystemExit]": (
        _KILLS_WORKER
    ),
}


@pytest.fixture(scope="session")
def daskexec_executor_factory() -> Iterator[Callable[[], Any]]:
    started: list[Client] = []

    def make() -> Any:
        # The cluster starts with the first executor, as in a user's script:
        # its worker processes see the driver's sys.path as it is then.
        if not started:
            cluster = LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            )
            started.append(Client(cluster, set_as_default=False))
        return started[0].get_executor(pure=False)

    try:
        yield make
    finally:
        for client in started:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()


@pytest.fixture(scope="session")
def daskexec_capabilities() -> frozenset[str]:
    # Tasks run in the worker processes.  Not survives-worker-death: a task
    # that kills its worker ends as KilledWorker (not BrokenExecutor) after
    # distributed re-ran it on other workers, and here the nannies' restarts
    # then left the cluster with no workers.  Running tasks cannot be stopped
    # through the executor (no cancel-running).
    return frozenset({"separate-processes"})
