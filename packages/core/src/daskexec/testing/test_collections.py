"""Every Dask collection gives the same result as Dask's synchronous scheduler."""

from __future__ import annotations

import operator
from typing import Any

import dask
import dask.array as da
import dask.bag as db
import numpy as np
import pandas as pd
import pytest
from dask import delayed

import daskexec
from daskexec.testing.graphs import add, inc, tree_sum, tree_sum_expected

dd = pytest.importorskip("dask.dataframe")


def _same(collection: Any, scheduler: daskexec.ExecutorScheduler) -> None:
    expected = dask.compute(collection, scheduler="sync")[0]
    (got,) = dask.compute(collection, scheduler=scheduler)
    if isinstance(expected, (pd.DataFrame, pd.Series)):
        pd.testing.assert_frame_equal(
            pd.DataFrame(got).sort_index(), pd.DataFrame(expected).sort_index()
        )
    elif isinstance(expected, np.ndarray) or np.isscalar(expected):
        np.testing.assert_allclose(got, expected)
    else:
        assert got == expected, f"{got!r} != {expected!r}"


def test_seed_example(scheduler: daskexec.ExecutorScheduler) -> None:
    x = da.random.default_rng(0).random((2000, 500), chunks=(200, 500))
    _same(np.sum(x, axis=1), scheduler)


@pytest.mark.parametrize(
    "build",
    [
        lambda x: (x + x.T).mean(),
        lambda x: x.rechunk((50, 400)).sum(axis=0),
        lambda x: x[::3, 10:200].std(),
        lambda x: da.linalg.qr(x[:, :40])[1],
        lambda x: da.concatenate([x, x * 2], axis=0).max(axis=1),
        lambda x: (x @ x.T)[:5, :5],
        lambda x: da.unique(da.round(x[:20, :20] * 10)),
    ],
    ids=["transpose-mean", "rechunk", "slicing-std", "qr", "concatenate", "matmul", "unique"],
)
def test_array(build: Any, scheduler: daskexec.ExecutorScheduler) -> None:
    x = da.random.default_rng(1).random((400, 400), chunks=(100, 100))
    _same(build(x), scheduler)


def test_bag(scheduler: daskexec.ExecutorScheduler) -> None:
    words = [f"w{i % 37} w{i % 11}" for i in range(2000)]
    b = db.from_sequence(words, npartitions=8)
    counts = b.map(str.split).flatten().frequencies()
    assert sorted(counts.compute(scheduler=scheduler)) == sorted(counts.compute(scheduler="sync"))
    folded = db.range(1000, npartitions=10).foldby(lambda x: x % 7, operator.add, 0)
    assert sorted(folded.compute(scheduler=scheduler)) == sorted(folded.compute(scheduler="sync"))
    _same(db.range(100, npartitions=5).filter(lambda x: x % 3 == 0).map(inc).sum(), scheduler)


def test_dataframe(scheduler: daskexec.ExecutorScheduler) -> None:
    pdf = pd.DataFrame(
        {"k": np.arange(5000) % 13, "v": np.arange(5000, dtype="f8"), "w": np.arange(5000) % 5}
    )
    df = dd.from_pandas(pdf, npartitions=7)
    _same(df.groupby("k").v.agg(["sum", "mean", "count"]), scheduler)
    _same(df[df.v > 100].w.value_counts().to_frame(), scheduler)
    other = dd.from_pandas(pd.DataFrame({"k": range(13), "name": [f"n{i}" for i in range(13)]}), 2)
    merged = df.merge(other, on="k").groupby("name").v.sum().to_frame()
    _same(merged, scheduler)


def test_delayed_nested_outputs(scheduler: daskexec.ExecutorScheduler) -> None:
    a = delayed(inc)(1)
    b = delayed(add)(a, 10)
    out = dask.compute({"a": a, "list": [a, b, (b, 3)], "plain": 5}, scheduler=scheduler)
    assert out == ({"a": 2, "list": [2, 12, (12, 3)], "plain": 5},)


def test_closures_and_lambdas(scheduler: daskexec.ExecutorScheduler) -> None:
    offset = 7

    def shift(x: int) -> int:
        return x + offset

    values = [delayed(lambda v: v * 2)(i) for i in range(20)]
    total = delayed(sum)([delayed(shift)(v) for v in values])
    assert total.compute(scheduler=scheduler) == sum(2 * i + 7 for i in range(20))


def test_large_graph(scheduler: daskexec.ExecutorScheduler) -> None:
    total = tree_sum(10_000)
    assert total.compute(scheduler=scheduler) == tree_sum_expected(10_000)
    stats = scheduler.last_stats
    assert stats is not None and stats.tasks == 19_999, stats


def test_persist_and_multiple_collections(scheduler: daskexec.ExecutorScheduler) -> None:
    x = da.arange(100, chunks=10)
    (y,) = dask.persist(x * 2, scheduler=scheduler)
    assert len(y.dask) == 10
    a, b = dask.compute(y.sum(), (x + 1).max(), scheduler=scheduler)
    assert (a, b) == (9900, 100)


def test_legacy_and_task_spec_graphs(scheduler: daskexec.ExecutorScheduler) -> None:
    from dask._task_spec import Alias, DataNode, Task, TaskRef

    legacy = {"a": 1, "b": (inc, "a"), "c": (add, "b", (inc, "a")), "d": "c", "e": ["c", "d"]}
    assert scheduler(legacy, ["c", "d", "e"]) == (4, 4, [4, 4])
    spec = {
        "a": DataNode("a", 5),
        "b": Task("b", inc, TaskRef("a")),
        "c": Alias("c", "b"),
        "d": Task("d", add, TaskRef("b"), TaskRef("c")),
    }
    assert scheduler(spec, [["d"], "c"]) == ((12,), 6)


def test_config_and_seed_forms(executor: Any) -> None:
    x = da.ones((100, 100), chunks=(25, 25))
    with dask.config.set(scheduler=daskexec.ExecutorScheduler(executor)):
        assert x.sum().compute() == 10_000
    y = x.sum(axis=0)
    got = y.compute(
        scheduler=daskexec.executor_scheduler, executor=executor, batch_size=10, timeout=0.01
    )
    np.testing.assert_array_equal(got, np.full(100, 100.0))


def stack(n: int = 2, size: int = 400) -> da.Array:
    return da.random.default_rng(0).random((n, size, size), chunks=(1, size, size))


def test_outputs_are_ordinary_writable_objects(scheduler: daskexec.ExecutorScheduler) -> None:
    a, b = dask.compute(stack(n=2) + 1, (stack(n=2) * 2)[0], scheduler=scheduler)
    a[0, 0, 0] = -1.0
    b[:] = 0.0
    assert a[0, 0, 0] == -1.0 and not b.any()
    pdf = pd.DataFrame({"x": np.arange(100_000, dtype=float), "y": 1.0})
    df = dd.from_pandas(pdf, npartitions=4).compute(scheduler=scheduler)
    df.iloc[0, 0] = 5.0
    assert df.iloc[0, 0] == 5.0
