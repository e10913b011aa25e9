"""Where a compute's time went, drawn: a timeline of its work items on the engine.

Dask's ``Profiler`` shows tasks in the driver's process; this shows the
engine side of any executor: one row per worker (a thread, a process, a
cloud function's invocation), one bar per work item, split into the time it
waited for the engine, was deserialized on the worker, ran its tasks, and
took to come back::

    with daskexec.diagnostics.Timeline() as timeline:
        y.compute(scheduler=daskexec.ExecutorScheduler("processes"))
    timeline.save_html("timeline.html")   # bokeh, inlined: works offline
    timeline.save_png("timeline.png")     # matplotlib

Every compute also carries its records and their breakdown in
:class:`~daskexec.ComputeStats` (``items``, ``breakdown``, ``worker_seconds``),
recorded whether a timeline is open or not.  Drawing needs
``pip install "daskexec-core[diagnostics]"`` (bokeh, matplotlib).
"""

from __future__ import annotations

import contextlib
import html
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TextIO, TypeVar

from daskexec._timeline import PARTS, ItemRecord
from daskexec.stats import ComputeStats, Progress, collect_stats, watching

__all__ = ["PARTS", "ItemRecord", "ProgressBar", "Timeline"]

#: How each stretch of a work item's life is drawn: (name, begin, end, color).
_SEGMENTS = (
    ("engine latency", "submitted", "started", "#c7c7c7"),
    ("serialization", "started", "ran", "#ff9f40"),
    ("tasks", "ran", "finished", "#3b75af"),
    ("transfer", "finished", "received", "#55a868"),
)


@dataclass(frozen=True)
class _Bar:
    row: str
    part: str
    begin: float
    end: float
    color: str
    record: ItemRecord
    compute: int


_DRIVER = "driver"
#: A fresh worker's first item: loading it is mostly importing (a cold start).
_COLD = ("cold start", "#7f7f7f")


_S = TypeVar("_S", bound="_InThisThread")


class _InThisThread:
    """Open for the computes run in this thread inside a ``with`` block."""

    _stack: contextlib.ExitStack | None = None

    def _open(self, stack: contextlib.ExitStack) -> None:
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        self._stack = contextlib.ExitStack()
        self._open(self._stack)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._stack is not None
        self._stack.close()
        self._stack = None


