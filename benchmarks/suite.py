"""One benchmark run: every group's runners on every workload, with checks.

Order of a group
----------------
1. Start the group's shared engines (the Ray instance) and each runner
   (executors, clusters), then time one trivial compute per runner: together
   that is the start-up, reported apart from per-graph times.
2. Per workload: one warm-up compute per runner, whose result is checked
   against Dask's synchronous scheduler (computed once per workload and
   scale, before any runner); then ``repeats`` timed rounds, each running
   every runner once in turn (interleaved, so that noise from the shared
   machine falls on all runners alike); then one memory repeat per runner.
3. Close the runners and engines, so the next group has the machine alone.

A runner that fails is recorded with its error and skipped for the rest of
that workload; the run goes on.
"""

from __future__ import annotations

import statistics
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.measure import peak_memory, timed
from benchmarks.runners import Group, Runner, trivial
from benchmarks.workloads import Workload

__all__ = ["Cell", "GroupInfo", "Results", "Startup", "run_groups"]


@dataclass
class Cell:
    group: str
    runner: str
    kind: str
    workload: str
    scale: str
    times: list[float] = field(default_factory=list)
    memory: int | None = None
    counters: dict[str, int] | None = None
    check: str = ""
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class Startup:
    group: str
    label: str
    make: float | None
    first: float | None
    note: str = ""
    error: str | None = None


@dataclass
class GroupInfo:
    name: str
    scale: str
    reference: str
    runners: list[str]
    skipped: list[str]


@dataclass
class Results:
    cells: list[Cell] = field(default_factory=list)
    startups: list[Startup] = field(default_factory=list)
    groups: list[GroupInfo] = field(default_factory=list)
    repeats: int = 0
    memory_method: str = ""
    seconds: float = 0.0
    interrupted: bool = False


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return text[:160]


class _Expected:
    """Collections and their sync results, built once per workload and scale."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], tuple[Any, Any]] = {}

    def get(self, w: Workload, scale: str) -> tuple[Any, Any]:
        key = (w.name, scale)
        if key not in self._cache:
            collection = w.collection(scale)
            start = time.perf_counter()
            expected = collection.compute(scheduler="sync")
            _log(f"  expected {w.name}/{scale} by dask sync in {time.perf_counter() - start:.2f}s")
            self._cache[key] = (collection, expected)
        return self._cache[key]


def _attempt(cell: Cell, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:
        cell.error = _short(exc)
        _log(f"    {cell.runner}: FAILED {cell.error}")
        traceback.print_exc(file=sys.stderr)
        return None


def _start(group: Group, results: Results) -> list[Runner]:
    for engine in group.engines:
        try:
            _, s = timed(engine.start)
            results.startups.append(Startup(group.name, engine.label, s, None))
        except Exception as exc:
            results.startups.append(
                Startup(group.name, engine.label, None, None, error=_short(exc))
            )
            _log(f"  engine {engine.label}: FAILED {_short(exc)}")
            return []
    ready = []
    for r in group.runners:
        try:
            _, make = timed(r.start)
            first = trivial(r)
            results.startups.append(Startup(group.name, r.label, make, first, r.note))
            ready.append(r)
            _log(f"  started {r.label}: {make:.2f}s + first task {first:.2f}s")
        except Exception as exc:
            results.startups.append(Startup(group.name, r.label, None, None, r.note, _short(exc)))
            _log(f"  {r.label}: start FAILED {_short(exc)}")
            traceback.print_exc(file=sys.stderr)
            _close(r)
    return ready


def _close(r: Runner) -> None:
    try:
        r.close()
    except Exception as exc:
        _log(f"  {r.label}: close failed: {_short(exc)}")


def _run_workload(
    group: Group,
    runners: list[Runner],
    w: Workload,
    expected: _Expected,
    repeats: int,
    memory_method: str,
) -> list[Cell]:
    collection, want = expected.get(w, group.scale)
    cells = {r.label: Cell(group.name, r.label, r.kind, w.name, group.scale) for r in runners}
    live: list[Runner] = []
    for r in runners:  # warm-up and check
        cell = cells[r.label]
        out = _attempt(cell, lambda r=r: r.compute(collection))
        if out is None:
            continue
        if not out.checkable:
            cell.check = "not checked"
        else:
            try:
                w.check(want, out.result)
                cell.check = "ok"
            except AssertionError as exc:
                cell.check = "WRONG"
                cell.error = f"result differs from dask sync: {str(exc)[:120]}"
                _log(f"    {r.label}: WRONG RESULT {exc}")
                continue
        live.append(r)
    for _ in range(repeats):
        for r in list(live):
            cell = cells[r.label]
            got = _attempt(cell, lambda r=r: timed(lambda: r.compute(collection)))
            if got is None:
                live.remove(r)
                continue
            out, wall = got
            cell.times.append(out.seconds if out.seconds is not None else wall)
            if out.counters is not None:
                cell.counters = out.counters
    if memory_method != "none":
        for r in live:
            cell = cells[r.label]
            cell.memory = _attempt(
                cell, lambda r=r: peak_memory(lambda: r.compute(collection), memory_method)
            )
    for r in runners:
        c = cells[r.label]
        med = f"{c.median:.3f}s" if c.median is not None else "-"
        mem = f"{c.memory / 2**20:.0f} MiB" if c.memory is not None else "-"
        _log(f"    {w.name:10} {r.label:28} {med:>9} {mem:>9} {c.check} {c.counters or ''}")
    return list(cells.values())


def run_groups(
    groups: list[Group], workloads: list[Workload], repeats: int, memory_method: str
) -> Results:
    results = Results(repeats=repeats, memory_method=memory_method)
    t0 = time.perf_counter()
    try:
        _run_all(groups, workloads, repeats, memory_method, results)
    except KeyboardInterrupt:
        results.interrupted = True
        _log("interrupted: writing the results measured so far")
    results.seconds = time.perf_counter() - t0
    return results


def _run_all(
    groups: list[Group],
    workloads: list[Workload],
    repeats: int,
    memory_method: str,
    results: Results,
) -> None:
    expected = _Expected()
    for group in groups:
        _log(f"group {group.name} (sizes: {group.scale}; reference: {group.reference or '-'})")
        results.groups.append(
            GroupInfo(
                group.name,
                group.scale,
                group.reference,
                [r.label for r in group.runners],
                list(group.skipped),
            )
        )
        runners = _start(group, results)
        try:
            for w in workloads:
                results.cells.extend(
                    _run_workload(group, runners, w, expected, repeats, memory_method)
                )
        finally:
            for r in runners:
                _close(r)
            for engine in group.engines:
                try:
                    engine.stop()
                except Exception as exc:
                    _log(f"  engine {engine.label}: stop failed: {_short(exc)}")
