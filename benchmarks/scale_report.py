"""Writing the scale benchmark down: Markdown tables and a PNG (see ``benchmarks/scale.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.report import machine as _machine

if TYPE_CHECKING:
    from benchmarks.scale import RealRow, SimRow

__all__ = ["machine", "real_line", "sim_line", "write_markdown", "write_plot"]


def machine(command: str, took: float) -> dict[str, Any]:
    info = _machine()
    info["command"] = command
    info["took_min"] = round(took / 60, 1)
    return info


def _rate(tasks: int, seconds: float | None) -> str:
    return "-" if not seconds else f"{tasks / seconds:,.0f}"


def _per_task(nbytes: int | None, tasks: int) -> str:
    return "-" if nbytes is None else f"{nbytes / tasks:,.0f} B"


def _mib(nbytes: int | None) -> str:
    return "-" if nbytes is None else f"{nbytes / 2**20:,.0f} MiB"


def real_line(r: RealRow) -> str:
    ratio = "-" if r.ratio is None else f"{r.ratio:.2f}x"
    return (
        f"{r.tasks} tasks: daskexec {_rate(r.tasks, r.daskexec_seconds)} tasks/s, dask threaded "
        f"{_rate(r.tasks, r.dask_seconds)} tasks/s ({ratio}); peak "
        f"{_per_task(r.daskexec_peak, r.tasks)}/task vs {_per_task(r.dask_peak, r.tasks)}/task"
    )


def sim_line(r: SimRow) -> str:
    return (
        f"{r.wall:.2f}s virtual ({r.ratio:.2f}x the larger bound {r.bound:.2f}s), "
        f"{r.invocations} invocations, driver CPU {r.driver_cpu:.2f}s, real {r.real_seconds:.1f}s"
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _gap(r: SimRow) -> str:
    """What the gap between the virtual wall time and the larger bound is made of."""
    if r.no_driver is None or r.ideal is None:
        return "-"
    driver = r.wall - r.no_driver
    platform = r.no_driver - r.ideal
    rounds = r.ideal - r.bound
    return f"driver {driver:.2f}s, platform {platform:.2f}s, rounds {rounds:.2f}s"


def summary(real: list[RealRow], sim: list[SimRow]) -> str:
    """A paragraph for the README's Performance section, from the largest graphs measured."""
    parts = []
    if real:
        r = max(real, key=lambda row: row.tasks)
        ratio = "" if r.ratio is None else f", {r.ratio:.1f}x Dask's threaded scheduler"
        dask_peak = "" if r.dask_peak is None else f" (Dask: {r.dask_peak / r.tasks:,.0f} B)"
        parts.append(
            f"On this 2-core machine the default executor runs the {r.tasks:,}-task tree graph "
            f"at {r.tasks / r.daskexec_seconds:,.0f} tasks/s{ratio}, with a driver peak of "
            f"{r.daskexec_peak / r.tasks:,.0f} B per task{dask_peak}."
        )
    trees = [row for row in sim if row.graph == "tree"]
    if trees:
        t = max(trees, key=lambda row: row.tasks)
        gap = _gap(t)
        parts.append(
            f"On the simulated 1,000-worker AWS Lambda platform (`daskexec.testing.simulated`, "
            f"virtual clock) the {t.tasks:,}-task tree graph takes {t.wall:.1f} virtual seconds, "
            f"{t.ratio:.1f}x the larger lower bound ({t.bound:.1f} s: one invocation's latency "
            f"plus the critical path; the work itself is {t.work_seconds:.1f} s over 1,000 "
            f"workers); the driver spends {t.driver_cpu:.1f} s of CPU "
            f"({1e6 * t.driver_cpu / t.tasks:.0f} µs per task) and {t.invocations:,} "
            f"invocations go out" + ("" if gap == "-" else f"; the gap: {gap}") + "."
        )
    costly = [row for row in sim if row.graph == "tree-100ms"]
    if costly:
        c = max(costly, key=lambda row: row.tasks)
        parts.append(
            f"With leaves that cost 100 ms each (`tree-100ms`), the {c.tasks:,}-task tree "
            f"takes {c.wall:.1f} virtual seconds, {c.ratio:.2f}x the larger bound "
            f"({c.bound:.1f} s, the work over 1,000 workers), with {c.peak_concurrency:,} "
            f"invocations running at the peak"
            + ("" if _gap(c) == "-" else f"; the gap: {_gap(c)}")
            + "."
        )
    return " ".join(parts)


