"""Stragglers: one task in a hundred runs 20 times longer; backups off and on, side by side.

A straggler is slow by circumstance (a slow node, a cold cache, a noisy
neighbour), not by its code: here a task is slow on its first run only
(the first run creates a marker file), so that a backup copy of it runs at
the normal speed, as a copy on another worker would.  Which tasks straggle
is drawn at random for each repeat, the same for every runner of that
repeat.  Each repeat runs every configuration in turn (noise falls on all
alike); the table gives medians and the ratio to backups off::

    python -m benchmarks.stragglers                              # processes and lithops
    python -m benchmarks.stragglers --backends processes --repeats 5
    python -m benchmarks.stragglers --rules cubed,early          # compare backup rules

Writes ``benchmarks/results/stragglers.md``.  On a process pool a copy that
lost cannot be stopped (its worker runs it to the end), so each run is
followed by a pause long enough for it to finish; on Lithops localhost every
call is a process of its own and a lost copy's process is killed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import dask
from dask import delayed

import daskexec
from daskexec import _stragglers

#: Backup rules to compare: Cubed's (the default) and variants.
RULES = {
    "cubed": _stragglers.BackupRule(),  # 10 tasks, 50% done, 3x the median
    "early": _stragglers.BackupRule(min_done=0.25, factor=2.0),
}


def step(i: int, marker: str, unit: float, slow: float) -> int:
    """Sleep ``unit``; a straggler (its marker not there yet) sleeps ``slow`` on its first run."""
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            time.sleep(slow)
            return i
    time.sleep(unit)
    return i


def graph(n: int, stragglers: set[int], folder: str, unit: float) -> list[Any]:
    return [
        delayed(step, pure=True)(
            i, os.path.join(folder, f"s{i}") if i in stragglers else "", unit, 20 * unit
        )
        for i in range(n)
    ]


@dataclasses.dataclass
class Result:
    seconds: list[float] = dataclasses.field(default_factory=list)
    backups: list[int] = dataclasses.field(default_factory=list)
    won: list[int] = dataclasses.field(default_factory=list)
    invocations: list[int] = dataclasses.field(default_factory=list)


def make_executor(backend: str, workers: int) -> Any:
    if backend == "processes":
        from daskexec_stdlib import ProcessPoolExecutor

        return ProcessPoolExecutor(max_workers=workers)
    if backend == "lithops":
        from daskexec_lithops import LithopsExecutor

        return LithopsExecutor(workers=workers)
    return daskexec.create_executor(backend)


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Result]:
    unit = args.unit if args.unit else (1.0 if backend == "lithops" else 0.1)
    configs = [("off", None)] + [(f"on ({r})", r) for r in args.rules.split(",")]
    results = {name: Result() for name, _ in configs}
    rng = random.Random(args.seed)
    ex = make_executor(backend, args.workers)
    try:
        # warm every worker (process spawn, imports): not what is measured
        warm = daskexec.ExecutorScheduler(ex, pack_size=1, backups=False)
        dask.compute(*graph(args.workers, set(), "", 0.2), scheduler=warm)
        for rep in range(args.repeats):
            chosen = set(rng.sample(range(args.tasks), max(1, args.tasks // 100)))
            for name, rule in configs:
                _stragglers.RULE = RULES[rule] if rule else _stragglers.BackupRule()
                with tempfile.TemporaryDirectory() as folder:
                    s = daskexec.ExecutorScheduler(
                        ex, backups=rule is not None, pack_size=args.pack_size
                    )
                    begin = time.perf_counter()
                    out = dask.compute(*graph(args.tasks, chosen, folder, unit), scheduler=s)
                    seconds = time.perf_counter() - begin
                    assert out == tuple(range(args.tasks))
                    st = s.last_stats
                    assert st is not None
                    r = results[name]
                    r.seconds.append(seconds)
                    r.backups.append(st.backups)
                    r.won.append(st.backups_won)
                    r.invocations.append(st.invocations)
                    print(f"{backend} rep {rep} {name}: {seconds:.2f}s  {st.summary()}", flush=True)
                    if "cancel-running" not in daskexec.describe(ex).capabilities:
                        time.sleep(20 * unit)  # a lost copy that cannot be stopped ends
    finally:
        _stragglers.RULE = _stragglers.BackupRule()
        ex.shutdown(wait=True)
    return results


def table(all_results: dict[str, dict[str, Result]], args: argparse.Namespace) -> str:
    lines = [
        "# Stragglers: backups off and on",
        "",
        f"{args.tasks} tasks of `unit` seconds (sleeps) per compute, {max(1, args.tasks // 100)} "
        f"of them 20x slower on their first run (drawn anew each repeat); {args.workers} "
        f"workers; pack_size {args.pack_size or 'chosen by the scheduler'}; median of "
        f"{args.repeats} repeats after a warm-up; ratio = time / time "
        "with backups off in the same run (below 1.00x is faster).",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, dask {dask.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "Rules: `cubed` = a group of >= 10 tasks, >= 50% done, running > 3x the median "
        "(the default); `early` = >= 25% done, > 2x the median. Both also need the "
        "median plus twice the engine's call cost (at least 50 ms).",
        "",
        "| backend | backups | median s | ratio | runs (s) | backups launched | won | "
        "invocations |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, results in all_results.items():
        base = statistics.median(results["off"].seconds)
        for name, r in results.items():
            m = statistics.median(r.seconds)
            lines.append(
                f"| {backend} | {name} | {m:.2f} | {m / base:.2f}x | "
                f"{', '.join(f'{s:.2f}' for s in r.seconds)} | "
                f"{', '.join(map(str, r.backups))} | {', '.join(map(str, r.won))} | "
                f"{', '.join(map(str, r.invocations))} |"
            )
    lines += [
        "",
        "Reproduce: `python -m benchmarks.stragglers "
        f"--backends {','.join(all_results)} --tasks {args.tasks} --workers {args.workers} "
        f"--repeats {args.repeats} --rules {args.rules}"
        + (f" --pack-size {args.pack_size}" if args.pack_size else "")
        + "` (Lithops under "
        "`flock /tmp/daskexec-lithops.lock`).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", default="processes,lithops")
    p.add_argument("--tasks", type=int, default=100)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--unit", type=float, default=0.0, help="seconds per task (default per backend)")
    p.add_argument("--rules", default="cubed", help=f"comma-separated, from {sorted(RULES)}")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument(
        "--pack-size", type=int, default=None, help="tasks per work item (default: chosen)"
    )
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "stragglers.md"))
    args = p.parse_args()
    all_results = {b: run_backend(b, args) for b in args.backends.split(",")}
    text = table(all_results, args)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
