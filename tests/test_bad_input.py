"""Bad input gets a clear error that names the problem."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import dask
import pytest
from dask import delayed

import daskexec
from graphs import inc


@pytest.mark.parametrize("bad", [object(), "not-a-backend-name-xyz", 42, lambda: None])
def test_not_an_executor(bad: Any) -> None:
    if isinstance(bad, str):  # refused at construction, not at the first compute
        with pytest.raises(ValueError, match="no daskexec backend 'not-a-backend-name-xyz'"):
            daskexec.ExecutorScheduler(bad)
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
        ("timeout", float("inf")),
        ("timeout", float("nan")),
        ("timeout", True),
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
    # a malformed graph is a ValueError, as with Dask's own schedulers
    with pytest.raises(ValueError, match="ghost"):
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


@pytest.mark.parametrize("bad", [("ConnectionError",), ConnectionError(), 3, (OSError, "x")])
def test_retry_on_must_name_exception_classes(bad: Any) -> None:
    with pytest.raises(TypeError, match="retry_on"):
        daskexec.ExecutorScheduler(retry_on=bad)


def test_retry_on_takes_a_single_class() -> None:
    assert daskexec.ExecutorScheduler(retry_on=ConnectionError).retry_on == (ConnectionError,)


def test_misspelled_keyword_is_refused(scheduler: daskexec.ExecutorScheduler) -> None:
    with pytest.raises(TypeError, match="did you mean 'batch_size'"):
        delayed(inc)(1).compute(scheduler=scheduler, batchsize=10)


def test_keywords_dask_and_libraries_pass_are_accepted(
    scheduler: daskexec.ExecutorScheduler, engine: daskexec.EngineInfo
) -> None:
    import warnings

    import dask.array as da
    import numpy as np

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert delayed(inc)(1).compute(scheduler=scheduler, num_workers=4) == 2
        # xarray's to_zarr and to_netcdf reach the scheduler through da.store(flush=True)
        target = np.zeros(10)
        da.store(da.ones(10, chunks=5), target, scheduler=scheduler, flush=True, lock=False)
        assert dask.compute(da.ones(10, chunks=5).sum(), scheduler=scheduler, flush=True) == (10,)
    if "shared-memory" in engine.capabilities:  # other engines write a copy of the target
        assert target.sum() == 10