def write_markdown(
    real: list[RealRow], sim: list[SimRow], info: dict[str, Any], platform: str, path: Path
) -> None:
    lines = [
        "# Scale: 10^4 to 10^6 tasks",
        "",
        summary(real, sim),
        "",
        f"- Date: {info['date']}; run took {info['took_min']} min: `{info['command']}`",
        f"- Machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}, "
        "shared with other work",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()),
        "- How it is measured: see the docstring of `benchmarks/scale.py`.",
        "",
    ]
    if real:
        lines += [
            "## This machine: tree graph, default executor vs Dask threaded",
            "",
            "Same run, same graph (`n/2` `inc` tasks and a pairwise tree sum, legacy dict). "
            "tasks/s from the median of the timed repeats; ratio = daskexec tasks/s / Dask "
            "threaded tasks/s; peak = tracemalloc peak during one untimed compute above the "
            "baseline taken with the graph built, per task.",
            "",
        ]
        lines += _table(
            [
                "tasks",
                "daskexec tasks/s",
                "dask threaded tasks/s",
                "ratio",
                "daskexec peak",
                "per task",
                "dask peak",
                "per task",
            ],
            [
                [
                    f"{r.tasks:,}",
                    _rate(r.tasks, r.daskexec_seconds),
                    _rate(r.tasks, r.dask_seconds),
                    "-" if r.ratio is None else f"**{r.ratio:.2f}x**",
                    _mib(r.daskexec_peak),
                    _per_task(r.daskexec_peak, r.tasks),
                    _mib(r.dask_peak),
                    _per_task(r.dask_peak, r.tasks),
                ]
                for r in real
            ],
        )
        lines.append("")
    if sim:
        lines += [
            f"## Simulated: 1,000-worker `{platform}` platform (virtual time)",
            "",
            "wall = virtual seconds of `compute()` (the driver's CPU time included); work bound "
            "= measured work of the invocations / workers; critical-path bound = longest chain "
            "x mean task cost + one invocation's mean latency; ratio = wall / larger bound "
            "(target: 1.5x at 10^6 tasks).",
            "",
        ]
        lines += _table(
            [
                "graph",
                "tasks",
                "wall",
                "work bound",
                "critical-path bound",
                "ratio",
                "invocations",
                "cold",
                "lost",
                "stragglers",
                "peak concurrency",
            ],
            [
                [
                    r.graph,
                    f"{r.tasks:,}",
                    f"{r.wall:.2f} s",
                    f"{r.work_bound:.4f} s",
                    f"{r.critical_bound:.2f} s",
                    f"**{r.ratio:.2f}x**",
                    f"{r.invocations:,}",
                    str(r.cold_starts),
                    str(r.failures),
                    str(r.stragglers),
                    f"{r.peak_concurrency}",
                ]
                for r in sim
            ],
        )
        floor = info.get("platform_floor")
        if floor:
            lines += [
                "",
                "### What the platform alone costs a round of calls",
                "",
                "Median virtual seconds (5 seeds) for n no-op calls submitted at once, the "
                "driver not counted: the invoke rate, the slowest of n invocation latencies "
                "and cold starts. No scheduler can run a graph needing n calls at once in "
                "less; the critical-path bound above counts one mean latency only.",
                "",
            ]
            lines += _table(
                ["calls at once", *(f"{int(n):,}" for n in floor)],
                [["virtual seconds", *(f"{v:.2f} s" for v in floor.values())]],
            )
        lines += [
            "",
            "### The driver on the simulated platform",
            "",
            "driver CPU = CPU seconds of the thread that called `compute()`; dispatch = tasks "
            "and work items per virtual second; feed rate = tasks per second of driver CPU (the "
            "most the driver could dispatch); gap = where wall - bound comes from, by ablation "
            "(driver: not counting the driver's time; platform: then also no cold starts, "
            "stragglers, losses or rate limits; rounds: what is left).",
            "",
        ]
        lines += _table(
            [
                "graph",
                "tasks",
                "driver CPU",
                "per task",
                "driver peak",
                "per task",
                "tasks/s (virtual)",
                "items/s (virtual)",
                "feed rate",
                "real time",
                "gap",
            ],
            [
                [
                    r.graph,
                    f"{r.tasks:,}",
                    f"{r.driver_cpu:.2f} s",
                    f"{1e6 * r.driver_cpu / r.tasks:.1f} µs",
                    _mib(r.peak),
                    _per_task(r.peak, r.tasks),
                    _rate(r.tasks, r.wall),
                    _rate(r.work_items, r.wall),
                    _rate(r.tasks, r.driver_cpu),
                    f"{r.real_seconds:.1f} s",
                    _gap(r),
                ]
                for r in sim
            ],
        )
        lines.append("")
    path.write_text("\n".join(lines) + "\n")


