"""Where the inline threshold of the shared-memory store belongs, measured.

A result smaller than ``daskexec._store.INLINE_BELOW`` travels inside its
handle, through the driver; a larger one is written to ``/dev/shm`` and
mapped by its consumer.  For values of growing size, this times a graph of
independent producers with two consumers each (in separate work items,
so every value moves) on the process pool, once with every value inline and
once with every value stored, side by side in one run::

    python benchmarks/store_threshold.py [--pairs 64] [--repeats 5]

The threshold belongs where storing starts to win.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import dask
import numpy as np
from dask import delayed

import daskexec
from daskexec import _store

SIZES = [1 << k for k in range(10, 23, 2)]  # 1 KiB .. 4 MiB


def produce(nbytes: int, i: int) -> np.ndarray:
    return np.full(nbytes // 8, i, dtype=np.int64)


def consume(a: np.ndarray) -> int:
    return int(a[0]) + a.size


def _graph(nbytes: int, pairs: int) -> list[Any]:
    # two consumers each: neither joins its producer's work item, so every value moves
    out = []
    for i in range(pairs):
        value = delayed(produce)(nbytes, i)
        out += [delayed(consume)(value), delayed(consume)(value, dask_key_name=f"again-{i}")]
    return out


def _time(s: daskexec.ExecutorScheduler, nbytes: int, pairs: int, inline_below: int) -> float:
    _store.INLINE_BELOW = inline_below
    start = time.perf_counter()
    dask.compute(*_graph(nbytes, pairs), scheduler=s)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    from daskexec_stdlib import ProcessPoolExecutor

    default = _store.INLINE_BELOW
    print(f"{'size':>9}  {'inline':>9}  {'stored':>9}  stored/inline")
    with ProcessPoolExecutor() as ex:
        s = daskexec.ExecutorScheduler(ex, pack_size=1)
        _time(s, 1024, args.pairs, 0)  # warm the workers
        for nbytes in SIZES:
            inline, stored = [], []
            for _ in range(args.repeats):  # take turns: noise falls on both
                inline.append(_time(s, nbytes, args.pairs, 1 << 62))
                stored.append(_time(s, nbytes, args.pairs, 0))
            a, b = statistics.median(inline), statistics.median(stored)
            print(f"{nbytes:>9}  {a:8.3f}s  {b:8.3f}s  {b / a:.2f}x", flush=True)
    print(f"current INLINE_BELOW: {default} bytes")


if __name__ == "__main__":
    main()
