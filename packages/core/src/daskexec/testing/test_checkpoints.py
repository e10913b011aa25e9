"""Checkpoints: a compute whose driver was killed resumes where it stopped.

Task functions live in this module, or in ``__main__`` of a driver script
run in a fresh interpreter (which is killed half-way); their side effects
(one file per completed task) tell which tasks ran, and when.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import psutil
import pytest
from dask import delayed

import daskexec

# -- tasks with side effects -----------------------------------------------------------


def record(i: int, folder: str) -> int:
    """Leave a file saying task ``i`` ran to its end; return a value made from ``i``."""
    Path(folder, f"done-{i}-{uuid.uuid4().hex}").touch()
    return i * i


def ran(folder: Path) -> list[int]:
    """Which tasks ran, once per time they ran, sorted."""
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("done-*"))


def steps(folder: Path, n: int, pure: bool = True) -> list[Any]:
    """``n`` independent tasks: ``step-i``, or with ``pure=False`` uuid keys."""
    if pure:
        return [
            delayed(record, pure=True)(i, str(folder), dask_key_name=f"step-{i}") for i in range(n)
        ]
    return [delayed(record, pure=False)(i, str(folder)) for i in range(n)]


def graph(folder: Path, n: int, pure: bool = True) -> Any:
    """The sum of :func:`steps` (its key a token of theirs when they are impure)."""
    if pure:
        return delayed(sum, pure=True)(steps(folder, n), dask_key_name=f"total-{n}")
    return delayed(sum, pure=True)(steps(folder, n, pure=False))


# -- resume, list, clear ---------------------------------------------------------------


def test_resume_loads_what_was_done(executor: concurrent.futures.Executor, tmp_path: Path) -> None:
    folder, where = tmp_path / "effects", tmp_path / "ckpt"
    folder.mkdir()
    s = daskexec.ExecutorScheduler(executor, checkpoint=where)
    # outputs are always written (a task's result used only inside its work
    # item, as a chain packed with its consumer, is not)
    first = dask.compute(*steps(folder, 6), scheduler=s)
    assert ran(folder) == list(range(6)), first
    ckpt = daskexec.Checkpoint(where)
    assert {f"step-{i}" for i in range(6)} <= set(ckpt.keys()), ckpt.keys()

    # a bigger graph holding the same keys runs only the new tasks
    assert graph(folder, 9).compute(scheduler=s) == sum(i * i for i in range(9))
    assert ran(folder) == [*range(6), 6, 7, 8], ran(folder)
    stats = s.last_stats
    assert stats is not None and stats.loaded == 6, stats
    assert "6 loaded from the checkpoint" in stats.summary()

    # forgetting some keys runs their tasks again; clearing, all of them
    ckpt.discard(["step-0", "step-1", "total-9"])
    assert "step-0" not in ckpt and "step-2" in ckpt
    graph(folder, 9).compute(scheduler=s)
    counts = [ran(folder).count(i) for i in range(6)]
    assert counts == [2, 2, 1, 1, 1, 1], ran(folder)
    ckpt.clear()
    assert len(ckpt) == 0 and [p.name for p in where.iterdir()] == [".daskexec-checkpoint"]
    graph(folder, 3).compute(scheduler=s)
    assert ran(folder).count(2) == 2


def test_a_loaded_task_culls_its_inputs(
    executor: concurrent.futures.Executor, tmp_path: Path
) -> None:
    """A task whose consumers are all loaded is neither run nor loaded."""
    folder = tmp_path / "effects"
    folder.mkdir()
    a = delayed(record, pure=True)(1, str(folder), dask_key_name="a")
    b = delayed(lambda v: v + 1, pure=True)(a, dask_key_name="b")
    s = daskexec.ExecutorScheduler(executor, checkpoint=tmp_path / "ckpt")
    assert b.compute(scheduler=s) == 2
    assert b.compute(scheduler=s) == 2
    assert ran(folder) == [1]
    assert s.last_stats is not None and s.last_stats.loaded == 1, s.last_stats


def test_nondeterministic_keys_are_recomputed(
    executor: concurrent.futures.Executor, tmp_path: Path
) -> None:
    folder, where = tmp_path / "effects", tmp_path / "ckpt"
    folder.mkdir()
    s = daskexec.ExecutorScheduler(executor, checkpoint=where)
    g = graph(folder, 4, pure=False)  # delayed(..., pure=False): uuid keys
    g.compute(scheduler=s)
    g.compute(scheduler=s)
    assert ran(folder) == [0, 0, 1, 1, 2, 2, 3, 3], ran(folder)
    assert not any(k.startswith("record-") for k in daskexec.Checkpoint(where))


def test_arrays_resume_with_the_same_result(
    executor: concurrent.futures.Executor, tmp_path: Path
) -> None:
    x = da.from_array(np.arange(4000.0).reshape(40, 100), chunks=(10, 50))
    y = (x.T @ x + 1).sum(axis=0)
    expected = y.compute(scheduler="sync")
    s = daskexec.ExecutorScheduler(executor, checkpoint=str(tmp_path / "ckpt"))
    np.testing.assert_array_equal(y.compute(scheduler=s), expected)
    again = y.compute(scheduler=s)
    np.testing.assert_array_equal(again, expected)
    again[0] = -1  # what compute returns is writable, loaded or not
    assert s.last_stats is not None and s.last_stats.loaded > 0, s.last_stats


def test_checkpoint_as_a_compute_keyword(
    executor: concurrent.futures.Executor, tmp_path: Path
) -> None:
    folder = tmp_path / "effects"
    folder.mkdir()
    g = graph(folder, 3)
    s = daskexec.ExecutorScheduler(executor)
    g.compute(scheduler=s, checkpoint=tmp_path / "ckpt")
    g.compute(scheduler=s, checkpoint=daskexec.Checkpoint(tmp_path / "ckpt"))
    assert ran(folder) == [0, 1, 2]
    # the total was written: it alone is loaded, its inputs are culled
    assert s.last_stats is not None and s.last_stats.loaded == 1, s.last_stats
    s2 = daskexec.ExecutorScheduler(executor, checkpoint=tmp_path / "ckpt")
    g.compute(scheduler=s2, checkpoint=False)  # off for one compute
    assert ran(folder) == [0, 0, 1, 1, 2, 2]


class FullDisk(daskexec.DirectoryStorage):
    """A checkpoint directory that fills up once checked (its probe is written)."""

    def put(self, name: str, chunks: Any) -> None:
        if not name.startswith("."):
            raise OSError(28, "No space left on device")
        super().put(name, chunks)


def test_a_write_that_fails_fails_the_compute(
    executor: concurrent.futures.Executor, tmp_path: Path
) -> None:
    folder = tmp_path / "effects"
    folder.mkdir()
    s = daskexec.ExecutorScheduler(executor, checkpoint=FullDisk(str(tmp_path / "ckpt")))
    with pytest.raises(daskexec.CheckpointError, match="cannot write the result of task 'step-"):
        graph(folder, 2).compute(scheduler=s)


@pytest.mark.requires("shared-memory")
def test_a_result_that_cannot_be_pickled_is_not_written(
    executor: concurrent.futures.Executor, tmp_path: Path
) -> None:
    if daskexec.describe(executor).out_of_process:
        pytest.skip("results of this executor are pickled to come back: a lock cannot")
    lock = delayed(threading.Lock, pure=True)(dask_key_name="a-lock")
    s = daskexec.ExecutorScheduler(executor, checkpoint=tmp_path / "ckpt")
    assert isinstance(lock.compute(scheduler=s), type(threading.Lock()))
    assert "a-lock" not in daskexec.Checkpoint(tmp_path / "ckpt")


# -- bad input -------------------------------------------------------------------------


def test_bad_checkpoint_locations(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="checkpoint must be a directory"):
        daskexec.ExecutorScheduler(checkpoint=42)  # type: ignore[arg-type]
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(daskexec.CheckpointError, match="cannot use .*a-file"):
        daskexec.ExecutorScheduler(checkpoint=blocker / "ckpt")
    # a directory of the user's own files is not a checkpoint (clear() would delete them)
    with pytest.raises(daskexec.CheckpointError, match="is not a daskexec checkpoint"):
        daskexec.Checkpoint(tmp_path)
    assert blocker.read_text() == "not a directory"
    with pytest.raises(TypeError, match="unknown keyword 'checkpiont'.*'checkpoint'"):
        delayed(record)(1, str(tmp_path)).compute(
            scheduler=daskexec.ExecutorScheduler(), checkpiont=str(tmp_path)
        )
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(daskexec.CheckpointError, match="cannot use"):
                daskexec.Checkpoint(locked)
        finally:
            locked.chmod(0o700)


# -- the driver killed half-way --------------------------------------------------------

DRIVER = """
import json, os, sys, time, uuid
from pathlib import Path
import dask, daskexec
from dask import delayed

