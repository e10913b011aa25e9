"""Command line: ``python -m benchmarks [--backends a,b] [--quick] ...``.

Writes ``benchmarks/results/<backends>[-quick].md``, ``.png`` and ``.json``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark daskexec backends against the Dask schedulers "
        "a user would pick instead, in one run.",
    )
    p.add_argument(
        "--backends",
        default="",
        help="comma-separated daskexec backends (default: every installed one); each "
        "brings its anchors: threads -> dask sync/threads/ThreadPoolExecutor/LocalCluster; "
        "processes, multiprocessing-pool, loky -> dask processes/ProcessPoolExecutor/loky; "
        "ray -> ray_dask_get; lithops -> dask on lithops executor",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat (CI smoke run)")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats (default 3; quick 1)")
    p.add_argument(
        "--memory",
        choices=["tracemalloc", "rss", "none"],
        default="tracemalloc",
        help="how to measure driver peak memory, in an extra untimed repeat",
    )
    p.add_argument("--workloads", default="", help="comma-separated subset of workloads")
    p.add_argument("--out", type=Path, default=HERE / "results", help="output folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    # Workers of other processes (spawned pools, Ray, Lithops) import the task
    # functions from ``benchmarks.workloads``: put the repository on their path.
    root = str(HERE.parent)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([root, *[p for p in paths if p != root]])
    if root not in sys.path:
        sys.path.insert(0, root)
    warnings.filterwarnings("ignore", category=UserWarning, module="distributed")

    import daskexec

    # Dask imports distributed on its first compute: not part of a runner's start-up.
    if importlib.util.find_spec("distributed") is not None:
        importlib.import_module("distributed")
    from benchmarks import report
    from benchmarks.runners import make_groups
    from benchmarks.suite import run_groups
    from benchmarks.workloads import WORKLOADS

    installed = daskexec.available_backends()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()] or installed
    missing = [b for b in backends if b not in installed]
    if missing:
        print(
            f"benchmarks: backend(s) {', '.join(missing)} not installed; installed: "
            f"{', '.join(installed)} (install the adapter, e.g. "
            "uv pip install -e packages/adapters/stdlib)",
            file=sys.stderr,
        )
        return 2
    workloads = WORKLOADS
    if args.workloads:
        wanted = [w.strip() for w in args.workloads.split(",") if w.strip()]
        unknown = set(wanted) - {w.name for w in WORKLOADS}
        if unknown:
            print(
                f"benchmarks: unknown workloads {sorted(unknown)}; known: "
                f"{[w.name for w in WORKLOADS]}",
                file=sys.stderr,
            )
            return 2
        workloads = [w for w in WORKLOADS if w.name in wanted]
    repeats = args.repeats or (1 if args.quick else 3)
    if repeats < 1:
        print("benchmarks: --repeats must be >= 1", file=sys.stderr)
        return 2

    groups = make_groups(backends, args.quick)
    info = report.machine()
    results = run_groups(groups, workloads, repeats, args.memory)

    args.out.mkdir(parents=True, exist_ok=True)
    stem = "+".join(backends) + ("-quick" if args.quick else "")
    if args.workloads:
        stem += "-" + "+".join(w.name for w in workloads)
    png = None
    if not args.no_plot:
        report.write_plot(results, workloads, info, args.out / f"{stem}.png")
        png = f"{stem}.png"
    report.write_markdown(results, workloads, info, args.out / f"{stem}.md", png)
    report.write_json(results, info, args.out / f"{stem}.json")
    print(f"benchmarks: wrote {args.out / stem}.md ({results.seconds:.0f}s)", file=sys.stderr)
    failed = [c for c in results.cells if c.check == "WRONG"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
