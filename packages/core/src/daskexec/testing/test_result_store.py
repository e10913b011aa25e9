"""Results stay where they were computed: intermediates never cross the driver.

On an engine with a result store, a worker writes each exported result to the
compute's store, consumers read it there, and only the outputs come back; an
engine that keeps results itself (Ray's object store) does the same with its
own references.  The tests watch the store through a thin executor wrapper
that records every store the scheduler opens (the engine is the session's,
unchanged); whether a reference engine still holds objects is checked in its
backend's own tests (``test_ray_backend``).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import dask.array as da
import numpy as np
import pytest

import daskexec
from daskexec.testing.graphs import Interrupt

#: Bytes a task may move through the driver beyond the outputs: its pickled
#: work item (functions travel once per batch) and its handles.
PER_TASK = 16 * 1024


class StoreSpy(concurrent.futures.Executor):
    """The session's executor, with the stores the scheduler opens on it recorded."""

    def __init__(self, inner: concurrent.futures.Executor) -> None:
        self.inner = inner
        self.stores: list[daskexec.ResultStore] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return self.inner.submit(fn, *args, **kwargs)

    def map(
        self, fn: Callable[..., Any], *iterables: Iterable[Any], **kwargs: Any
    ) -> Iterator[Any]:
        return self.inner.map(fn, *iterables, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # the session's executor outlives the test

    def __getattr__(self, name: str) -> Any:  # submit_many, __daskexec_compute_done__
        return getattr(self.inner, name)

    def __daskexec_engine__(self) -> daskexec.EngineInfo:
        info = daskexec.describe(self.inner)
        factory = info.store
        if factory is None:  # a reference engine: nothing to watch here
            return info

        def opened(token: str) -> daskexec.ResultStore:
            store = factory(token)
            self.stores.append(store)
            return store

        return dataclasses.replace(info, store=opened)

    def left(self) -> list[str]:
        return [loc for store in self.stores for loc in store.locations()]


pytestmark = pytest.mark.requires("results-stay-remote")


@pytest.fixture
def spy(executor: concurrent.futures.Executor) -> StoreSpy:
    return StoreSpy(executor)


def stack(n: int = 6, size: int = 400) -> da.Array:
    """``n`` chunks of ``size x size`` float64 (1.2 MiB each at the default size)."""
    return da.random.default_rng(0).random((n, size, size), chunks=(1, size, size))


def test_chain_and_tree_reduction_stay_out_of_the_driver(spy: StoreSpy) -> None:
    s = daskexec.ExecutorScheduler(spy, pack_size=1)
    y = ((stack() + 1) * 2).sum(axis=0)
    got = y.compute(scheduler=s)
    np.testing.assert_allclose(got, y.compute(scheduler="sync"))
    st = s.last_stats
    assert st is not None
    bound = got.nbytes + PER_TASK * st.remote_tasks
    assert st.bytes_received <= bound, (st.bytes_received, bound, st.summary())
    assert st.bytes_sent <= PER_TASK * st.remote_tasks, (st.bytes_sent, st.summary())
    assert st.store_peak_bytes >= 2 * got.nbytes, st.store_peak_bytes  # intermediates were stored
    assert not spy.left(), spy.left()


def test_transpose_moves_only_the_output(spy: StoreSpy) -> None:
    s = daskexec.ExecutorScheduler(spy)
    x = da.random.default_rng(1).random((1200, 1200), chunks=(300, 300))
    y = (x + x.T).mean(axis=0)
    got = y.compute(scheduler=s)
    np.testing.assert_allclose(got, y.compute(scheduler="sync"))
    st = s.last_stats
    assert st is not None
    bound = got.nbytes + PER_TASK * st.remote_tasks
    assert st.bytes_received <= bound, (st.bytes_received, bound, st.summary())
    assert not spy.left(), spy.left()


@pytest.mark.requires("result-store")
def test_store_is_empty_after_a_task_error(spy: StoreSpy) -> None:
    s = daskexec.ExecutorScheduler(spy, pack_size=1)

    def fail_on_third(block: np.ndarray, block_info: Any = None) -> np.ndarray:
        if block_info[None]["chunk-location"][0] == 3:
            raise ValueError("third block")
        return block

    y = stack().map_blocks(fail_on_third, dtype=float).sum(axis=0)
    with pytest.raises(ValueError, match="third block"):
        y.compute(scheduler=s)
    assert spy.stores and not spy.left(), spy.left()


@pytest.mark.requires("result-store")
def test_store_is_empty_after_an_interrupt(spy: StoreSpy) -> None:
    s = daskexec.ExecutorScheduler(spy, pack_size=1)
    with Interrupt(after=3), pytest.raises(KeyboardInterrupt):
        (stack() * 2).sum(axis=0).compute(scheduler=s)
    assert spy.stores and not spy.left(), spy.left()


def die_once_on_block(block: np.ndarray, marker: str, block_info: Any = None) -> np.ndarray:
    if block_info[None]["chunk-location"][0] == 4 and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write("died")
        os._exit(1)
    return block * 3


@pytest.mark.requires("survives-worker-death")
def test_killed_worker_mid_graph_gives_the_right_answer(spy: StoreSpy, tmp_path: Any) -> None:
    s = daskexec.ExecutorScheduler(spy, pack_size=1, retries=3)
    marker = str(tmp_path / "died")
    y = (stack() + 1).map_blocks(die_once_on_block, marker, dtype=float).sum(axis=0)
    expected = ((stack() + 1) * 3).sum(axis=0).compute(scheduler="sync")
    np.testing.assert_allclose(y.compute(scheduler=s), expected)
    assert os.path.exists(marker), "the worker never died: the test proved nothing"
    assert not spy.left(), spy.left()
