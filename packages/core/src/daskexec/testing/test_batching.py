"""Batching and packing, observed through the scheduler's counters."""

from __future__ import annotations

import dask
import pytest
from dask import delayed

import daskexec
from daskexec.testing.graphs import inc, tree_sum, tree_sum_expected


def _independent(n: int) -> list[object]:
    return [delayed(inc)(i, dask_key_name=f"inc-{i}") for i in range(n)]


def test_same_work_goes_out_in_few_map_calls(executor: object, engine: daskexec.EngineInfo) -> None:
    # one task per work item: on an engine that charges ~1 s a call, keep it small
    n = 200 if engine.call_overhead < 0.1 else 12
    s = daskexec.ExecutorScheduler(executor, pack_size=1, max_inflight=1000)
    out = dask.compute(*_independent(n), scheduler=s)
    assert list(out) == [i + 1 for i in range(n)]
    st = s.last_stats
    assert st is not None
    assert st.remote_tasks == n
    assert st.work_items == n, st
    assert st.map_calls <= 5, f"{n} ready inc tasks took {st.map_calls} map calls"


def test_batch_size_bounds_each_map_call(executor: object) -> None:
    s = daskexec.ExecutorScheduler(executor, batch_size=10)
    dask.compute(*_independent(95), scheduler=s)
    st = s.last_stats
    assert st is not None
    assert st.largest_batch <= 10, st
    assert st.map_calls >= 10, st


def test_packing_puts_many_tasks_in_one_work_item(
    executor: object, engine: daskexec.EngineInfo
) -> None:
    n = 1000 if engine.call_overhead < 0.1 else 200  # ~1 s a call: fewer calls
    s = daskexec.ExecutorScheduler(executor, pack_size=50)
    dask.compute(*_independent(n), scheduler=s)
    st = s.last_stats
    assert st is not None
    assert st.work_items <= n // 50, st
    assert st.tasks_per_item >= 50, st


def test_default_packing_beats_one_item_per_task(scheduler: daskexec.ExecutorScheduler) -> None:
    total = tree_sum(2000)
    assert total.compute(scheduler=scheduler) == tree_sum_expected(2000)
    st = scheduler.last_stats
    assert st is not None
    assert st.work_items * 10 <= st.remote_tasks, f"defaults did not pack: {st.summary()}"


def test_a_chain_runs_in_one_work_item(scheduler: daskexec.ExecutorScheduler) -> None:
    x = delayed(inc)(0)
    for _ in range(99):
        x = delayed(inc)(x)
    assert x.compute(scheduler=scheduler) == 100
    st = scheduler.last_stats
    assert st is not None
    assert (st.remote_tasks, st.work_items) == (100, 1), st.summary()


def test_reduction_inside_an_item_stays_on_the_worker(executor: object) -> None:
    s = daskexec.ExecutorScheduler(executor, pack_size=8)
    total = tree_sum(64)
    assert total.compute(scheduler=s) == tree_sum_expected(64)
    st = s.last_stats
    assert st is not None
    # 8 items of 8 incs each reduce to one partial sum on the worker; the
    # 7 adds above them need partials from several items.
    assert st.work_items <= 8 + 7, st.summary()
    assert st.remote_tasks == 127


def test_bookkeeping_runs_in_the_driver(
    scheduler: daskexec.ExecutorScheduler, engine: daskexec.EngineInfo
) -> None:
    dsk = {"a": 1, "b": "a", "c": (inc, "b"), "d": ["c", "b"], "e": (sum, "d")}
    assert scheduler(dsk, "e") == 3
    st = scheduler.last_stats
    assert st is not None
    # the literal a is data, not a task (as in Dask)
    if engine.references is None and engine.store is None:
        assert (st.remote_tasks, st.local_tasks) == (2, 2), st.summary()  # c, e | b, d
    else:
        # results stay remote: the container of references d goes with its data
        assert (st.remote_tasks, st.local_tasks) == (3, 1), st.summary()  # c, d, e | b


def test_results_are_released_after_their_last_consumer(
    scheduler: daskexec.ExecutorScheduler,
) -> None:
    # A long chain of independent pairs: each pair's result is consumed at
    # once, so the driver never holds more than a handful of values.
    outs = [delayed(inc)(delayed(inc)(i)) for i in range(200)]
    total = delayed(sum)(outs)
    assert total.compute(scheduler=scheduler) == sum(i + 2 for i in range(200))
    st = scheduler.last_stats
    assert st is not None
    assert st.peak_values <= 201, st


def test_collect_stats_records_every_compute(executor: object) -> None:
    with daskexec.collect_stats() as runs:
        delayed(inc)(1).compute(scheduler=daskexec.executor_scheduler, executor=executor)
        delayed(inc)(2).compute(scheduler=daskexec.executor_scheduler, executor=executor)
    assert [r.remote_tasks for r in runs] == [1, 1]


@pytest.mark.parametrize("n", [1, 7])
def test_timeout_waits_for_more_of_the_same_work(executor: object, n: int) -> None:
    s = daskexec.ExecutorScheduler(executor, timeout=0.05, pack_size=1)
    out = dask.compute(*_independent(n), scheduler=s)
    assert list(out) == [i + 1 for i in range(n)]
