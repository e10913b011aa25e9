"""The ``concurrent.futures.Executor`` contract, checked on the backend's own executor.

The scheduler relies on an adapter's executor behaving like the stdlib pools:
``submit`` returns a ``Future`` carrying the result or the exception, ``map``
keeps order and honours ``timeout``, ``shutdown`` is idempotent, cancels
pending work on request and, with ``wait=True``, leaves nothing running.
These tests port the ideas of CPython's ``Lib/test/test_concurrent_futures``
to any executor the suite runs on.

Each test takes a fresh executor (``ex``) and shuts it down afterwards, so
that shutdown behaviour can be tested and one test's damage (a dead worker)
cannot leak into the next.  Task functions are stdlib callables, lambdas and
closures, and (as users write them) functions and classes defined in this
test module, which is not installed on the workers: the executor must bring
them there, or import them from the driver's own path.
"""

from __future__ import annotations

import concurrent.futures
import operator
import os
import threading
import time

import pytest

import daskexec
from daskexec.testing import leaks
from daskexec.testing.plugin import ExecutorFactory

pytestmark = pytest.mark.timeout(180)

#: Upper bound for any single result: process start-up on a loaded machine.
TIMEOUT = 60.0


@pytest.fixture
def ex(new_executor: ExecutorFactory) -> concurrent.futures.Executor:
    """A fresh executor of the kind under test, shut down after the test."""
    return new_executor()


def _workers(executor: concurrent.futures.Executor) -> int:
    return daskexec.describe(executor).workers


# -- submit ---------------------------------------------------------------------


def test_submit_returns_future_with_result(ex: concurrent.futures.Executor) -> None:
    future = ex.submit(pow, 2, 8)
    assert isinstance(future, concurrent.futures.Future), type(future)
    assert future.result(timeout=TIMEOUT) == 256
    assert future.done() and not future.cancelled()
    assert future.exception() is None


def test_submit_keyword_arguments(ex: concurrent.futures.Executor) -> None:
    assert ex.submit(int, "ff", base=16).result(timeout=TIMEOUT) == 255
    assert ex.submit(sorted, [3, 1, 2], reverse=True).result(timeout=TIMEOUT) == [3, 2, 1]


def test_submit_exception_keeps_type_and_message(ex: concurrent.futures.Executor) -> None:
    future = ex.submit(int, "not a number")
    with pytest.raises(ValueError, match="invalid literal for int"):
        future.result(timeout=TIMEOUT)
    exc = future.exception(timeout=TIMEOUT)
    assert isinstance(exc, ValueError), repr(exc)
    zero = ex.submit(operator.truediv, 1, 0)
    with pytest.raises(ZeroDivisionError):
        zero.result(timeout=TIMEOUT)


def test_lambda_and_closure(ex: concurrent.futures.Executor) -> None:
    offset = 10

    def add_offset(x: int) -> int:
        return x + offset

    assert ex.submit(lambda x: x * 3, 7).result(timeout=TIMEOUT) == 21
    assert ex.submit(add_offset, 5).result(timeout=TIMEOUT) == 15
    assert list(ex.map(lambda x: x + offset, range(3), timeout=TIMEOUT)) == [10, 11, 12]


def test_bytes_payload_round_trip(ex: concurrent.futures.Executor) -> None:
    payload = os.urandom(1024) * 4096  # 4 MiB, what the scheduler sends
    assert ex.submit(len, payload).result(timeout=TIMEOUT) == len(payload)
    assert ex.submit(bytes.upper, b"abc").result(timeout=TIMEOUT) == b"ABC"


def test_result_timeout(ex: concurrent.futures.Executor) -> None:
    future = ex.submit(time.sleep, 1.0)
    with pytest.raises(concurrent.futures.TimeoutError):
        future.result(timeout=0.01)
    assert future.result(timeout=TIMEOUT) is None


