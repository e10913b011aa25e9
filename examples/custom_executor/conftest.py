"""Run daskexec's conformance suite on QueueExecutor: ``pytest --pyargs daskexec.testing``."""

import pytest
from queue_executor import QueueExecutor

pytest_plugins = ["daskexec.testing.plugin"]


@pytest.fixture(scope="session")
def daskexec_executor_factory():
    return lambda: QueueExecutor(workers=4)


@pytest.fixture(scope="session")
def daskexec_capabilities():
    return frozenset({"shared-memory"})  # threads in the driver's process
