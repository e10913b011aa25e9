"""Packing for many workers: items shrink as a batch drains, and the scheduler packs
from what tasks cost on the platform (``_packing.pack_size``, the simulated clock)."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from dask._task_spec import Task

import daskexec
from daskexec._packing import AMORTIZE, HEDGE, pack_size
from daskexec._stragglers import BackupRule, Watch
from daskexec._worker import WorkItem, run_item
from daskexec.testing.simulated import AWS_LAMBDA, Fixed, SimulatedExecutor, spend


def test_items_shrink_as_a_batch_drains() -> None:
    # 1,000 workers, a 1 s call, 100 ms tasks: 10x the overhead is 100 tasks
    sizes = [pack_size(n, 1000, 1.0, 0.1) for n in (500_000, 100_000, 40_000, 10_000)]
    assert sizes[0] == math.ceil(AMORTIZE * 1.0 / 0.1)
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[1] == 50  # half of the spread of 100 per worker
    assert sizes[-1] == 10  # never under one overhead's worth of work


def test_cheap_tasks_still_fill_few_items() -> None:
    # not worth one item per worker: as many as the work pays for
    assert pack_size(10_000, 1000, 1.0, 1e-5) == 10_000
    # a thread pool's items are as before: the amortized size
    assert pack_size(100_000, 2, 5e-5, 1e-6) == math.ceil(AMORTIZE * 5e-5 / 1e-6)


def test_an_unmeasured_large_batch_goes_out_in_smaller_items() -> None:
    workers = 1000
    small = (HEDGE - 1) * workers
    assert pack_size(small, workers, 1.0, None) == HEDGE - 1  # the spread
    assert pack_size(500_000, workers, 1.0, None) == math.ceil(500 / 4)
    assert pack_size(500_000, workers, 1e-4, None) == 1  # a cheap engine probes
    assert pack_size(1000, 2, 0.5, None) == 500  # two workers: one item each


def slow_leaf(i: int) -> int:
    spend(0.5)
    return i


def spent_inc(i: int, seconds: float) -> int:
    spend(seconds)
    return i + 1


def test_the_simulated_platform_times_items_in_simulated_time() -> None:
    item = WorkItem(
        tasks=[Task(("leaf", i), slow_leaf, i) for i in range(4)],
        inputs={},
        exports=[("leaf", i) for i in range(4)],
    )
    ex = SimulatedExecutor(AWS_LAMBDA, straggler_rate=0.0, failure_rate=0.0)
    try:
        result = ex.submit(run_item, item).result()
    finally:
        ex.shutdown()
    assert result.values == [0, 1, 2, 3]
    # what the scheduler packs from: the simulated cost, not the real microseconds
    assert result.seconds == pytest.approx(4 * 0.5, rel=0.01)
    assert run_item(WorkItem([], {}, [])).seconds < 0.5  # real time outside the simulator


def test_a_thousand_workers_are_kept_busy_to_the_end() -> None:
    # 20,000 tasks of 0.5 s on 1,000 workers: 10 s of work each; 1% of the calls 4x slower
    ex = SimulatedExecutor(AWS_LAMBDA, seed=1, cold_start=Fixed(0.5), failure_rate=0.0)
    try:
        s = daskexec.ExecutorScheduler(ex)
        dsk: dict[Any, Any] = {("leaf", i): (spent_inc, i, 0.5) for i in range(20_000)}
        dsk["total"] = (sum, [("leaf", i) for i in range(20_000)])
        assert s(dsk, "total") == sum(range(1, 20_001))
        run = ex.last_run
        assert run is not None and run.stragglers > 0
        assert run.peak_concurrency == 1000
        stats = s.last_stats
        assert stats is not None
        sizes = [r.tasks for r in stats.items if r.group == "leaf"]
        # the first items carry more than the last: a straggler at the end costs little
        assert sum(sizes[-100:]) < sum(sizes[:100])
    finally:
        ex.shutdown()


def test_the_straggler_watch_finds_the_longest_running_first() -> None:
    rule = BackupRule(min_tasks=1, min_done=0.0, factor=2.0, min_slack=0.0)
    w = Watch(workers=100, call_overhead=0.0, count_tasks=lambda: Counter({0: 50}), rule=rule)
    for i in range(10):
        w.submitted(i, 0, 1, float(i), None, True)
    w.ended(0, 1.0, ok=True, task_groups=[0])  # median 1 s: a copy after 2 s
    assert w.due(1.0) == pytest.approx(2.0)  # item 1 started at 1.0
    late, slow = w.check(4.5)
    assert late == [] and slow == [1, 2]  # started at 1.0 and 2.0
    assert w.due(4.5) == pytest.approx(0.5)  # item 3, started at 3.0
    w.submitted("d", 1, 1, 5.0, 1.0, False)  # a deadline, no backup
    late, slow = w.check(6.0)
    assert late == ["d"] and slow == [3, 4]