def test_done_callback_and_wait(ex: concurrent.futures.Executor) -> None:
    seen: list[concurrent.futures.Future[int]] = []
    called = threading.Event()

    def on_done(f: concurrent.futures.Future[int]) -> None:
        seen.append(f)
        called.set()

    future = ex.submit(abs, -3)
    future.add_done_callback(on_done)
    assert called.wait(TIMEOUT), "done callback was not called"
    assert seen == [future]
    futures = [ex.submit(abs, -i) for i in range(10)]
    _done, not_done = concurrent.futures.wait(futures, timeout=TIMEOUT)
    assert not not_done, f"{len(not_done)} futures not done"
    completed = {f.result() for f in concurrent.futures.as_completed(futures, timeout=TIMEOUT)}
    assert completed == set(range(10))


# -- map ------------------------------------------------------------------------


def test_map_keeps_order(ex: concurrent.futures.Executor) -> None:
    assert list(ex.map(pow, range(8), [2] * 8, timeout=TIMEOUT)) == [i**2 for i in range(8)]

    # later items finish first; results still come in submission order
    def slow_first(i: int) -> int:
        time.sleep(0.05 * (4 - i))
        return i

    assert list(ex.map(slow_first, range(5), timeout=TIMEOUT)) == [0, 1, 2, 3, 4]


def test_map_several_iterables_stops_at_shortest(ex: concurrent.futures.Executor) -> None:
    assert list(ex.map(operator.add, [1, 2, 3], [10, 20], timeout=TIMEOUT)) == [11, 22]
    assert list(ex.map(abs, [], timeout=TIMEOUT)) == []


def test_map_accepts_chunksize(ex: concurrent.futures.Executor) -> None:
    got = list(ex.map(pow, range(10), [3] * 10, timeout=TIMEOUT, chunksize=3))
    assert got == [i**3 for i in range(10)]


def test_map_exception_raised_at_iteration(ex: concurrent.futures.Executor) -> None:
    results = ex.map(operator.truediv, [1, 2, 3], [1, 0, 1], timeout=TIMEOUT)
    assert next(results) == 1.0
    with pytest.raises(ZeroDivisionError):
        next(results)


def test_map_timeout(ex: concurrent.futures.Executor) -> None:
    results: list[None] = []
    start = time.monotonic()
    with pytest.raises(concurrent.futures.TimeoutError):
        for r in ex.map(time.sleep, [0, 0, 3], timeout=1.5):
            results.append(r)
    elapsed = time.monotonic() - start
    assert elapsed < 3.0 + TIMEOUT, f"map(timeout=1.5) raised only after {elapsed:.1f}s"


# -- shutdown -------------------------------------------------------------------


def test_submit_after_shutdown_raises(ex: concurrent.futures.Executor) -> None:
    ex.shutdown(wait=True)
    with pytest.raises(RuntimeError):
        ex.submit(pow, 2, 2)
    with pytest.raises(RuntimeError):
        list(ex.map(abs, [1, 2]))


def test_shutdown_is_idempotent(ex: concurrent.futures.Executor) -> None:
    assert ex.submit(abs, -1).result(timeout=TIMEOUT) == 1
    ex.shutdown(wait=True)
    ex.shutdown(wait=True)
    ex.shutdown(wait=False)
    ex.shutdown(wait=True, cancel_futures=True)


def test_context_manager_shuts_down(ex: concurrent.futures.Executor) -> None:
    with ex as entered:
        assert entered is ex
        future = ex.submit(pow, 3, 3)
    assert future.done(), "leaving the with block must wait for submitted work"
    assert future.result() == 27
    with pytest.raises(RuntimeError):
        ex.submit(pow, 2, 2)


def test_shutdown_wait_finishes_submitted_work(ex: concurrent.futures.Executor) -> None:
    def nap(i: int) -> int:
        time.sleep(0.05)
        return i

    futures = [ex.submit(nap, i) for i in range(6)]
    ex.shutdown(wait=True)
    assert all(f.done() for f in futures), [f for f in futures if not f.done()]
    assert [f.result() for f in futures] == list(range(6))


