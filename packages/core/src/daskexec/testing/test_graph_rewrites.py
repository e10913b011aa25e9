"""Graph rewrites (slices inside their consumer, root families) give Dask's results."""

from __future__ import annotations

import concurrent.futures

import dask
import dask.array as da
import numpy as np

import daskexec
from daskexec import _graph
from daskexec.testing.graphs import rechunked, transpose_sum


def test_results_match_on_the_session_executor(executor: concurrent.futures.Executor) -> None:
    y = rechunked()
    s = daskexec.ExecutorScheduler(executor)
    np.testing.assert_allclose(y.compute(scheduler=s), y.compute(scheduler="sync"))
    assert s.last_stats is not None
    (opt,) = dask.optimize(y)
    ntasks = len(_graph.prepare(opt.__dask_graph__(), opt.__dask_keys__()).nodes)
    store = daskexec.describe(executor).store
    if store is not None and getattr(store, "mapped", False):
        assert s.last_stats.tasks < ntasks  # the slices ran inside their consumers
    else:
        assert s.last_stats.tasks >= ntasks  # (plus the finalize task)
    x = da.arange(1000, chunks=100)
    z = (x[:999:3] + x[1::3]).sum()
    assert z.compute(scheduler=s) == z.compute(scheduler="sync")


def test_results_are_right_on_the_session_executor(executor: concurrent.futures.Executor) -> None:
    s = daskexec.ExecutorScheduler(executor)
    y = transpose_sum()
    np.testing.assert_allclose(y.compute(scheduler=s), y.compute(scheduler="sync"))
    assert s.last_stats is not None
    if daskexec.describe(executor).out_of_process and daskexec.describe(executor).workers <= 14:
        # a family, its consumers and their combination go out as one item each
        assert s.last_stats.work_items < s.last_stats.remote_tasks
