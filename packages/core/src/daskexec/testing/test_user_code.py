"""Code as users write it: what outside testing found broken, one test per class of failure.

Task functions and classes live in this module (not installed on any
worker), in ``__main__`` of a script, or are lambdas and closures.
"""

from __future__ import annotations

import concurrent.futures
import operator
import os
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import types
from typing import Any

import dask
import dask.bag as db
import numpy as np
import pandas as pd
import pytest
from dask import delayed
from dask._task_spec import DataNode, Task, TaskRef

import daskexec
from daskexec.testing.graphs import fail, slow_inc

# -- results and exceptions of user types -------------------------------------------


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


class TwoArgError(Exception):
    """Its default pickle does not load back: ``__init__`` takes two arguments."""

    def __init__(self, a: str, b: str) -> None:
        super().__init__(a)
        self.b = b


class Stop(BaseException):
    pass


def make_point(x: int) -> Point:
    return Point(x)


def make_adder(n: int) -> Any:
    return lambda y: y + n


def raise_two_arg(x: Any) -> None:
    raise TwoArgError(f"bad {x}", "second")


def raise_kind(kind: type[BaseException]) -> None:
    raise kind("stopped by the task")


def count_run(folder: str, value: Any = None) -> Any:
    """Record one run in ``folder`` (a file per run), then return ``value``."""
    n = 0
    while True:
        try:
            os.close(os.open(os.path.join(folder, f"run-{n}"), os.O_CREAT | os.O_EXCL))
            return value
        except FileExistsError:
            n += 1


def runs(folder: Any) -> int:
    return len([p for p in os.listdir(folder) if p.startswith("run-")])


def make_lock(folder: str) -> Any:
    count_run(folder)
    return threading.Lock()


def use(x: Any) -> int:
    return 1


def test_graph_key_differs_from_task_key(scheduler: daskexec.ExecutorScheduler) -> None:
    dsk = {"x": DataNode("x", 1), "y": Task("z", operator.add, TaskRef("x"), 1)}
    assert scheduler(dsk, "y") == 2
    assert scheduler(dsk, ["y", "x"]) == (2, 1)


def test_clone_and_reversed_dataframe(scheduler: daskexec.ExecutorScheduler) -> None:
    import dask.array as da
    from dask.graph_manipulation import clone

    assert clone(delayed(operator.add)(1, 2)).compute(scheduler=scheduler) == 3
    a = clone(da.ones((4, 4), chunks=2) + 1)
    assert a.sum().compute(scheduler=scheduler) == 32
    dd = pytest.importorskip("dask.dataframe")
    pdf = pd.DataFrame({"a": range(20)})
    ddf = dd.from_pandas(pdf, npartitions=4)
    got = ddf.loc[::-1].compute(scheduler=scheduler)
    pd.testing.assert_frame_equal(got, pdf.loc[::-1])


def test_results_of_user_classes_lambdas_and_closures(
    scheduler: daskexec.ExecutorScheduler,
) -> None:
    point, adder = dask.compute(delayed(make_point)(3), delayed(make_adder)(5), scheduler=scheduler)
    assert type(point).__name__ == "Point" and point.x == 3
    assert adder(1) == 6
    squares = delayed(lambda: [lambda i=i: i * i for i in range(3)])()
    assert [f() for f in squares.compute(scheduler=scheduler)] == [0, 1, 4]