def test_shutdown_no_wait_still_completes_work(ex: concurrent.futures.Executor) -> None:
    def nap() -> str:
        time.sleep(0.2)
        return "done"

    future = ex.submit(nap)
    start = time.monotonic()
    ex.shutdown(wait=False)
    assert time.monotonic() - start < 5, "shutdown(wait=False) blocked"
    assert future.result(timeout=TIMEOUT) == "done"


def test_shutdown_cancel_futures(ex: concurrent.futures.Executor) -> None:
    # Far more work than the engine can have running: most of it is pending.
    n = max(50, 10 * _workers(ex))
    futures = [ex.submit(time.sleep, 0.2) for _ in range(n)]
    ex.shutdown(wait=True, cancel_futures=True)
    cancelled = [f for f in futures if f.cancelled()]
    assert cancelled, f"none of {n} pending futures was cancelled"
    assert all(f.done() for f in futures), "shutdown(wait=True) left futures unfinished"
    for f in futures:
        if f.cancelled():
            with pytest.raises(concurrent.futures.CancelledError):
                f.result()
        else:
            assert f.result() is None


def test_no_child_process_left_after_shutdown(new_executor: ExecutorFactory) -> None:
    before = leaks.snapshot()
    executor = new_executor()
    try:
        futures = [executor.submit(abs, -i) for i in range(4 * _workers(executor))]
        assert sorted(f.result(timeout=TIMEOUT) for f in futures) == sorted(range(len(futures)))
    finally:
        executor.shutdown(wait=True)
    left = leaks.leftovers(before)
    assert not left, f"child processes still running after shutdown(wait=True): {left}"


# -- engine failure ---------------------------------------------------------------


@pytest.mark.requires("survives-worker-death")
def test_worker_death_is_broken_executor_and_executor_recovers(
    new_executor: ExecutorFactory,
) -> None:
    before = leaks.snapshot()
    executor = new_executor()
    try:
        doomed = executor.submit(os._exit, 1)
        start = time.monotonic()
        with pytest.raises(concurrent.futures.BrokenExecutor):
            doomed.result(timeout=TIMEOUT)
        assert time.monotonic() - start < TIMEOUT
        # the scheduler's retry: the same executor must take and run new work
        assert executor.submit(operator.mul, 6, 7).result(timeout=TIMEOUT) == 42
        assert list(executor.map(abs, [-1, -2, -3], timeout=TIMEOUT)) == [1, 2, 3]
    finally:
        executor.shutdown(wait=True)
    left = leaks.leftovers(before)
    assert not left, f"child processes left after a worker died and shutdown: {left}"


# -- results and exceptions that plain pickle cannot carry -------------------------


class TwoArgError(Exception):
    """An exception whose default pickle cannot be loaded (its __init__ takes two arguments)."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(a)
        self.b = b


class Stop(BaseException):
    """A BaseException that is neither KeyboardInterrupt nor SystemExit."""


class Point:
    """A user's class, defined in the test module."""

    def __init__(self, x: int) -> None:
        self.x = x


def raise_two_arg(a: str, b: str) -> None:
    raise TwoArgError(a, b)


def raise_base(kind: type[BaseException]) -> None:
    raise kind("stopped by the task")


def make_point(x: int) -> Point:
    return Point(x)


def _still_works(ex: concurrent.futures.Executor) -> None:
    assert ex.submit(pow, 2, 5).result(timeout=TIMEOUT) == 32
    assert list(ex.map(abs, [-1, -2], timeout=TIMEOUT)) == [1, 2]


def test_exception_that_cannot_be_unpickled(ex: concurrent.futures.Executor) -> None:
    future = ex.submit(raise_two_arg, "first", "second")
    with pytest.raises(BaseException) as info:
        future.result(timeout=TIMEOUT)
    exc = info.value
    assert not isinstance(exc, concurrent.futures.BrokenExecutor), repr(exc)
    if isinstance(exc, TwoArgError):  # rebuilt as the original type
        assert exc.args == ("first",) and exc.b == "second", (exc.args, vars(exc))
    else:  # a stand-in that says what it stands for
        assert "TwoArgError" in str(exc) and "first" in str(exc), repr(exc)
    _still_works(ex)


