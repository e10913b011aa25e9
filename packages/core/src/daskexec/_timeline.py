"""Where a compute's time went: one record per work item, clocks aligned, a breakdown.

Every time in a record is seconds since the epoch on the driver's clock.
Workers stamp their own clock; the driver aligns each host's stamps by an
offset it measures from the records themselves: a worker cannot start an
item before the driver submitted it, nor finish it after the driver
received its result, so every item bounds the host's offset, and the
offset is the value closest to zero that all of that host's items allow.
"""

from __future__ import annotations

import heapq
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daskexec._worker import ItemResult

__all__ = ["PARTS", "ItemRecord", "align_clocks", "breakdown"]

#: The parts of a compute's wall time, most useful first: at each moment the
#: time counts for the first part that was happening (tasks running on some
#: worker beat everything else); the driver's scheduling is what is left.
_HOST = socket.gethostname()

PARTS = ("tasks", "serialization", "transfer", "engine latency", "scheduling")


@dataclass(slots=True)
class ItemRecord:
    """One attempt at one work item, from ready in the driver to its result decoded.

    Attributes
    ----------
    item
        The work item's number in this compute (a retry keeps it).
    group
        The kind of work (the Dask key prefix of its first task).
    tasks
        How many tasks it held.
    attempt
        1 for the first attempt, 2 for the first retry...
    ready
        When the first of its tasks became ready to run.
    serialized
        When the driver had finished serializing its batch.
    submitted
        When the driver handed it to the executor (right after its batch was
        serialized; a retry: when it was sent again).
    started
        When the worker's entry point began (before it deserialized the item).
    ran
        When its first task began on the worker.
    finished
        When its last task ended on the worker.
    received
        When its result (or failure) reached the driver.
    decoded
        When the driver had deserialized that result.
    worker
        Where it ran: ``host/pid/thread`` as the worker saw itself.
    label
        The engine's own name for the worker, where its adapter gives one
        (a Lithops activation id, a Ray node id).
    cold
        Whether it was the first item its worker process ran: the process
        started for it (imports included), or the engine started one.
    payload_bytes, result_bytes
        What it carried to the worker and back (0 when nothing was serialized).
    offset
        Seconds subtracted from the worker's clock to align it with the driver's.
    lost
        Whether the engine lost it (no worker times then), or it ran past its
        ``item_timeout``.
    backup
        Whether it was a backup copy of a straggler (``attempt`` is the
        original's).
    timed_out
        Whether it ran past its ``item_timeout`` and was given up on.
    """

    item: int
    group: str
    tasks: int
    attempt: int
    ready: float
    serialized: float
    submitted: float
    started: float = 0.0
    ran: float = 0.0
    finished: float = 0.0
    received: float = 0.0
    decoded: float = 0.0
    worker: str = ""
    label: str = ""
    cold: bool = False
    payload_bytes: int = 0
    result_bytes: int = 0
    offset: float = 0.0
    lost: bool = False
    backup: bool = False
    timed_out: bool = False

    def again(self, now: float, attempt: int, ready: float, backup: bool = False) -> ItemRecord:
        """The record of sending this item once more, at ``now``: a retry or a backup copy."""
        return ItemRecord(
            item=self.item,
            group=self.group,
            tasks=self.tasks,
            attempt=attempt,
            ready=ready,
            serialized=now,
            submitted=now,
            payload_bytes=self.payload_bytes,
            backup=backup,
        )

    def took(self, result: ItemResult) -> None:
        """Copy the worker's stamps of ``result``, when it has them."""
        if result.started:
            self.started, self.ran, self.finished = result.started, result.ran, result.finished
            self.worker, self.label, self.cold = result.worker, result.label, result.cold

    @property
    def host(self) -> str:
        """The worker's host name (clocks are aligned per host)."""
        return self.worker.partition("/")[0]

    @property
    def worker_seconds(self) -> float:
        """How long it occupied its worker (entry point to last task)."""
        return max(0.0, self.finished - self.started) if self.started else 0.0


def align_clocks(records: Sequence[ItemRecord]) -> dict[str, float]:
    """Measure each host's clock offset from the records and subtract it from their stamps."""
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for r in records:
        if not r.started or r.lost:
            continue
        # offset >= finished - received and offset <= started - submitted
        lo, hi = r.finished - r.received, r.started - r.submitted
        low[r.host] = max(low.get(r.host, lo), lo)
        high[r.host] = min(high.get(r.host, hi), hi)
    offsets: dict[str, float] = {}
    for host, lo in low.items():
        hi = high[host]
        if host == _HOST:  # the driver's own clock
            offsets[host] = 0.0
        elif lo <= hi:
            offsets[host] = min(max(0.0, lo), hi)
        else:  # stamps that contradict each other (a clock stepped): split the difference
            offsets[host] = (lo + hi) / 2
    for r in records:
        if r.started and not r.lost:
            theta = offsets[r.host]
            r.offset = theta
            # (clamped: subtracting the offset must not reorder stamps by a rounding error)
            r.started = max(r.started - theta, r.submitted)
            r.finished = max(min(r.finished - theta, r.received), r.started)
            r.ran = min(max(r.ran - theta, r.started), r.finished)
    return offsets


def breakdown(
    records: Iterable[ItemRecord],
    driver_spans: Iterable[tuple[str, float, float]],
    start: float,
    end: float,
) -> dict[str, float]:
    """Split the wall time ``[start, end]`` into :data:`PARTS`; the parts add up to it.

    ``driver_spans`` are ``(part, begin, end)`` intervals the driver spent
    serializing work or deserializing results.
    """
    rank = {p: i for i, p in enumerate(PARTS)}
    spans: list[tuple[float, float, int]] = []

    def add(part: str, a: float, b: float) -> None:
        a, b = max(a, start), min(b, end)
        if b > a:
            spans.append((a, b, rank[part]))

    for r in records:
        if r.lost or not r.started:
            add("engine latency", r.submitted, r.received or end)
            continue
        add("engine latency", r.submitted, r.started)
        # loading the item: on a fresh worker mostly imports, the engine's cold start
        add("engine latency" if r.cold else "serialization", r.started, r.ran)
        add("tasks", r.ran, r.finished)
        add("transfer", r.finished, r.received)
        add("serialization", r.received, r.decoded)
    for part, a, b in driver_spans:
        add(part, a, b)
    totals = dict.fromkeys(PARTS, 0.0)
    spans.sort()
    active = [0] * len(PARTS)
    ends: list[tuple[float, int]] = []  # a heap of (end, part) of the active spans
    now = start
    i = 0

    def advance(to: float) -> None:
        nonlocal now
        if to > now:
            best = next((p for p in range(len(PARTS) - 1) if active[p]), len(PARTS) - 1)
            totals[PARTS[best]] += to - now
            now = to

    while i < len(spans) or ends:
        next_start = spans[i][0] if i < len(spans) else float("inf")
        if ends and ends[0][0] <= next_start:
            t, p = heapq.heappop(ends)
            advance(t)
            active[p] -= 1
        else:
            a, b, p = spans[i]
            i += 1
            advance(a)
            active[p] += 1
            heapq.heappush(ends, (b, p))
    advance(end)
    return totals
