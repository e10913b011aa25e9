"""What running the suite on executors nobody here wrote found in the core.

distributed's ``ClientExecutor``, mpi4py's ``MPIPoolExecutor`` and parsl's
``ParslPoolExecutor`` implement ``concurrent.futures.Executor`` and nothing
of the engine protocol: the core must work with what that interface
promises, and no more.  Each test here pins one fix, on a small executor
of the same kind (public ``Executor`` API only, no daskexec hooks).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from typing import Any

import dask
import pytest
from dask import delayed

import daskexec
from daskexec.testing.graphs import fail_once


def inc(x: int) -> int:
    return x + 1


class Foreign(concurrent.futures.Executor):
    """An executor the core knows nothing about: only the public Executor API.

    Like distributed's ``ClientExecutor``, its ``shutdown`` has no
    ``cancel_futures`` and it cannot say whether it was shut down, except by
    ``submit`` raising ``RuntimeError`` afterwards.
    """

    def __init__(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(2)
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        if self._closed:
            raise RuntimeError("cannot schedule new futures after shutdown")
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True) -> None:  # type: ignore[override]
        self._closed = True
        self._pool.shutdown(wait=wait)


@pytest.fixture
def foreign() -> Iterator[Foreign]:
    ex = Foreign()
    yield ex
    ex.shutdown()


def test_foreign_executor_is_described_safely(foreign: Foreign) -> None:
    info = daskexec.describe(foreign)
    assert info.out_of_process and info.name == "Foreign", info
    assert delayed(inc)(1).compute(scheduler=daskexec.ExecutorScheduler(foreign)) == 2


def test_foreign_executor_shut_down_is_reported_as_that(foreign: Foreign) -> None:
    # Found on ClientExecutor and MPIPoolExecutor: the core re-raised their own
    # "cannot submit after shutdown", since neither can say it was shut down.
    foreign.shutdown()
    with pytest.raises(RuntimeError, match="Foreign executor refused new work") as info:
        delayed(inc)(1).compute(scheduler=daskexec.ExecutorScheduler(foreign))
    assert "shut down" in str(info.value), str(info.value)
    assert "cannot schedule new futures after shutdown" in str(info.value), str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError), repr(info.value.__cause__)


class Running(Foreign):
    """Says it is running, and still refuses work: its RuntimeError is its own."""

    def __daskexec_shut_down__(self) -> bool:
        return False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("quota exceeded")


def test_runtime_error_of_a_running_executor_is_not_called_shut_down() -> None:
    ex = Running()
    try:
        with pytest.raises(RuntimeError, match="^quota exceeded$"):
            delayed(inc)(1).compute(scheduler=daskexec.ExecutorScheduler(ex))
    finally:
        ex.shutdown()


class UncancellableFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """Like parsl's ``AppFuture``: ``cancel()`` raises instead of returning False."""

    def cancel(self) -> bool:
        raise NotImplementedError("Cancel not implemented")


class Uncancellable(Foreign):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        inner = super().submit(fn, *args, **kwargs)
        outer = UncancellableFuture()

        def copy(f: concurrent.futures.Future[Any]) -> None:
            if f.exception() is not None:
                outer.set_exception(f.exception())
            else:
                outer.set_result(f.result())

        inner.add_done_callback(copy)
        return outer


def fail_now(x: int) -> int:
    raise ValueError(f"task failed: {x}")


def nap(x: int) -> int:
    time.sleep(0.5)
    return x


def test_futures_that_cannot_be_cancelled_do_not_hide_the_task_error() -> None:
    # Found on ParslPoolExecutor: the first error cancels the work in flight,
    # and AppFuture.cancel() raising replaced the task's error with
    # NotImplementedError.
    ex = Uncancellable()
    try:
        graph = [delayed(nap)(1, dask_key_name="napping"), delayed(fail_now)(2)]
        s = daskexec.ExecutorScheduler(ex, pack_size=1)
        with pytest.raises(ValueError, match="task failed: 2"):
            dask.compute(*graph, scheduler=s)
        assert sum(graph[0].compute(scheduler=s) for _ in range(2)) == 2  # still usable
    finally:
        ex.shutdown()


class Memoizing(Foreign):
    """Like distributed's ClientExecutor with its default ``pure=True``: one call per arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[Any, Any] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        key = dask.base.tokenize(fn, args, kwargs)
        if key not in self.calls:
            self.calls[key] = super().submit(fn, *args, **kwargs)
        return self.calls[key]


def test_a_retry_is_a_new_call_on_an_executor_that_memoizes(tmp_path: Any) -> None:
    # Found on ClientExecutor (pure=True by default): the same function and
    # payload sent again gave back the failed attempt's future.
    ex = Memoizing()
    try:
        s = daskexec.ExecutorScheduler(ex, retry_on=(OSError,))
        marker = str(tmp_path / "failed-once")
        assert delayed(fail_once)(1, marker).compute(scheduler=s) == 2
        assert s.last_stats is not None and s.last_stats.retries == 1, s.last_stats
    finally:
        ex.shutdown()
