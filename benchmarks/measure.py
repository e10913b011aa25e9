"""Timing and driver memory of one compute.

Time is wall-clock (``time.perf_counter``) around ``collection.compute``.
Memory is measured in its own repeat, never in a timed one, by one of:

``tracemalloc`` (default)
    The peak of memory allocated through Python's allocators while the
    compute runs, NumPy and pandas buffers included (NumPy reports its data
    buffers to tracemalloc), counted from the start of the compute.  Precise
    and independent of what earlier runs left in the allocator, but it slows
    fine-grained graphs several-fold (a 20,000-task graph on LocalCluster:
    minutes).  Arrow buffers are not counted.
``rss``
    The driver process's resident set size, sampled every 5 ms by a thread,
    highest sample minus the RSS just before the compute.  Counts everything
    in the process at no cost to speed, but memory an earlier run freed and
    the allocator kept (small objects; chunks below glibc's adaptive mmap
    threshold) is reused unseen, so a repeat after a warm-up reads far too
    low (a few MiB for a graph with 80 MB of chunks): indicative only.

Both measure the driver only: the process that calls ``compute``.  Runners
whose workers are threads of that process (Dask's threaded scheduler,
daskexec on threads, an in-process ``LocalCluster``) therefore count their
workers' memory too; process, Ray and Lithops workers are not counted.
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import psutil

__all__ = ["MEMORY_METHODS", "peak_memory", "timed"]

MEMORY_METHODS = ("tracemalloc", "rss")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """Run ``fn()`` after a garbage collection; return its result and wall seconds."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def peak_memory(fn: Callable[[], Any], method: str = "tracemalloc") -> int:
    """Bytes of driver memory ``fn()`` needed at its peak, measured by ``method``."""
    gc.collect()
    if method == "tracemalloc":
        return _traced_peak(fn)
    if method == "rss":
        return _rss_peak(fn)
    raise ValueError(f"unknown memory method {method!r}; choose one of {MEMORY_METHODS}")


def _traced_peak(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        tracemalloc.stop()
    return max(0, peak - base)


def _rss_peak(fn: Callable[[], Any]) -> int:
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            done.wait(0.005)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    peak = max(peak, proc.memory_info().rss)
    return max(0, peak - base)
