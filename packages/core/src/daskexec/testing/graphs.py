"""Task functions and graph builders the suite shares."""

from __future__ import annotations

import os
import time
from typing import Any

import dask
import dask.array as da
from dask.callbacks import Callback
from dask.delayed import delayed


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def slow_inc(x: int, delay: float = 0.2) -> int:
    time.sleep(delay)
    return x + 1


def slow_inc_or_fail_fourth(x: int, delay: float, folder: str) -> int:
    """Like ``slow_inc``, but the fourth task to start (whichever it is) raises at once.

    Tasks count their starts with files in ``folder``, so the count holds
    across threads, processes and machines sharing the folder.
    """
    n = 0
    while True:
        try:
            os.close(os.open(os.path.join(folder, f"start-{n}"), os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            n += 1
    if n == 3:
        raise ValueError(f"boom: {x}")
    time.sleep(delay)
    return x + 1


def fail(x: Any, message: str = "boom") -> Any:
    raise ValueError(f"{message}: {x}")


def die_once(x: int, marker: str) -> int:
    """Kill the worker process the first time; succeed once the marker exists."""
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write("died")
        os._exit(1)
    return x + 1


def always_die(x: int) -> int:
    os._exit(1)


def fail_once(x: int, marker: str) -> int:
    """Raise the first time (a task error, not an engine failure); succeed after."""
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write("failed")
        raise OSError("transient failure")
    return x + 1


def tree_sum(n: int) -> Any:
    """``n`` independent ``inc`` tasks reduced by a pairwise tree of ``add``."""
    xs = [delayed(inc)(i) for i in range(n)]
    while len(xs) > 1:
        xs = [
            delayed(add)(xs[i], xs[i + 1]) if i + 1 < len(xs) else xs[i]
            for i in range(0, len(xs), 2)
        ]
    return xs[0]


def tree_sum_expected(n: int) -> int:
    return sum(range(1, n + 1))


class Interrupt(Callback):
    """Raises KeyboardInterrupt in the driver after ``after`` tasks have finished (Ctrl-C)."""

    def __init__(self, after: int) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.after = after
        self.seen = 0

    def _posttask(self, *args: Any) -> None:
        self.seen += 1
        if self.seen == self.after:
            raise KeyboardInterrupt


def rechunked() -> Any:
    """An all-to-all rechunk that Dask plans in two stages, with slices in between."""
    with dask.config.set({"array.chunk-size": "1MiB"}):
        rng = da.random.default_rng(0)  # type: ignore[no-untyped-call]
        x = rng.random((400, 400), chunks=(400, 10))
        return x.rechunk((10, 400)).sum(axis=1)


def transpose_sum(n: int = 8) -> Any:
    rng = da.random.default_rng(0)  # type: ignore[no-untyped-call]
    x = rng.random((40 * n, 40 * n), chunks=(40, 40))
    return (x + x.T).sum()
