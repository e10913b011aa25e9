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

# Tests that assert real time: the simulator runs its calls one at a time in
# one thread, so tasks that *sleep* take their real time in sequence (virtual
# time is what the simulator models; a sleep costs none of it).
DASKEXEC_NOT_RUN = {
    "test_errors.py::test_first_error_returns_promptly": (
        "asserts real seconds: forty 0.5 s sleeping tasks run one after another in the "
        "simulator's thread (14 s against a 9 s bound in one run of two)"
    ),
    "test_stragglers.py::test_a_straggler_gets_a_backup_and_the_first_result_wins": (
        "its straggler sleeps: a sleep costs no virtual time, so no item runs long in the "
        "simulator's time, and the calls run one after another in real time"
    ),
    "test_deadlines.py::test_a_hung_item_passes_its_deadline_and_is_retried": (
        "asserts real seconds for items that sleep, which run one after another in the "
        "simulator's thread (40.02 s against a 40 s bound)"
    ),
}


@pytest.fixture(scope="session")
def daskexec_executor_factory():
    return lambda: SimulatedExecutor(PLATFORM, seed=0)