class Timeline(_InThisThread):
    """Collect the computes run in this thread inside the ``with`` block, and draw them."""

    def __init__(self) -> None:
        self.computes: list[ComputeStats] = []

    def _open(self, stack: contextlib.ExitStack) -> None:
        self.computes = stack.enter_context(collect_stats())

    # -- data ----------------------------------------------------------------------

    def _origin(self) -> float:
        return min((c.started for c in self.computes), default=0.0)

    def _bars(self) -> Iterator[_Bar]:
        for n, compute in enumerate(self.computes):
            # the driver's own row: the compute, and its serializing and decoding
            driver = _DRIVER
            first = compute.items[0] if compute.items else None
            if first is not None:
                done = compute.started + compute.seconds
                yield _Bar(driver, "compute", compute.started, done, "#eeeeee", first, n)
                for part, begin, end in compute.driver_spans:
                    yield _Bar(driver, part, begin, end, "#ff9f40", first, n)
                for r in compute.items:
                    if r.decoded > r.received:
                        yield _Bar(driver, "serialization", r.received, r.decoded, "#ff9f40", r, n)
            free: dict[str, float] = {}  # when each row's previous item came back
            for r in sorted(compute.items, key=lambda r: (r.started or r.received, r.item)):
                if r.lost or not r.started:
                    yield _Bar(r.worker or "lost", "lost", r.submitted, r.received, "#d62728", r, n)
                    continue
                for part, a, b, color in _SEGMENTS:
                    begin, end = getattr(r, a), getattr(r, b)
                    if part == "serialization" and r.cold:
                        part, color = _COLD
                    if part == "engine latency":  # queued behind the row's previous item
                        begin = max(begin, free.get(r.worker, begin))
                    if end > begin:
                        yield _Bar(r.worker, part, begin, end, color, r, n)
                free[r.worker] = r.received

    def summary(self) -> str:
        """One line per compute: its counters and breakdown."""
        return "\n".join(c.summary() for c in self.computes)

    # -- drawing -------------------------------------------------------------------

    def save_html(self, path: str) -> None:
        """Write a self-contained page (bokeh's JavaScript inlined: no network needed)."""
        from bokeh.embed import file_html
        from bokeh.models import ColumnDataSource, FactorRange, HoverTool
        from bokeh.plotting import figure
        from bokeh.resources import INLINE

        bars = list(self._bars())
        origin = self._origin()
        rows = _rows(bars)
        source = ColumnDataSource(
            {
                "row": [b.row for b in bars],
                "left": [b.begin - origin for b in bars],
                "right": [b.end - origin for b in bars],
                "color": [b.color for b in bars],
                "part": [b.part for b in bars],
                "group": [b.record.group for b in bars],
                "item": [b.record.item for b in bars],
                "tasks": [b.record.tasks for b in bars],
                "attempt": [b.record.attempt for b in bars],
                "compute": [b.compute for b in bars],
                "payload": [b.record.payload_bytes for b in bars],
                "result": [b.record.result_bytes for b in bars],
                "label": [b.record.label or b.record.worker for b in bars],
                "cold": ["(cold start)" if b.record.cold else "" for b in bars],
            }
        )
        fig = figure(
            y_range=FactorRange(factors=rows[::-1] or ["(no work items)"]),
            height=max(240, 22 * len(rows) + 120),
            width=1100,
            title=self.summary().replace("\n", " | ")[:300],
            x_axis_label="seconds",
            tools="xpan,xwheel_zoom,reset,save",
        )
        fig.hbar(
            y="row",
            left="left",
            right="right",
            height=0.8,
            color="color",
            legend_field="part",
            source=source,
            name="items",
        )
        fig.add_tools(
            HoverTool(
                tooltips=[
                    ("item", "@item (compute @compute, attempt @attempt)"),
                    ("part", "@part"),
                    ("group", "@group (@tasks tasks)"),
                    ("bytes", "@payload out, @result back"),
                    ("worker", "@label @cold"),
                    ("time", "@left{0.000}s to @right{0.000}s"),
                ]
            )
        )
        fig.legend.location = "top_right"
        page = file_html(fig, INLINE, title="daskexec timeline")
        details = "".join(f"<li>{html.escape(c.summary())}</li>" for c in self.computes)
        page = page.replace("</body>", f"<ul id='daskexec-summary'>{details}</ul></body>", 1)
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)

    def save_png(self, path: str) -> None:
        """Write the timeline as a PNG (matplotlib, no display needed)."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch

        bars = list(self._bars())
        origin = self._origin()
        rows = _rows(bars)
        index = {row: i for i, row in enumerate(rows)}
        fig, ax = plt.subplots(figsize=(11, max(2.5, 0.3 * len(rows) + 1.5)))
        for b in bars:
            ax.barh(
                len(rows) - 1 - index[b.row],
                b.end - b.begin,
                left=b.begin - origin,
                height=0.8,
                color=b.color,
                linewidth=0,
            )
        ax.set_yticks(range(len(rows)), labels=rows[::-1], fontsize=7)
        ax.set_xlabel("seconds")
        ax.set_title(self._title(), fontsize=8, loc="left")
        colors = [
            ("compute (driver)", "", "", "#eeeeee"),
            *_SEGMENTS[:1],
            (_COLD[0], "", "", _COLD[1]),
            *_SEGMENTS[1:],
            ("lost", "", "", "#d62728"),
        ]
        ax.legend(
            handles=[Patch(color=c, label=name) for name, _, _, c in colors],
            fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
        )
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)

    def _title(self) -> str:
        lines = []
        for c in self.computes[:4]:
            cost = f", {c.gb_seconds:.1f} GB-s = ${c.cost:.6f}" if c.cost is not None else ""
            lines.append(
                f"{c.engine}: {c.seconds:.2f}s, {c.work_items} items, "
                f"{c.worker_seconds:.2f} worker-s{cost}; {c.breakdown_summary()}"
            )
        return "\n".join(lines)


class ProgressBar(_InThisThread):
    """A live bar for every compute run in this thread inside the ``with`` block.

    Dask's ``ProgressBar`` counts tasks; this also shows what the engine is
    doing: work items in flight, retries and the bytes moved so far.  It
    uses tqdm (``tqdm.auto``: a terminal bar, or a widget in Jupyter)::

        with daskexec.diagnostics.ProgressBar():
            y.compute(scheduler=daskexec.ExecutorScheduler("lithops"))
    """

    def __init__(self, interval: float = 0.2, file: TextIO | None = None) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        self.interval = interval
        self.file = file
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar: Any = None

    def _open(self, stack: contextlib.ExitStack) -> None:
        import tqdm.auto  # fail here, not in the middle of a compute

        del tqdm
        stack.enter_context(watching(self))

    def compute_started(self, stats: ComputeStats, progress: Callable[[], Progress]) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=progress().total, unit="task", file=self.file, leave=True)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._poll, args=(stats, progress), name="daskexec-progress", daemon=True
        )
        self._thread.start()

    def compute_finished(self, stats: ComputeStats, failed: bool) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        bar, self._bar = self._bar, None
        if bar is not None:
            if not failed:
                bar.n = bar.total
            bar.set_postfix_str(_postfix(stats, 0) + (", failed" if failed else ""), refresh=False)
            bar.close()

    def _poll(self, stats: ComputeStats, progress: Callable[[], Progress]) -> None:
        while not self._stop.wait(self.interval):
            now = progress()
            bar = self._bar
            if bar is None:
                return
            bar.n = now.done
            bar.set_postfix_str(_postfix(stats, now.inflight), refresh=False)
            bar.refresh()


def _rows(bars: list[_Bar]) -> list[str]:
    """The driver first, then the workers."""
    workers = sorted({b.row for b in bars} - {_DRIVER})
    return [_DRIVER, *workers] if bars else []


def _postfix(stats: ComputeStats, inflight: int) -> str:
    moved = stats.bytes_sent + stats.bytes_received
    return f"{inflight} items in flight, {stats.retries} retries, {moved / 2**20:.1f} MiB moved"