@pytest.mark.requires("separate-processes")
def test_unpicklable_result_is_an_error_not_a_lost_worker(
    ex: concurrent.futures.Executor,
) -> None:
    future = ex.submit(threading.Lock)
    with pytest.raises(Exception) as info:
        future.result(timeout=TIMEOUT)
    assert not isinstance(info.value, concurrent.futures.BrokenExecutor), repr(info.value)
    assert "lock" in str(info.value).lower(), repr(info.value)
    _still_works(ex)


@pytest.mark.parametrize("kind", [Stop, KeyboardInterrupt, SystemExit])
def test_base_exception_in_a_task_comes_back(
    ex: concurrent.futures.Executor, kind: type[BaseException]
) -> None:
    future = ex.submit(raise_base, kind)
    with pytest.raises(kind, match="stopped by the task"):
        future.result(timeout=TIMEOUT)
    _still_works(ex)


def test_results_travel_with_cloudpickle(ex: concurrent.futures.Executor) -> None:
    offset = 5
    fn = ex.submit(lambda: lambda y: y + offset).result(timeout=TIMEOUT)
    assert fn(1) == 6
    point = ex.submit(make_point, 3).result(timeout=TIMEOUT)
    assert type(point).__name__ == "Point" and point.x == 3, point


# -- terminate_workers ----------------------------------------------------------------


@pytest.mark.requires("cancel-running")
def test_terminate_workers_stops_running_work_at_once(new_executor: ExecutorFactory) -> None:
    before = leaks.snapshot()
    executor = new_executor()
    try:
        terminate = getattr(executor, "terminate_workers", None)
        assert callable(terminate), f"{executor!r} declares cancel-running: terminate_workers()"
        assert executor.submit(abs, -1).result(timeout=TIMEOUT) == 1  # workers started
        # as many running as the engine runs at once, and more waiting behind them
        futures = [executor.submit(time.sleep, 120) for _ in range(3 * _workers(executor))]
        time.sleep(0.5)  # let the first ones start
        start = time.monotonic()
        terminate()
        elapsed = time.monotonic() - start
        assert elapsed < 30, f"terminate_workers() took {elapsed:.1f}s with 120s sleeps running"
        not_done = [f for f in futures if not f.done()]
        assert not not_done, f"{len(not_done)} of {len(futures)} futures not done"
        for f in futures:
            if not f.cancelled():
                error = f.exception()
                assert isinstance(error, concurrent.futures.BrokenExecutor), repr(error)
        with pytest.raises(RuntimeError):
            executor.submit(abs, -1)
        terminate()  # safe to call again, and after shutdown
        executor.shutdown(wait=True)
        terminate()
    finally:
        executor.shutdown(wait=True)
    left = leaks.leftovers(before)
    assert not left, f"child processes left after terminate_workers(): {left}"


@pytest.mark.requires("cancel-running")
def test_terminate_workers_after_shutdown_no_wait(new_executor: ExecutorFactory) -> None:
    # What the scheduler does with an executor it created when a compute fails.
    before = leaks.snapshot()
    executor = new_executor()
    try:
        assert executor.submit(abs, -1).result(timeout=TIMEOUT) == 1
        futures = [executor.submit(time.sleep, 120) for _ in range(2 * _workers(executor))]
        time.sleep(0.5)
        start = time.monotonic()
        executor.shutdown(wait=False, cancel_futures=True)
        executor.terminate_workers()  # type: ignore[attr-defined]
        elapsed = time.monotonic() - start
        assert elapsed < 30, f"terminate_workers() took {elapsed:.1f}s with 120s sleeps running"
        assert all(f.done() for f in futures), [f for f in futures if not f.done()]
    finally:
        executor.shutdown(wait=True)
    left = leaks.leftovers(before)
    assert not left, f"child processes left after terminate_workers(): {left}"


@pytest.mark.requires("cancel-running")
def test_terminate_workers_on_an_unused_executor(new_executor: ExecutorFactory) -> None:
    executor = new_executor()
    executor.terminate_workers()  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError):
        executor.submit(abs, -1)
    executor.shutdown(wait=True)
