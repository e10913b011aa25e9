"""Writing a run down: Markdown table, PNG plot and raw JSON, with machine and versions."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import psutil

from benchmarks.suite import Cell, Results
from benchmarks.workloads import Workload

__all__ = ["machine", "write_json", "write_markdown", "write_plot"]

_DISTRIBUTIONS = [
    "dask",
    "distributed",
    "numpy",
    "pandas",
    "pyarrow",
    "ray",
    "lithops",
    "loky",
    "daskexec-core",
    "daskexec-stdlib",
    "daskexec-loky",
    "daskexec-ray",
    "daskexec-lithops",
]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Where and with what the run happened."""
    versions = {"python": platform.python_version()}
    for name in _DISTRIBUTIONS:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "versions": versions,
        "command": "python -m benchmarks " + " ".join(sys.argv[1:]),
    }


def _median(cells: list[Cell], group: str, runner: str, workload: str) -> float | None:
    for c in cells:
        if (c.group, c.runner, c.workload) == (group, runner, workload):
            return c.median
    return None


def _ratio(r: Results, c: Cell, anchor: str) -> float | None:
    ref = _median(r.cells, c.group, anchor, c.workload)
    if c.median is None or not ref:
        return None
    return c.median / ref


def _best_anchor(r: Results, group: str, workload: str) -> tuple[str, float] | None:
    anchors = [
        c
        for c in r.cells
        if c.group == group
        and c.workload == workload
        and c.kind == "anchor"
        and c.median is not None
    ]
    if not anchors:
        return None
    best = min(anchors, key=lambda c: c.median or 0.0)
    assert best.median is not None
    return best.runner, best.median


def _cell_time(r: Results, c: Cell, reference: str) -> str:
    if c.median is None:
        return "WRONG" if c.check == "WRONG" else "failed"
    ratio = _ratio(r, c, reference)
    text = f"{c.median:.3f} s"
    if ratio is not None:
        text += f" · **{ratio:.2f}x**" if c.kind == "daskexec" else f" · {ratio:.2f}x"
    if c.check == "not checked":
        text += " †"
    return text


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def _runners(r: Results) -> list[tuple[str, str]]:
    """(group, runner) pairs in the order they ran."""
    return [(g.name, name) for g in r.groups for name in g.runners]


def _find(r: Results, group: str, runner: str, workload: str) -> Cell | None:
    for c in r.cells:
        if (c.group, c.runner, c.workload) == (group, runner, workload):
            return c
    return None


def write_markdown(
    r: Results, workloads: list[Workload], info: dict[str, Any], path: Path, plot: str | None
) -> None:
    names = [w.name for w in workloads]
    v = info["versions"]
    lines = [
        f"# daskexec benchmarks: {', '.join(g.name for g in r.groups)}",
        "",
        f"- Date: {info['date']}; run took {r.seconds / 60:.1f} min: `{info['command']}`",
        f"- Machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}"
        f" ({info['platform']}), shared with other work",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Each time is the median of {r.repeats} timed repeat(s) after one warm-up "
        "(wall seconds of `compute`); runners take turns within each repeat.",
        "- **Ratio = this runner's time / the group's reference anchor's time, same run, "
        "same graph. Below 1.00x is faster than the anchor; above is slower.**",
        "- Every warm-up result is checked against Dask's `sync` scheduler"
        " († = the runner does not return its result, so it was not checked).",
        f"- Driver memory: {_memory_text(r.memory_method)}",
        "",
    ]
    if r.interrupted:
        lines += [
            "**Interrupted (Ctrl-C): the workloads after the last one shown did not run.**",
            "",
        ]
    if plot:
        lines += [f"![times]({plot})", ""]
    for g in r.groups:
        lines += [
            f"## {g.name}: time and ratio to {g.reference or '(no anchor)'} (sizes: {g.scale})",
            "",
        ]
        rows = []
        for group, runner in _runners(r):
            if group != g.name:
                continue
            row = [f"**{runner}**" if runner.startswith("daskexec") else runner]
            for w in names:
                c = _find(r, group, runner, w)
                row.append(_cell_time(r, c, g.reference) if c else "-")
            rows.append(row)
        lines += _table(["runner", *names], rows)
        if g.skipped:
            lines += ["", "Skipped: " + "; ".join(g.skipped)]
        lines.append("")

    lines += [
        "## daskexec against the best anchor of its group",
        "",
        "Ratio = daskexec time / fastest anchor's time (below 1.00x: daskexec is faster).",
        "",
    ]
    rows = []
    for group, runner in _runners(r):
        if not runner.startswith("daskexec"):
            continue
        row = [runner]
        for w in names:
            c = _find(r, group, runner, w)
            best = _best_anchor(r, group, w)
            if c is None or c.median is None or best is None:
                row.append("-")
            else:
                row.append(f"{c.median / best[1]:.2f}x vs {best[0]}")
        rows.append(row)
    lines += [*_table(["daskexec", *names], rows), ""]

    lines += ["## Driver peak memory (MiB)", ""]
    rows = []
    for group, runner in _runners(r):
        row = [runner]
        for w in names:
            c = _find(r, group, runner, w)
            row.append(f"{c.memory / 2**20:.0f}" if c and c.memory is not None else "-")
        rows.append(row)
    lines += [*_table(["runner", *names], rows), ""]

    lines += [
        "## daskexec scheduler counters (last timed repeat)",
        "",
        "tasks run remotely / work items sent / executor invocations / map calls "
        "(local bookkeeping tasks not counted).",
        "",
    ]
    rows = []
    for group, runner in _runners(r):
        if not runner.startswith("daskexec"):
            continue
        row = [runner]
        for w in names:
            c = _find(r, group, runner, w)
            k = c.counters if c else None
            row.append(
                f"{k['remote_tasks']} / {k['work_items']} / {k['invocations']} / {k['map_calls']}"
                if k
                else "-"
            )
        rows.append(row)
    lines += [*_table(["daskexec", *names], rows), ""]

    lines += [
        "## Engine start-up (not included above)",
        "",
        "make = creating the executor, cluster or engine; first task = one trivial compute "
        "right after, which starts workers that start lazily.",
        "",
    ]
    rows = []
    for s in r.startups:
        rows.append(
            [
                s.group,
                s.label,
                f"{s.make:.2f} s" if s.make is not None else "-",
                f"{s.first:.2f} s" if s.first is not None else "-",
                s.error or s.note,
            ]
        )
    lines += [*_table(["group", "runner / engine", "make", "first task", "note"], rows), ""]

    lines += ["## Sizes", ""]
    scales = sorted({g.scale for g in r.groups})
    rows = [[f"{w.name}: {w.title}", *(w.labels[s] for s in scales)] for w in workloads]
    lines += [*_table(["workload", *[f"size ({s})" for s in scales]], rows), ""]

    errors = [c for c in r.cells if c.error]
    if errors:
        lines += ["## Failures", ""]
        lines += [f"- {c.group} / {c.runner} / {c.workload}: {c.error}" for c in errors]
        lines.append("")
    path.write_text("\n".join(lines))


