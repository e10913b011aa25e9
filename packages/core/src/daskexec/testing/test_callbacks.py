"""Dask's callbacks see every task start and finish."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import dask.array as da
from dask.callbacks import Callback
from dask.diagnostics import Profiler, ProgressBar

import daskexec
from daskexec.testing.graphs import tree_sum, tree_sum_expected


class Recorder(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []

    def _start(self, dsk: Any) -> None:
        self.events.append(("start", len(dsk)))

    def _start_state(self, dsk: Any, state: Any) -> None:
        self.events.append(("start_state", sorted(state)))

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        self.events.append(("pretask", key))

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.events.append(("posttask", (key, result)))

    def _finish(self, dsk: Any, state: Any, errored: bool) -> None:
        self.events.append(("finish", errored))


def test_custom_callback_sees_every_task(scheduler: daskexec.ExecutorScheduler) -> None:
    total = tree_sum(64)
    graph = dict(total.__dask_graph__())
    with Recorder() as rec:
        assert total.compute(scheduler=scheduler) == tree_sum_expected(64)
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "start" and kinds[1] == "start_state" and kinds[-1] == "finish"
    assert rec.events[-1] == ("finish", False)
    pre = [k for kind, k in rec.events if kind == "pretask"]
    post = {k: v for kind, (k, v) in ((e[0], e[1]) for e in rec.events if e[0] == "posttask")}
    assert sorted(map(str, pre)) == sorted(map(str, graph)), "pretask missed tasks"
    assert set(post) == set(graph), "posttask missed tasks"
    assert post[total.key] == tree_sum_expected(64)
    # every task's result is the real value, also inside packed work items
    assert all(isinstance(v, int) for v in post.values())


def test_callback_finish_reports_errors(scheduler: daskexec.ExecutorScheduler) -> None:
    from dask import delayed

    from daskexec.testing.graphs import fail

    with Recorder() as rec, contextlib.suppress(ValueError):
        delayed(fail)(1).compute(scheduler=scheduler)
    assert rec.events[-1] == ("finish", True)


def test_progress_bar(scheduler: daskexec.ExecutorScheduler) -> None:
    out = io.StringIO()
    x = da.ones((200, 200), chunks=(20, 20))
    with ProgressBar(out=out, minimum=0, dt=0.01):
        assert x.sum().compute(scheduler=scheduler) == 40_000
    text = out.getvalue()
    assert "100%" in text, text


def test_profiler_sees_every_task(scheduler: daskexec.ExecutorScheduler) -> None:
    x = da.ones((100, 100), chunks=(10, 10))
    y = (x + 1).sum()
    with Profiler() as prof:
        assert y.compute(scheduler=scheduler) == 20_000
    keys = {r.key for r in prof.results}
    assert len(keys) == len(prof.results) > 100
    assert all(r.end_time >= r.start_time for r in prof.results)


def test_resource_profiler(scheduler: daskexec.ExecutorScheduler) -> None:
    from dask.diagnostics import ResourceProfiler

    x = da.ones((200, 200), chunks=(20, 20))
    with ResourceProfiler(dt=0.01) as rprof:
        assert (x + 1).sum().compute(scheduler=scheduler) == 80_000
    assert rprof.results, "ResourceProfiler recorded no sample"
    assert all(r.mem > 0 for r in rprof.results)


class Counter(Callback):
    def __init__(self) -> None:
        super().__init__()
        self.pre: list[Any] = []
        self.post: list[Any] = []
        self.cache_at_start: dict[Any, Any] = {}

    def _start_state(self, dsk: Any, state: Any) -> None:
        self.cache_at_start = dict(state["cache"])

    def _pretask(self, key: Any, dsk: Any, state: Any) -> None:
        self.pre.append(key)

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.post.append(key)


def test_literal_data_is_data_not_a_task(scheduler: daskexec.ExecutorScheduler) -> None:
    from daskexec.testing.graphs import add, inc

    dsk = {"x": 1, "y": (inc, "x"), "z": (add, 10, "y")}
    with Counter() as c:
        assert scheduler(dsk, "z") == 12
    assert c.cache_at_start == {"x": 1}, c.cache_at_start
    assert sorted(c.pre) == ["y", "z"] and sorted(c.post) == ["y", "z"], (c.pre, c.post)


def test_profiler_sees_tasks_only(scheduler: daskexec.ExecutorScheduler) -> None:
    from daskexec.testing.graphs import add, inc

    dsk = {"a": 1, "b": 2, "c": (inc, "a"), "d": (inc, "b"), "e": (add, "c", "d")}
    with Profiler() as prof:
        assert scheduler(dsk, "e") == 5
    assert sorted(r.key for r in prof.results) == ["c", "d", "e"], prof.results


def test_profiler_is_complete_after_a_failed_compute(
    scheduler: daskexec.ExecutorScheduler,
) -> None:
    from dask import delayed

    from daskexec.testing.graphs import fail, inc

    first = delayed(inc)(1, dask_key_name="first")
    bad = delayed(fail)(first, dask_key_name="bad")
    with Profiler() as prof, contextlib.suppress(ValueError):
        bad.compute(scheduler=scheduler)
    assert "first" in {r.key for r in prof.results}, prof.results
