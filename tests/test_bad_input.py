"""Bad input gets a clear error that names the problem."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import pytest
from dask import delayed

import daskexec
from graphs import inc


@pytest.mark.parametrize("bad", [object(), "not-a-backend-name-xyz", 42, lambda: None])
def test_not_an_executor(bad: Any) -> None:
    if isinstance(bad, str):
        s = daskexec.ExecutorScheduler(bad)
        with pytest.raises(ValueError, match="no daskexec backend 'not-a-backend-name-xyz'"):
            delayed(inc)(1).compute(scheduler=s)
    else:
        with pytest.raises(TypeError, match="must be a concurrent.futures.Executor"):
            daskexec.ExecutorScheduler(bad)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("batch_size", 0),
        ("batch_size", -3),
        ("batch_size", 2.5),
        ("pack_size", 0),
        ("max_inflight", 0),
        ("timeout", -1),
        ("retries", -1),
    ],
)
def test_bad_options(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        daskexec.ExecutorScheduler(**{option: value})
    with pytest.raises(ValueError, match=option):
        delayed(inc)(1).compute(scheduler=daskexec.executor_scheduler, **{option: value})


def test_executor_already_shut_down(backend: str) -> None:
    ex = daskexec.create_executor(backend)
    ex.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="shut down"):
        delayed(inc)(1).compute(scheduler=daskexec.ExecutorScheduler(ex))


def test_missing_output_key(scheduler: daskexec.ExecutorScheduler) -> None:
    with pytest.raises(KeyError, match="'nope' is not in the graph"):
        scheduler({"a": 1}, "nope")


def test_missing_dependency(scheduler: daskexec.ExecutorScheduler) -> None:
    from dask._task_spec import Task, TaskRef

    dsk = {"a": Task("a", inc, TaskRef("ghost"))}
    with pytest.raises(daskexec.MissingKeyError, match="'a' depends on key 'ghost'"):
        scheduler(dsk, "a")


def test_cycle(scheduler: daskexec.ExecutorScheduler) -> None:
    dsk = {"a": (inc, "c"), "b": (inc, "a"), "c": (inc, "b"), "d": (inc, "c")}
    with pytest.raises(daskexec.GraphCycleError, match="cycle"):
        scheduler(dsk, "d")


@pytest.mark.requires("separate-processes")
def test_unpicklable_task_is_named(scheduler: daskexec.ExecutorScheduler) -> None:
    lock = threading.Lock()
    task = delayed(lambda lk, x: x)(lock, 1, dask_key_name="holds-a-lock")
    with pytest.raises(TypeError, match="task 'holds-a-lock' cannot be serialized"):
        task.compute(scheduler=scheduler)


def test_describe_rejects_a_bad_self_description() -> None:
    class Liar(concurrent.futures.ThreadPoolExecutor):
        def __daskexec_engine__(self) -> object:
            return {"workers": 2}

    with Liar(1) as ex, pytest.raises(TypeError, match="expected daskexec.EngineInfo"):
        daskexec.describe(ex)


def test_engine_info_validates() -> None:
    with pytest.raises(ValueError, match="workers"):
        daskexec.EngineInfo(workers=0, out_of_process=False)
    with pytest.raises(ValueError, match="unknown capabilities"):
        daskexec.EngineInfo(workers=1, out_of_process=False, capabilities=frozenset({"flying"}))