def test_functions_and_classes_from_a_module_beside_the_driver(
    scheduler: daskexec.ExecutorScheduler, user_module: types.ModuleType
) -> None:
    m = user_module
    points = [delayed(m.make_point)(i) for i in range(6)]
    shifted = [delayed(m.shift)(p, 0.5) for p in points]
    total = delayed(sum)([delayed(m.norm1)(p) for p in shifted])
    got_points, got_total = dask.compute(shifted, total, scheduler=scheduler)
    assert got_points == [m.Point(i + 0.5, 2 * i + 0.5) for i in range(6)]
    assert type(got_points[0]) is m.Point  # unpickled as the driver's own class
    assert got_total == sum(3 * i + 1 for i in range(6))
    adder = delayed(m.make_adder)(10)
    assert delayed(m.apply)(adder, 1).compute(scheduler=scheduler) == 11
    assert adder.compute(scheduler=scheduler)(2) == 12  # a closure from that module as a result
    bag = db.from_sequence(range(8), npartitions=4).map(m.make_point).map(m.norm1)
    assert bag.sum().compute(scheduler=scheduler) == sum(3 * i for i in range(8))
    with pytest.raises(m.UserError, match="user error at 3"):
        delayed(m.explode)(3).compute(scheduler=scheduler)


def test_bag_task_based_groupby(scheduler: daskexec.ExecutorScheduler) -> None:
    b = db.from_sequence(range(40), npartitions=5)
    got = dict(b.groupby(lambda x: x % 3, shuffle="tasks").compute(scheduler=scheduler))
    assert {k: sorted(v) for k, v in got.items()} == {
        r: [x for x in range(40) if x % 3 == r] for r in range(3)
    }


def test_exception_that_cannot_be_unpickled(executor: Any) -> None:
    s = daskexec.ExecutorScheduler(executor)
    start = time.monotonic()
    with pytest.raises(BaseException) as info:
        delayed(raise_two_arg)(1, dask_key_name="two-arg").compute(scheduler=s)
    exc = info.value
    assert not isinstance(exc, concurrent.futures.BrokenExecutor), repr(exc)
    if isinstance(exc, TwoArgError):
        assert exc.args == ("bad 1",) and exc.b == "second", (exc.args, vars(exc))
    else:
        assert isinstance(exc, daskexec.RemoteError), repr(exc)
        assert "TwoArgError" in str(exc) and "bad 1" in str(exc), str(exc)
    assert any("two-arg" in n for n in getattr(exc, "__notes__", [])), exc
    assert s.last_stats is not None and s.last_stats.engine_failures == 0
    assert time.monotonic() - start < 60
    assert delayed(operator.add)(1, 2).compute(scheduler=s) == 3


def test_exception_that_cannot_be_unpickled_spares_a_concurrent_compute(
    executor: Any,
) -> None:
    s = daskexec.ExecutorScheduler(executor)
    innocent: list[Any] = []

    def other() -> None:
        parts = [delayed(operator.add)(i, 1) for i in range(8)]
        innocent.append(dask.compute(*parts, scheduler=s))

    t = threading.Thread(target=other)
    t.start()
    with pytest.raises(BaseException):  # noqa: B017 - checked in the test above
        delayed(raise_two_arg)(1).compute(scheduler=s)
    t.join(120)
    assert innocent == [tuple(range(1, 9))]


@pytest.mark.parametrize("kind", [Stop, SystemExit, KeyboardInterrupt])
def test_base_exception_in_a_task_is_re_raised(executor: Any, kind: type[BaseException]) -> None:
    s = daskexec.ExecutorScheduler(executor)
    with pytest.raises(kind, match="stopped by the task"):
        delayed(raise_kind)(kind).compute(scheduler=s)
    assert s.last_stats is not None and s.last_stats.engine_failures == 0
    assert delayed(operator.add)(1, 2).compute(scheduler=s) == 3


# -- deterministic problems are reported once, naming the task -----------------------


@pytest.mark.requires("separate-processes")
def test_unpicklable_result_is_reported_once(executor: Any, tmp_path: Any) -> None:
    s = daskexec.ExecutorScheduler(executor)
    lock = delayed(make_lock)(str(tmp_path), dask_key_name="makes-a-lock")
    users = [delayed(use)(lock, dask_key_name=f"use-{i}") for i in range(3)]
    try:
        # consumers packed with their producer never need the lock to travel
        assert dask.compute(*users, scheduler=s) == (1, 1, 1)
    except TypeError as exc:
        assert "makes-a-lock" in str(exc) and "lock" in str(exc).lower(), str(exc)
    assert runs(tmp_path) == 1, f"ran {runs(tmp_path)} times"
    st = s.last_stats
    assert st is not None and st.retries == 0, st.summary()