FOLDER = Path(sys.argv[2])

def step(i):
    # phase 1: six tasks may finish (each claims a token); the others wait
    # until the test kills this driver, then die without finishing
    if (FOLDER / "phase").read_text() == "1":
        claimed = False
        for t in range(6):
            try:
                os.close(os.open(FOLDER / f"token-{t}", os.O_CREAT | os.O_EXCL))
                claimed = True
                break
            except FileExistsError:
                pass
        if not claimed:
            while (FOLDER / "phase").read_text() == "1":
                time.sleep(0.05)
            os._exit(3)
    (FOLDER / f"done-{i}-{uuid.uuid4().hex}").touch()
    return i * i

if __name__ == "__main__":  # process pools start workers by importing the script
    steps = [delayed(step, pure=True)(i, dask_key_name=f"step-{i}") for i in range(12)]
    total = delayed(sum, pure=True)(steps, dask_key_name="total")
    s = daskexec.ExecutorScheduler(BACKEND, checkpoint=sys.argv[1])
    value = total.compute(scheduler=s)
    print(json.dumps({"value": value, "loaded": s.last_stats.loaded}))
"""


def _shell_env() -> dict[str, str]:
    """The environment of a driver started from a shell, not from this test process.

    Lithops exports its session (``__LITHOPS_SESSION_ID`` and an executor
    count) to child processes: two drivers started from a process that used
    Lithops would give their executors the same ids, and the second would
    read the killed first one's leftover job outputs as its own.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith("__LITHOPS_")}


