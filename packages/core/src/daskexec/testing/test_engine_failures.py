"""Engine failures (a worker process killed mid-graph) are retried within a bound."""

from __future__ import annotations

from typing import Any

import dask
import pytest
from dask import delayed

import daskexec
from daskexec.testing.graphs import add, always_die, die_once, inc

pytestmark = pytest.mark.requires("separate-processes", "survives-worker-death")


def test_killed_worker_is_retried_and_the_answer_is_right(
    executor: Any, daskexec_capabilities: frozenset[str], tmp_path: Any
) -> None:
    marker = str(tmp_path / "died")
    parts = [delayed(inc)(i) for i in range(10)]
    victim = delayed(die_once)(100, marker, dask_key_name="victim")
    total = delayed(sum)([*parts, victim])
    s = daskexec.ExecutorScheduler(executor, retries=3)
    assert total.compute(scheduler=s) == sum(range(1, 11)) + 101
    st = s.last_stats
    assert st is not None
    assert st.invocations == st.work_items + st.retries, st.summary()
    if "retries-internally" not in daskexec_capabilities:
        assert st.engine_failures >= 1 and st.retries >= 1, st.summary()


def test_past_the_bound_a_clear_error_names_the_task(executor: Any) -> None:
    doomed = delayed(always_die)(1, dask_key_name="doomed-task")
    s = daskexec.ExecutorScheduler(executor, retries=1)
    with pytest.raises(daskexec.EngineFailure, match="doomed-task") as info:
        doomed.compute(scheduler=s)
    assert "2 times" in str(info.value) and "retries" in str(info.value)
    assert info.value.__cause__ is not None
    # the executor still works after the failures
    assert dask.compute(delayed(add)(1, 2), scheduler=s) == (3,)


def test_no_retries_means_the_first_loss_fails(
    executor: Any, daskexec_capabilities: frozenset[str], tmp_path: Any
) -> None:
    if "retries-internally" in daskexec_capabilities:
        pytest.skip("the engine declares retries-internally: it re-runs lost work itself")
    s = daskexec.ExecutorScheduler(executor, retries=0)
    with pytest.raises(daskexec.EngineFailure, match="victim"):
        delayed(die_once)(1, str(tmp_path / "m"), dask_key_name="victim").compute(scheduler=s)
