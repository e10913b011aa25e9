"""The six benchmark graphs, each at three scales, with a check of its result.

Scales
------
``full``
    The sizes the issue names: what the published table shows.
``small``
    For engines where one call costs about a second (Lithops localhost, whose
    anchor makes one call per task): the same graph shapes, a few dozen
    tasks each; used in full and quick runs alike.
``quick``
    Tiny sizes for the CI smoke run (``--quick``).

A collection is built once per workload and scale and reused by every runner,
so that random arrays (whose seeds are fixed when the graph is built) give
the same numbers everywhere; the expected result is that collection computed
once by Dask's synchronous scheduler.

Task functions live at module level so that out-of-process engines can
import them (``python -m benchmarks`` puts the repository on
``PYTHONPATH`` for their workers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SCALES", "WORKLOADS", "Workload"]

SCALES = ("full", "small", "quick")


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def _overhead(n: int) -> Any:
    from dask import delayed

    level = [delayed(inc, pure=True)(i) for i in range(n)]
    while len(level) > 1:
        pairs = [
            delayed(add, pure=True)(a, b) for a, b in zip(level[::2], level[1::2], strict=False)
        ]
        if len(level) % 2:
            pairs.append(level[-1])
        level = pairs
    return level[0]


def _seed(rows: int, cols: int, chunk: int) -> Any:
    import dask.array as da

    x = da.random.random((rows, cols), chunks=(chunk, chunk))
    return np.sum(x, axis=1)


def _transpose(n: int, chunk: int) -> Any:
    import dask.array as da

    x = da.random.random((n, n), chunks=(chunk, chunk))
    return (x + x.T).mean()


def _rechunk(n: int, width: int) -> Any:
    import dask.array as da

    x = da.random.random((n, n), chunks=(n, width))
    return x.rechunk((width, n)).sum()


_WORDS = [
    "dask",
    "executor",
    "graph",
    "task",
    "batch",
    "chunk",
    "worker",
    "lambda",
    "cloud",
    "scheduler",
    "array",
    "bag",
    "frame",
    "delayed",
    "future",
    "ray",
    "lithops",
    "process",
    "thread",
    "pool",
]


def _line(i: int) -> str:
    n = len(_WORDS)
    return " ".join(_WORDS[(i * k + k * k) % n] for k in range(1, 9))


def _wordcount(lines: int, partitions: int) -> Any:
    import dask.bag as db

    b = db.from_sequence([_line(i) for i in range(lines)], npartitions=partitions)
    return b.str.split().flatten().frequencies(sort=True)


def make_partition(seed: int, rows: int) -> Any:
    """One partition of the groupby table, generated where the task runs."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "key": rng.integers(0, 1000, rows),
            "x": rng.random(rows),
            "y": rng.integers(0, 100, rows).astype("float64"),
        }
    )


def _groupby(rows: int, partitions: int) -> Any:
    import dask.dataframe as dd

    per = rows // partitions
    df = dd.from_map(make_partition, list(range(partitions)), rows=per)
    return df.groupby("key").agg({"x": "mean", "y": ["sum", "max"]})


def _check_exact(expected: Any, got: Any) -> None:
    assert got == expected, f"expected {expected!r}, got {got!r}"


def _check_close(expected: Any, got: Any) -> None:
    e, g = np.asarray(expected), np.asarray(got)
    assert e.shape == g.shape, f"shape {g.shape} != expected {e.shape}"
    assert np.allclose(e, g, rtol=1e-9, atol=1e-12), f"values differ: {g!r} vs {e!r}"


def _check_counts(expected: Any, got: Any) -> None:
    assert dict(got) == dict(expected), "word counts differ"


def _check_frame(expected: Any, got: Any) -> None:
    import pandas as pd

    pd.testing.assert_frame_equal(got.sort_index(), expected.sort_index(), rtol=1e-9)


@dataclass(frozen=True)
class Workload:
    """One benchmark graph.

    ``sizes`` maps a scale to the keyword arguments of ``build`` and
    ``labels`` to how the table names that size.
    """

    name: str
    title: str
    build: Callable[..., Any]
    sizes: dict[str, dict[str, int]]
    labels: dict[str, str]
    check: Callable[[Any, Any], None]

    def collection(self, scale: str) -> Any:
        return self.build(**self.sizes[scale])


WORKLOADS: list[Workload] = [
    Workload(
        "overhead",
        "10k trivial delayed tasks",
        _overhead,
        {"full": {"n": 10_000}, "small": {"n": 100}, "quick": {"n": 1_000}},
        {
            "full": "10,000 inc + tree sum",
            "small": "100 inc + tree sum",
            "quick": "1,000 inc + tree sum",
        },
        _check_exact,
    ),
    Workload(
        "seed",
        "sum(random, axis=1)",
        _seed,
        {
            "full": {"rows": 10_000, "cols": 1_000, "chunk": 1_000},
            "small": {"rows": 10_000, "cols": 1_000, "chunk": 1_000},
            "quick": {"rows": 2_000, "cols": 500, "chunk": 500},
        },
        {"full": "10000x1000 / 1000", "small": "10000x1000 / 1000", "quick": "2000x500 / 500"},
        _check_close,
    ),
    Workload(
        "transpose",
        "(x + x.T).mean()",
        _transpose,
        {
            "full": {"n": 20_000, "chunk": 2_000},
            "small": {"n": 2_000, "chunk": 1_000},
            "quick": {"n": 1_000, "chunk": 250},
        },
        {"full": "20000² / 2000", "small": "2000² / 1000", "quick": "1000² / 250"},
        _check_close,
    ),
    Workload(
        "rechunk",
        "all-to-all rechunk + sum",
        _rechunk,
        {
            "full": {"n": 8_000, "width": 100},
            "small": {"n": 1_000, "width": 250},
            "quick": {"n": 1_000, "width": 100},
        },
        {
            "full": "8000² cols/100 → rows/100",
            "small": "1000² /250 → /250",
            "quick": "1000² /100 → /100",
        },
        _check_close,
    ),
    Workload(
        "wordcount",
        "bag word count",
        _wordcount,
        {
            "full": {"lines": 100_000, "partitions": 50},
            "small": {"lines": 10_000, "partitions": 4},
            "quick": {"lines": 10_000, "partitions": 10},
        },
        {"full": "100,000 lines / 50", "small": "10,000 lines / 4", "quick": "10,000 lines / 10"},
        _check_counts,
    ),
    Workload(
        "groupby",
        "dataframe groupby-agg",
        _groupby,
        {
            "full": {"rows": 2_000_000, "partitions": 20},
            "small": {"rows": 200_000, "partitions": 4},
            "quick": {"rows": 200_000, "partitions": 4},
        },
        {"full": "2M rows / 20", "small": "200k rows / 4", "quick": "200k rows / 4"},
        _check_frame,
    ),
]
