"""Stragglers get a backup copy, and the first result wins; a task that writes never does.

A user's straggler is slow by circumstance (a slow node, a cold cache), not
by its code: here one task is slow on its first run only, decided through a
marker file that the first run creates.  Each test makes few calls, so that
it stays cheap on an engine that costs a second per call.
"""

from __future__ import annotations

import os
import time
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask import delayed

import daskexec


def first_run_slow(i: int, marker: str, unit: float, slow: float) -> int:
    """Sleep ``unit``; the first run of the task whose marker does not exist yet sleeps ``slow``."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        time.sleep(unit)
        return i * 10
    os.close(fd)
    time.sleep(slow)
    return i * 10


def nap(i: int, seconds: float) -> int:
    time.sleep(seconds)
    return i


def warm_up(executor: Any, engine: daskexec.EngineInfo) -> float:
    """One call per worker, so that no worker's start-up (process spawn, imports) is timed.

    Then a second round: returns the wall time of one work item of :data:`NAP`
    seconds on this engine (a Lithops localhost call is a fresh process:
    seconds on a busy machine).
    """
    s = daskexec.ExecutorScheduler(executor, pack_size=1, backups=False)
    naps = [delayed(nap)(i, NAP) for i in range(engine.workers)]
    dask.compute(*naps, scheduler=s)
    begin = time.perf_counter()  # warm now: time one round
    dask.compute(*naps, scheduler=s)
    return max(NAP, time.perf_counter() - begin)


#: How long a sibling's task runs.
NAP = 0.2


def test_a_straggler_gets_a_backup_and_the_first_result_wins(
    executor: Any, engine: daskexec.EngineInfo, tmp_path: Any
) -> None:
    # the straggler runs 20 times as long as a sibling's whole work item
    slow = 20 * warm_up(executor, engine)
    ran = tmp_path / "ran"  # the siblings' marker exists: they are never slow
    ran.touch()
    markers = [str(tmp_path / "straggler")] + [str(ran)] * 9
    parts = [delayed(first_run_slow, pure=True)(i, m, NAP, slow) for i, m in enumerate(markers)]
    # one task per work item: ten items of one group, as Cubed's rule wants
    s = daskexec.ExecutorScheduler(executor, pack_size=1)
    begin = time.perf_counter()
    assert dask.compute(*parts, scheduler=s) == tuple(10 * i for i in range(10))
    elapsed = time.perf_counter() - begin
    st = s.last_stats
    assert st is not None
    # the straggler's copy won; a sibling slowed down by the engine (a busy
    # machine, a distributed worker's pause) may get a copy of its own
    assert st.backups >= 1 and st.backups_won >= 1, st.summary()
    assert st.invocations == st.work_items + st.retries + st.backups, st.summary()
    backups = [r for r in st.items if r.backup]
    assert len(backups) == st.backups and all(r.tasks == 1 for r in backups), backups
    # it did not wait for the straggler (generous: on 2 workers the siblings take ~40%)
    assert elapsed < 0.8 * slow, (elapsed, slow, st.summary())


class FileTarget:
    """A zarr-like target on disk: each region its own file, every write logged."""

    def __init__(self, folder: str, shape: tuple[int, ...], dtype: Any) -> None:
        self.folder = folder
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.ndim = len(shape)

    def __setitem__(self, region: tuple[slice, ...], value: np.ndarray) -> None:
        start = region[0].start or 0
        with open(os.path.join(self.folder, "log"), "a") as log:
            log.write(f"{start}\n")
        np.save(os.path.join(self.folder, f"{start}.npy"), value)

    def read(self) -> np.ndarray:
        starts = sorted(int(n[:-4]) for n in os.listdir(self.folder) if n.endswith(".npy"))
        return np.concatenate([np.load(os.path.join(self.folder, f"{s}.npy")) for s in starts])

    def writes(self) -> list[int]:
        with open(os.path.join(self.folder, "log")) as log:
            return sorted(int(line) for line in log)


def slow_block(x: np.ndarray, marker: str, unit: float, slow: float) -> np.ndarray:
    """The block starting at 0 is slow on its first run (a straggler, were it safe to repeat)."""
    if x[0] == 0:
        first_run_slow(0, marker, unit, slow)
    else:
        time.sleep(unit)
    return x * 2


def test_a_writing_layer_is_never_duplicated(
    executor: Any, engine: daskexec.EngineInfo, tmp_path: Any
) -> None:
    # slow enough to be backed up, were it safe to run twice
    slow = 4 * warm_up(executor, engine)
    x = da.arange(100, chunks=10).map_blocks(
        slow_block, str(tmp_path / "straggler"), NAP, slow, dtype=int
    )
    folder = tmp_path / "target"
    folder.mkdir()
    target = FileTarget(str(folder), (100,), int)
    s = daskexec.ExecutorScheduler(executor, pack_size=1)
    da.store(x, target, lock=False, scheduler=s)
    st = s.last_stats
    assert st is not None
    # Dask fuses the blocks with their writes (one "...-store-map" task each):
    # the slow block is a straggler that writes, so it gets no copy
    assert st.backups == 0, st.summary()
    assert target.writes() == list(range(0, 100, 10))
    np.testing.assert_array_equal(target.read(), np.arange(100) * 2)
