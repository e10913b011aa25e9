"""The conformance suite on parsl's ``ParslPoolExecutor``, over a HighThroughputExecutor.

Parsl runs one DataFlowKernel per process: the session loads one with its
first executor, with parsl's HighThroughputExecutor on a ``LocalProvider``
(one block of two worker processes on this machine, talking over loopback
only, unencrypted), and every
executor the suite makes is ``ParslPoolExecutor(dfk=dfk)`` on it: shutting
one down leaves the kernel to the others.  The HighThroughputExecutor is
how parsl runs on a cluster (the provider is what changes); parsl's
``ThreadPoolExecutor`` would run tasks in this process, which the suite
already covers with ``concurrent.futures.ThreadPoolExecutor``.

Run from this folder: ``pytest --pyargs daskexec.testing`` (parsl's
``interchange.py`` and ``process_worker_pool.py`` must be on ``PATH``: run it
from the environment parsl is installed in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import parsl
import pytest
from parsl.concurrent import ParslPoolExecutor
from parsl.config import Config
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

pytest_plugins = ["daskexec.testing.plugin"]


_NO_SIGNATURE = (
    "parsl makes every function an app and reads its signature: builtins without one "
    "(int, time.sleep, bytes.upper, threading.Lock) are refused at submit with ValueError"
)
_WORKER_LOST = (
    "a task raising a BaseException that is not an Exception ends its worker process: the "
    "future fails with WorkerLost (a fresh worker takes the next tasks)"
)

#: What ParslPoolExecutor does not do, as strict xfails: a fix upstream shows as XPASS.
DASKEXEC_KNOWN_FAILURES = {
    "test_executor_contract.py::test_submit_keyword_arguments": _NO_SIGNATURE,
    "test_executor_contract.py::test_submit_exception_keeps_type_and_message": _NO_SIGNATURE,
    "test_executor_contract.py::test_bytes_payload_round_trip": _NO_SIGNATURE,
    "test_executor_contract.py::test_result_timeout": _NO_SIGNATURE,
    "test_executor_contract.py::test_map_timeout": _NO_SIGNATURE,
    "test_executor_contract.py::test_shutdown_cancel_futures": _NO_SIGNATURE,
    "test_executor_contract.py::test_unpicklable_result_is_an_error_not_a_lost_worker": (
        _NO_SIGNATURE
    ),
    "test_user_code.py::test_functions_and_classes_from_a_module_beside_the_driver": (
        "the workers are programs of their own, started by parsl's provider as on a "
        "cluster: they import what is installed, not modules on the driver's sys.path "
        "(daskexec names the missing module)"
    ),
    "test_executor_contract.py::test_worker_death_is_broken_executor_and_executor_recovers": (
        "a worker's death fails its future with parsl's WorkerLost, not a BrokenExecutor "
        "(the pool starts a new worker, and the scheduler retries WorkerLost as an engine "
        "failure)"
    ),
    "test_executor_contract.py::test_submit_after_shutdown_raises": (
        "ParslPoolExecutor.map() does not check for shutdown: it still submits"
    ),
    "test_executor_contract.py::test_context_manager_shuts_down": (
        "an executor made with dfk= leaves the kernel to its owner: leaving the with block "
        "neither waits nor shuts down (one kernel per process: the suite's executors share it)"
    ),
    "test_executor_contract.py::test_base_exception_in_a_task_comes_back[Stop]": _WORKER_LOST,
    "test_executor_contract.py::test_base_exception_in_a_task_comes_back[KeyboardInterrupt]": (
        _WORKER_LOST
    ),
    "test_executor_contract.py::test_base_exception_in_a_task_comes_back[SystemExit]": (
        _WORKER_LOST
    ),
}
DASKEXEC_NOT_RUN = {
    "test_executor_contract.py::test_exception_that_cannot_be_unpickled": (
        "an exception whose pickle does not load ends the HighThroughputExecutor's result "
        "thread (TypeError in _result_queue_worker): no future of the kernel completes after "
        "it, and the session would hang"
    ),
}


@pytest.fixture(scope="session")
def daskexec_executor_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[], Any]]:
    kernels: list[parsl.DataFlowKernel] = []

    def make() -> Any:
        # The kernel (and its worker processes) starts with the first
        # executor, as in a user's script: the workers see the driver's
        # sys.path as it is then.
        if not kernels:
            kernels.append(parsl.load(_config(str(tmp_path_factory.mktemp("parsl-run")))))
        return ParslPoolExecutor(dfk=kernels[0])

    try:
        yield make
    finally:
        for dfk in kernels:
            dfk.cleanup()


def _config(run_dir: str) -> Config:
    return Config(
        executors=[
            HighThroughputExecutor(
                label="htex_local",
                address="127.0.0.1",
                max_workers_per_node=2,
                cores_per_worker=1,
                encrypted=False,
                # the pool notices a dead worker process on its heartbeat: every
                # 2 s rather than parsl's default 30 s
                heartbeat_period=2,
                heartbeat_threshold=20,
                provider=LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
            )
        ],
        strategy="none",
        run_dir=run_dir,
        usage_tracking=0,
    )


@pytest.fixture(scope="session")
def daskexec_capabilities() -> frozenset[str]:
    # Tasks run in the HighThroughputExecutor's worker processes; the pool
    # replaces a worker that dies, and the lost task fails with WorkerLost.
    # Parsl futures cannot be cancelled (AppFuture.cancel raises), so running
    # work cannot be stopped.
    return frozenset({"separate-processes", "survives-worker-death"})
