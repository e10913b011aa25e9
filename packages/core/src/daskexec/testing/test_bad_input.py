"""Bad input gets a clear error that names the problem."""

from __future__ import annotations

import threading

import dask
import pytest
from dask import delayed

import daskexec
from daskexec.testing.graphs import inc
from daskexec.testing.plugin import ExecutorFactory


def test_executor_already_shut_down(new_executor: ExecutorFactory) -> None:
    ex = new_executor()
    ex.shutdown(wait=True)
    with pytest.raises(RuntimeError, match="shut ?down"):  # ours, or the executor's own
        delayed(inc)(1).compute(scheduler=daskexec.ExecutorScheduler(ex))


@pytest.mark.requires("separate-processes")
def test_unpicklable_task_is_named(scheduler: daskexec.ExecutorScheduler) -> None:
    lock = threading.Lock()
    task = delayed(lambda lk, x: x)(lock, 1, dask_key_name="holds-a-lock")
    with pytest.raises(TypeError, match="task 'holds-a-lock' cannot be serialized"):
        task.compute(scheduler=scheduler)


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
    if not engine.out_of_process:  # the scheduler hands an out-of-process engine a copy
        assert target.sum() == 10
