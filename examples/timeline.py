"""Where the seed example's time goes: a timeline and a breakdown, on any backend.

Run: python examples/timeline.py [processes|threads|loky|ray|lithops]
Writes timeline-<backend>.html (self-contained) and timeline-<backend>.png.
Needs: pip install "daskexec-core[diagnostics]" (and the backend's adapter).
"""

from __future__ import annotations

import sys

import dask.array as da
import numpy as np

import daskexec
from daskexec.diagnostics import ProgressBar, Timeline


def main(backend: str) -> None:
    x = da.random.random((10000, 1000), chunks=(1000, 1000))
    y = np.sum(x, axis=1)
    executor = daskexec.create_executor(backend)
    try:
        scheduler = daskexec.ExecutorScheduler(executor)
        y.compute(scheduler=scheduler)  # start the workers: the timeline shows a warm engine
        with Timeline() as timeline, ProgressBar():
            y.compute(scheduler=scheduler)
    finally:
        executor.shutdown(wait=True)
    stats = timeline.computes[-1]
    print(stats.summary())
    print(f"worker-seconds: {stats.worker_seconds:.2f}")
    timeline.save_html(f"timeline-{backend}.html")
    timeline.save_png(f"timeline-{backend}.png")
    print(f"wrote timeline-{backend}.html and timeline-{backend}.png")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "processes")
