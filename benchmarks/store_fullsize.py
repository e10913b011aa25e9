"""daskexec on threads, processes and loky at the full benchmark sizes, side by side.

The result store's target (issue "Results stay where they were computed"):
processes and loky within 1.5x of threads on ``transpose`` and ``rechunk``,
with the bytes that crossed the driver and the driver's peak memory shown.
No Dask anchors (at 3.2 GB they take most of ``python -m benchmarks``' time;
their last full run is ``results/threads+processes.md``); median of 3 after
a warm-up, runners taking turns; the table also goes to
``results/store-fullsize.md``::

    python -m benchmarks.store_fullsize [--repeats 3] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import time
from pathlib import Path

import daskexec
from benchmarks.measure import peak_memory
from benchmarks.report import machine
from benchmarks.workloads import WORKLOADS

NAMES = ("transpose", "rechunk")


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> None:
    from daskexec_loky import LokyExecutor
    from daskexec_stdlib import ProcessPoolExecutor

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    info = machine()
    work = [w for w in WORKLOADS if w.name in NAMES]
    rows: list[str] = []
    with (
        concurrent.futures.ThreadPoolExecutor(2) as th,
        ProcessPoolExecutor() as pp,
        LokyExecutor() as lk,
    ):
        runners = [("threads", th), ("processes", pp), ("loky", lk)]
        for w in work:
            times: dict[str, list[float]] = {label: [] for label, _ in runners}
            stats: dict[str, daskexec.ComputeStats] = {}
            for _, ex in runners:
                w.collection("full").compute(scheduler=daskexec.ExecutorScheduler(ex))  # warm-up
            for _ in range(args.repeats):
                for label, ex in runners:
                    s = daskexec.ExecutorScheduler(ex)
                    graph = w.collection("full")
                    start = time.perf_counter()
                    graph.compute(scheduler=s)
                    times[label].append(time.perf_counter() - start)
                    assert s.last_stats is not None
                    stats[label] = s.last_stats
            peaks = {
                label: peak_memory(
                    lambda ex=ex, w=w: w.collection("full").compute(
                        scheduler=daskexec.ExecutorScheduler(ex)
                    )
                )
                for label, ex in runners
            }
            base = statistics.median(times["threads"])
            for label, _ in runners:
                median = statistics.median(times[label])
                st = stats[label]
                cells = [
                    f"{median:.2f} s",
                    f"**{median / base:.2f}x**",
                    _mib(st.bytes_sent),
                    _mib(st.bytes_received),
                    _mib(st.store_peak_bytes),
                    _mib(peaks[label]),
                ]
                print(w.name, label, *cells, flush=True)
                rows.append(
                    f"| {w.name} ({w.labels['full']}) | {label} | " + " | ".join(cells) + " |"
                )
    lines = [
        "# daskexec on threads, processes and loky: results stay where they were computed",
        "",
        f"- Date: {info['date']}: `python -m benchmarks.store_fullsize --repeats {args.repeats}`",
        f"- Machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}, "
        "shared with other work",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        f"- Median of {args.repeats} after one warm-up, runners taking turns; ratio = time / "
        "daskexec on threads' time, same run.",
        "- Driver out/back: `ComputeStats.bytes_sent` / `bytes_received` (work items, "
        "handles, the outputs); store peak: `store_peak_bytes`; driver peak: "
        "tracemalloc peak in the driver process over one extra compute (threads run the "
        "tasks in the driver, so theirs includes the data).",
        "",
        "| workload | daskexec on | time | ratio to threads | driver out | driver back "
        "| store peak | driver peak |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "store-fullsize.md").write_text("\n".join(lines))
    print(f"wrote {out / 'store-fullsize.md'}")


if __name__ == "__main__":
    main()
