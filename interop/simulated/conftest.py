"""Run daskexec's conformance suite on the simulated platform: ``pytest --pyargs daskexec.testing``.

The executor under test is :class:`daskexec.testing.simulated.SimulatedExecutor`
with the AWS Lambda profile on 8 simulated workers, without lost
invocations (the suite counts invocations and retries exactly) and with
its random latencies, cold starts, stragglers and rate limits kept.
"""

from dataclasses import replace

import pytest

from daskexec.testing.simulated import AWS_LAMBDA, SimulatedExecutor

pytest_plugins = ["daskexec.testing.plugin"]

PLATFORM = replace(AWS_LAMBDA, concurrency=8, failure_rate=0.0)


@pytest.fixture(scope="session")
def daskexec_executor_factory():
    return lambda: SimulatedExecutor(PLATFORM, seed=0)
