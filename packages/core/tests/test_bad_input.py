"""Bad input gets a clear error that names the problem (checks that need no engine)."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import pytest
from dask import delayed

import daskexec
from daskexec.testing.graphs import inc


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