@pytest.mark.requires("separate-processes")
def test_unpicklable_final_output_is_reported_once(executor: Any, tmp_path: Any) -> None:
    s = daskexec.ExecutorScheduler(executor)
    with pytest.raises(TypeError, match="final-lock"):
        delayed(make_lock)(str(tmp_path), dask_key_name="final-lock").compute(scheduler=s)
    assert runs(tmp_path) == 1, f"ran {runs(tmp_path)} times"


def _cannot_load(module: str) -> Any:
    raise ModuleNotFoundError(f"No module named {module!r}", name=module)


class Unloadable:
    """Pickles fine in the driver; loading it on a worker fails as a missing module would."""

    def __reduce__(self) -> Any:
        return _cannot_load, ("not_on_the_worker",)


@pytest.mark.requires("separate-processes")
def test_task_that_cannot_be_loaded_on_the_worker_is_reported_once(
    executor: Any, tmp_path: Any
) -> None:
    s = daskexec.ExecutorScheduler(executor)
    task = delayed(count_run)(str(tmp_path), Unloadable(), dask_key_name="unloadable")
    with pytest.raises(daskexec.SerializationError, match="unloadable") as info:
        task.compute(scheduler=s)
    assert "not_on_the_worker" in str(info.value), str(info.value)
    assert runs(tmp_path) == 0
    st = s.last_stats
    assert st is not None and st.retries == 0 and st.engine_failures == 0, st.summary()


# -- user work never runs in the driver ------------------------------------------------


def finalize(x: int) -> tuple[int, int]:
    """A user's function that happens to be called finalize."""
    return x + 1, threading.get_ident()


def work(x: int) -> int:
    return x * 2


def test_user_function_named_finalize_and_lists_of_tasks_run_remotely(
    scheduler: daskexec.ExecutorScheduler,
) -> None:
    value, _ = delayed(finalize)(1).compute(scheduler=scheduler)
    assert value == 2
    st = scheduler.last_stats
    assert st is not None and st.remote_tasks == 1 and st.local_tasks == 0, st.summary()
    assert scheduler({"b": [(work, 1), (work, 2)]}, "b") == [2, 4]
    st = scheduler.last_stats
    assert st is not None and st.remote_tasks == 1 and st.local_tasks == 0, st.summary()


# -- nested computes --------------------------------------------------------------------


def nested_sum(n: int) -> int:
    parts = [delayed(operator.add)(i, 1) for i in range(n)]
    return sum(dask.compute(*parts))


@pytest.mark.requires("shared-memory")
@pytest.mark.timeout(60)
def test_nested_compute_on_a_passed_in_pool_does_not_deadlock() -> None:
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        s = daskexec.ExecutorScheduler(pool)
        outer = [delayed(nested_sum)(5, dask_key_name=f"outer-{i}") for i in range(6)]
        with dask.config.set(scheduler=s):
            assert dask.compute(*outer) == (15,) * 6

        def direct(i: int) -> int:
            return int(delayed(operator.add)(i, 1).compute(scheduler=s))

        assert dask.compute(*[delayed(direct)(i) for i in range(6)], scheduler=s) == tuple(
            range(1, 7)
        )


# -- errors with an executor the scheduler owns --------------------------------------


def sleep_then(x: int, seconds: float) -> int:
    time.sleep(seconds)
    return x


def fail_now(x: int) -> int:
    raise ValueError(f"fails at once: {x}")


