"""``item_timeout``: a work item that runs past it is lost, retried, then an error names it.

The hung task sleeps far past the deadline, as a task stuck on a lock or a
network call without a timeout would.  The scheduler owns its executor
here (started by backend name), so that the check for leftovers covers what
the hung copies leave: an owned executor is shut down without waiting for
them, its worker processes stopped.
"""

from __future__ import annotations

import os
import time
from typing import Any

import dask
import pytest
from dask import delayed

import daskexec
from daskexec.testing.test_stragglers import warm_up


def hang_once(x: int, marker: str, hang: float) -> int:
    """Hang for ``hang`` seconds the first time; return at once on a retry."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return x + 1
    os.close(fd)
    time.sleep(hang)
    return x + 1


def hang_always(x: int, hang: float) -> int:
    time.sleep(hang)
    return x + 1


def quick(x: int) -> int:
    return x + 1


def _deadline(engine: daskexec.EngineInfo) -> float:
    """Far above one normal call on the engine under test, on a busy machine.

    (A Lithops localhost call is a fresh process: a few seconds when the
    machine is loaded.)
    """
    return max(3.0, 20 * engine.call_overhead)


def test_a_hung_item_passes_its_deadline_and_is_retried(
    no_leaks: None, new_executor: Any, engine: daskexec.EngineInfo, tmp_path: Any
) -> None:
    # a fresh executor, shut down (waiting for the hung copy) before the leak check;
    # warm: the deadline counts from a free worker, and a worker's start-up is not a hang
    ex = new_executor()
    warm_up(ex, engine)
    deadline = _deadline(engine)
    hang = 2 * deadline
    parts = [delayed(quick)(i) for i in range(3)]
    hung = delayed(hang_once)(100, str(tmp_path / "hung"), hang, dask_key_name="hung-task")
    s = daskexec.ExecutorScheduler(ex, item_timeout=deadline, retries=3)
    begin = time.perf_counter()
    assert dask.compute(*parts, hung, scheduler=s) == (1, 2, 3, 101)
    elapsed = time.perf_counter() - begin
    st = s.last_stats
    assert st is not None
    # (a loaded machine may be slow to start a replacement worker: more may time out)
    assert st.timeouts >= 1 and st.retries >= 1, st.summary()
    # (the hung task's item: on an expensive engine it also holds quick tasks)
    assert any(r.timed_out and r.lost for r in st.items), st.items
    # it did not wait for the hang (an engine that cannot stop the hung copy may
    # queue the retry behind it on the same worker: one more deadline)
    assert elapsed < hang + deadline, (elapsed, hang, st.summary())


def test_an_item_that_always_hangs_fails_naming_its_task(
    backend_name: str, engine: daskexec.EngineInfo, no_leaks: None
) -> None:
    # the scheduler owns this executor: after the error it stops the hung copies
    # (terminates process workers) instead of waiting; the deadline covers the
    # start of the new executor's workers
    deadline = _deadline(engine)
    doomed = delayed(hang_always)(1, 2 * deadline, dask_key_name="doomed-task")
    s = daskexec.ExecutorScheduler(backend_name, item_timeout=deadline, retries=1)
    with pytest.raises(daskexec.ItemTimeoutError, match="doomed-task") as info:
        doomed.compute(scheduler=s)
    message = str(info.value)
    assert "item_timeout" in message and "2 times" in message, message
    assert isinstance(info.value, daskexec.EngineFailure)
    st = s.last_stats
    assert st is not None and st.timeouts == 2, st.summary()
