"""Task exceptions reach the caller whole and promptly; executors are shut down only when ours."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import dask
import pytest
from dask import delayed

import daskexec
from daskexec.testing.graphs import Interrupt, fail, inc, slow_inc, slow_inc_or_fail_fourth


def test_task_exception_keeps_type_message_key_and_traceback(
    scheduler: daskexec.ExecutorScheduler,
) -> None:
    bad = delayed(fail)(delayed(inc)(1), dask_key_name="the-bad-task")
    with pytest.raises(ValueError, match="boom: 2") as info:
        bad.compute(scheduler=scheduler)
    exc = info.value
    assert exc.dask_key == "the-bad-task"  # type: ignore[attr-defined]
    assert any("the-bad-task" in n for n in getattr(exc, "__notes__", [])), exc
    cause = exc.__cause__
    assert isinstance(cause, daskexec.RemoteTraceback), cause
    assert "in fail" in str(cause) and "ValueError: boom: 2" in str(cause), str(cause)


def test_first_error_returns_promptly(
    scheduler: daskexec.ExecutorScheduler, engine: daskexec.EngineInfo, tmp_path: Any
) -> None:
    # All tasks do the same slow work, but the fourth to start fails at once.
    tasks = [
        delayed(slow_inc_or_fail_fourth)(i, 0.5, str(tmp_path), dask_key_name=f"t-{i:02d}")
        for i in range(40)
    ]
    start = time.perf_counter()
    with pytest.raises(ValueError, match="boom"):
        dask.compute(*tasks, scheduler=scheduler)
    elapsed = time.perf_counter() - start
    total = 40 * 0.5
    # a quarter of the slow work, plus a few invocations of an expensive engine
    bound = total / 4 + 4 * engine.call_overhead
    assert elapsed < bound, (
        f"took {elapsed:.2f}s (bound {bound:.1f}s); the slow tasks total {total}s"
    )


def test_user_executor_survives_errors(executor: concurrent.futures.Executor) -> None:
    s = daskexec.ExecutorScheduler(executor)
    with pytest.raises(ValueError):
        delayed(fail)(1).compute(scheduler=s)
    assert delayed(inc)(1).compute(scheduler=s) == 2
    assert executor.submit(abs, -3).result(timeout=60) == 3


def test_named_backend_executor_is_shut_down(backend_name: str, no_leaks: None) -> None:
    s = daskexec.ExecutorScheduler(backend_name)
    assert dask.compute(*[delayed(inc)(i) for i in range(10)], scheduler=s) == tuple(range(1, 11))
    with pytest.raises(ValueError):
        delayed(fail)(1).compute(scheduler=s)


def test_keyboard_interrupt_leaves_user_executor_usable(
    executor: concurrent.futures.Executor,
) -> None:
    s = daskexec.ExecutorScheduler(executor, pack_size=1)
    tasks = [delayed(slow_inc)(i, 0.05) for i in range(20)]
    with Interrupt(after=2), pytest.raises(KeyboardInterrupt):
        dask.compute(*tasks, scheduler=s)
    assert delayed(inc)(1).compute(scheduler=s) == 2


def test_task_errors_are_not_retried_unless_asked(executor: Any, tmp_path: Any) -> None:
    from daskexec.testing.graphs import fail_once

    marker = str(tmp_path / "failed-once")
    s = daskexec.ExecutorScheduler(executor)
    with pytest.raises(OSError, match="transient"):
        delayed(fail_once)(1, marker).compute(scheduler=s)
    marker2 = str(tmp_path / "failed-once-2")
    s = daskexec.ExecutorScheduler(executor, retry_on=(OSError,))
    assert delayed(fail_once)(1, marker2).compute(scheduler=s) == 2
    assert s.last_stats is not None and s.last_stats.retries == 1