def test_error_with_an_owned_executor_returns_at_once(
    backend_name: str, engine: daskexec.EngineInfo
) -> None:
    from daskexec.testing import leaks

    before = leaks.snapshot()
    s = daskexec.ExecutorScheduler(backend_name, pack_size=1)
    # tasks from a light module: what is timed is the error, not the workers' imports
    sleeper = delayed(slow_inc)(1, 20.0)
    failer = delayed(fail)(2, "fails at once")
    start = time.monotonic()
    with pytest.raises(ValueError, match="fails at once"):
        dask.compute(sleeper, failer, scheduler=s)
    elapsed = time.monotonic() - start
    # engine start-up and a few calls, never the sleeping task
    assert elapsed < 10 + 4 * engine.call_overhead, f"the error took {elapsed:.1f}s"
    # worker processes are killed, not left to finish the sleep
    deadline = time.monotonic() + 10
    while leaks.leftovers(before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not leaks.leftovers(before), leaks.leftovers(before)


# -- notes, tracebacks ------------------------------------------------------------------

SHARED_ERROR = ValueError("the same object every time")


def raise_shared() -> None:
    raise SHARED_ERROR


def test_one_note_per_compute(scheduler: daskexec.ExecutorScheduler) -> None:
    for _ in range(3):
        with pytest.raises(ValueError) as info:
            delayed(raise_shared)(dask_key_name="shared").compute(scheduler=scheduler)
    notes = [n for n in getattr(info.value, "__notes__", []) if n.startswith("daskexec")]
    assert len(notes) == 1, notes


def test_scheduler_frames_are_hidden_from_tracebacks(
    scheduler: daskexec.ExecutorScheduler,
) -> None:
    with pytest.raises(ValueError) as info:
        delayed(fail_now)(1).compute(scheduler=scheduler)
    frames = traceback.extract_tb(info.value.__traceback__)
    suite = os.path.dirname(__file__)
    ours = [
        f for f in frames if f"daskexec{os.sep}" in f.filename and not f.filename.startswith(suite)
    ]
    # Dask keeps the last frame whatever it is: where the error was re-raised
    assert len(ours) <= 1, [f"{f.filename}:{f.name}" for f in ours]


# -- worker memory ------------------------------------------------------------------------


def tables_on_worker() -> list[tuple[str, int]]:
    from daskexec import _serialize

    return [(entry[0], entry[2]) for entry in _serialize._tables.values()]


def test_workers_drop_earlier_computes_function_tables(
    scheduler: daskexec.ExecutorScheduler, engine: daskexec.EngineInfo
) -> None:
    for i in range(4):
        big = np.full(1_000_000, i, dtype=np.int64)  # 8 MB captured by the closure

        def total(j: int, big: Any = big) -> int:
            return int(big[0]) + j

        parts = [delayed(total)(j) for j in range(2 * engine.workers)]
        assert dask.compute(*parts, scheduler=scheduler) == tuple(
            i + j for j in range(2 * engine.workers)
        )
    seen = dask.compute(
        *[delayed(tables_on_worker)(dask_key_name=f"t-{j}") for j in range(2 * engine.workers)],
        scheduler=scheduler,
    )
    for tables in seen:
        computes = {c for c, _ in tables}
        assert len(computes) <= 1, f"a worker keeps tables of {len(computes)} computes"
        assert sum(n for _, n in tables) < 4_000_000, tables


# -- a script's own classes (__main__) --------------------------------------------------

SCRIPT = """
import dask, daskexec
from dask import delayed

class Result:
    def __init__(self, v):
        self.v = v

class Oops(Exception):
    pass

def make(v):
    return Result(v)

def oops(v):
    raise Oops(f"oops {v}")

if __name__ == "__main__":  # process pools start workers by importing the script
    s = daskexec.ExecutorScheduler(BACKEND)
    r, f = dask.compute(delayed(make)(7), delayed(lambda: (lambda: 9))(), scheduler=s)
    assert type(r).__name__ == "Result" and r.v == 7 and f() == 9
    try:
        delayed(oops)(1).compute(scheduler=s)
    except Oops as e:
        assert "oops 1" in str(e)
    else:
        raise AssertionError("no error")
    print("ok")
"""


def test_classes_defined_in_a_script(backend_name: str, tmp_path: Any) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(textwrap.dedent(SCRIPT.replace("BACKEND", repr(backend_name))))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr[-3000:]