def _start(script: Path, where: Path, folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(where), str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=script.parent,
        env=_shell_env(),
        start_new_session=True,  # its own process group, killed whole
    )


def _kill_all(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    """Kill a driver, its process group and every process below it, as a crash would.

    An engine may start helpers in sessions of their own (Lithops' localhost
    runner), which would run the killed driver's queued work on: the driver
    and its descendants are frozen first (nothing new can start), then killed.
    """
    family: dict[int, psutil.Process] = {}
    with contextlib.suppress(psutil.Error):
        driver = psutil.Process(proc.pid)
        driver.suspend()
        while True:
            new = [p for p in driver.children(recursive=True) if p.pid not in family]
            if not new:
                break
            for p in new:
                with contextlib.suppress(psutil.Error):
                    p.suspend()
                family[p.pid] = p
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    for p in family.values():
        with contextlib.suppress(psutil.Error):
            p.kill()
    proc.communicate(timeout=30)
    return list(family.values())


def _wait_gone(procs: list[psutil.Process], seconds: float) -> list[psutil.Process]:
    """Wait until ``procs`` are gone (a zombie counts as gone); return those that are not."""
    deadline = time.monotonic() + seconds
    while True:
        alive = []
        for p in procs:
            with contextlib.suppress(psutil.Error):
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def test_killed_driver_resumes(backend_name: str, tmp_path: Path, no_leaks: None) -> None:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER.replace("BACKEND", repr(backend_name))))
    folder, where = tmp_path / "effects", tmp_path / "ckpt"
    folder.mkdir()
    (folder / "phase").write_text("1")
    first = _start(script, where, folder)
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while len(list(where.glob("sstep-*"))) < 6:
            if first.poll() is not None:
                raise AssertionError(f"the driver ended early: {first.communicate()[1][-3000:]}")
            assert time.monotonic() < deadline, "six tasks never finished"
            time.sleep(0.1)
    finally:
        family = _kill_all(first)
        (folder / "phase").write_text("2")  # what still waits gives up
        alive = _wait_gone(family, 30)
        assert not alive, f"the killed driver left {alive}"
    done_first = ran(folder)
    assert len(done_first) == 6, done_first
    assert sorted(daskexec.Checkpoint(where).keys()) == sorted(f"step-{i}" for i in done_first)

    second = subprocess.run(
        [sys.executable, str(script), str(where), str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=_shell_env(),
    )
    assert second.returncode == 0, second.stderr[-3000:]
    out = json.loads(second.stdout.strip().splitlines()[-1])
    assert out == {"value": sum(i * i for i in range(12)), "loaded": 6}, out
    # every task ran once in all: the six finished before the kill were loaded
    assert ran(folder) == list(range(12)), ran(folder)
    assert not [p.name for p in where.iterdir() if p.name.startswith(".tmp")], "temporary files"
