"""Every work item leaves a record: ordered times, a real worker, a breakdown that adds up."""

from __future__ import annotations

import os
import socket

import dask
import dask.array as da
import pytest

import daskexec
from daskexec.testing.graphs import tree_sum, tree_sum_expected


def _check(stats: daskexec.ComputeStats, engine: daskexec.EngineInfo) -> None:
    items = stats.items
    assert len(items) == stats.work_items + stats.retries, (len(items), stats.summary())
    assert sorted({r.item for r in items}) == list(range(stats.work_items))
    for r in items:
        assert not r.lost, r
        times = [r.ready, r.serialized, r.submitted, r.started, r.ran, r.finished, r.received]
        assert times == sorted(times), r
        assert r.received <= r.decoded, r
        host, pid, thread = r.worker.split("/", 2)
        assert host == r.host and pid.isdigit() and thread, r
        if "separate-processes" in engine.capabilities:
            assert int(pid) != os.getpid(), r
        if "shared-memory" in engine.capabilities:
            assert int(pid) == os.getpid() and host == socket.gethostname(), r
        assert r.tasks >= 1 and r.attempt >= 1
    assert sum(r.tasks for r in items if r.attempt == 1) == stats.remote_tasks
    parts = stats.breakdown
    assert set(parts) == {"tasks", "serialization", "transfer", "engine latency", "scheduling"}
    assert all(v >= 0 for v in parts.values()), parts
    assert sum(parts.values()) == pytest.approx(stats.seconds, rel=0.1), (parts, stats.seconds)
    assert parts["tasks"] > 0, parts
    assert stats.worker_seconds >= sum(r.finished - r.ran for r in items) * 0.999


def test_every_work_item_has_a_record(
    scheduler: daskexec.ExecutorScheduler, engine: daskexec.EngineInfo
) -> None:
    assert dask.compute(tree_sum(64), scheduler=scheduler) == (tree_sum_expected(64),)
    assert scheduler.last_stats is not None
    _check(scheduler.last_stats, engine)
    x = da.ones((400, 400), chunks=(100, 100))
    assert (x + x.T).sum().compute(scheduler=scheduler) == 2 * 400 * 400
    _check(scheduler.last_stats, engine)
    summary = scheduler.last_stats.summary()
    assert "tasks" in summary and "%" in summary, summary