def write_plot(real: list[RealRow], sim: list[SimRow], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    ax = axes[0][0]
    if real:
        xs = [r.tasks for r in real]
        ax.plot(xs, [r.tasks / r.daskexec_seconds for r in real], "o-", label="daskexec (threads)")
        anchored = [r for r in real if r.dask_seconds]
        ax.plot(
            [r.tasks for r in anchored],
            [r.tasks / r.dask_seconds for r in anchored],  # type: ignore[operator]
            "s--",
            label="dask threaded",
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="tasks",
        ylabel="tasks/s",
        title="this machine: tree graph throughput",
    )
    ax.legend()
    ax = axes[0][1]
    if real:
        ax.plot(
            [r.tasks for r in real],
            [r.daskexec_peak / r.tasks for r in real],
            "o-",
            label="daskexec threads",
        )
        anchored = [r for r in real if r.dask_peak is not None]
        ax.plot(
            [r.tasks for r in anchored],
            [r.dask_peak / r.tasks for r in anchored],  # type: ignore[operator]
            "s--",
            label="dask threaded",
        )
    for g in sorted({r.graph for r in sim}):
        rows = [r for r in sim if r.graph == g and r.peak is not None]
        ax.plot(
            [r.tasks for r in rows],
            [r.peak / r.tasks for r in rows],
            "^:",  # type: ignore[operator]
            label=f"simulated {g}",
        )
    ax.set(
        xscale="log", xlabel="tasks", ylabel="bytes per task", title="driver peak memory per task"
    )
    ax.legend(fontsize="small")
    ax = axes[1][0]
    for g in sorted({r.graph for r in sim}):
        rows = [r for r in sim if r.graph == g]
        xs = [r.tasks for r in rows]
        line = ax.plot(xs, [r.wall for r in rows], "o-", label=f"{g}: wall")[0]
        ax.plot(
            xs, [r.bound for r in rows], "--", color=line.get_color(), label=f"{g}: larger bound"
        )
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="tasks",
        ylabel="virtual seconds",
        title="simulated 1,000 workers: wall vs bound",
    )
    ax.legend(fontsize="small")
    ax = axes[1][1]
    for g in sorted({r.graph for r in sim}):
        rows = [r for r in sim if r.graph == g]
        ax.plot(
            [r.tasks for r in rows], [1e6 * r.driver_cpu / r.tasks for r in rows], "o-", label=g
        )
    ax.set(
        xscale="log",
        xlabel="tasks",
        ylabel="µs of driver CPU per task",
        title="simulated: driver CPU per task",
    )
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