def _memory_text(method: str) -> str:
    if method == "tracemalloc":
        return (
            "peak of tracemalloc-traced allocations (Python objects, NumPy and pandas "
            "buffers) during one extra, untimed compute, in the driver process only; "
            "threads and in-process workers are part of the driver, worker processes are not."
        )
    if method == "rss":
        return (
            "highest RSS of the driver process sampled every 5 ms during one extra, untimed "
            "compute, minus its RSS just before (memory the allocator kept from earlier runs "
            "is reused unseen, so treat small differences as noise); threads and in-process "
            "workers are part of the driver, worker processes are not."
        )
    return "not measured."


def write_json(r: Results, info: dict[str, Any], path: Path) -> None:
    data = {"machine": info, "results": dataclasses.asdict(r)}
    path.write_text(json.dumps(data, indent=1))


def write_plot(r: Results, workloads: list[Workload], info: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = _runners(r)
    ncols = 3
    nrows = (len(workloads) + ncols - 1) // ncols
    height = max(3.0, 0.32 * len(pairs) + 1.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6 * ncols, height * nrows), squeeze=False)
    scale_of = {g.name: g.scale for g in r.groups}
    ref_of = {g.name: g.reference for g in r.groups}
    for ax, w in zip(axes.flat, workloads, strict=False):
        labels, values, colors, notes = [], [], [], []
        for group, runner in pairs:
            c = _find(r, group, runner, w.name)
            label = runner if scale_of[group] != "small" else f"{runner} (small)"
            labels.append(label)
            m = c.median if c else None
            values.append(m or 0.0)
            if runner.startswith("daskexec"):
                colors.append("tab:blue")
            elif runner == ref_of[group]:
                colors.append("tab:orange")
            else:
                colors.append("0.65")
            ratio = _ratio(r, c, ref_of[group]) if c else None
            notes.append(
                "failed" if m is None else (f"{m:.2f}s {ratio:.2f}x" if ratio else f"{m:.2f}s")
            )
        y = range(len(labels))
        ax.barh(list(y), values, color=colors)
        ax.set_yticks(list(y), labels, fontsize=8)
        ax.invert_yaxis()
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 30:
            ax.set_xscale("log")
        for yi, (val, note) in enumerate(zip(values, notes, strict=True)):
            ax.text(val if val > 0 else 0, yi, " " + note, va="center", fontsize=7)
        ax.set_title(f"{w.name}: {w.title}", fontsize=10)
        ax.set_xlabel("median seconds (lower is better)", fontsize=8)
        ax.margins(x=0.35)
    for ax in list(axes.flat)[len(workloads) :]:
        ax.axis("off")
    fig.suptitle(
        f"daskexec (blue) vs anchors (orange: reference of the ratio) — "
        f"{info['cores']} cores, {info['date']}",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
