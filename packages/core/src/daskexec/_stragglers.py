"""Work items that run too long: backup copies for stragglers, and the ``item_timeout`` deadline.

Clock
-----
Neither rule may count the time an item waits in the engine's queue for a
worker, and most engines cannot say when an item starts (Lithops and Ray
futures stay pending until the outcome arrives; the stdlib process pool
marks an item running when it enters the call queue).  So the driver keeps
one model of the engine for every backend: ``EngineInfo.workers`` slots,
taken in submission order.  An item's clock starts when it was submitted
and a slot was free for it: at once while fewer than ``workers`` items are
running, else when an earlier item ends.  An item abandoned after its
deadline still holds its slot until its future ends (a hung task still
holds its worker: a thread cannot be stopped, a process pool worker runs
on), unless its cancel succeeded; and when every slot is held by abandoned
items, waiting items start their clocks anyway, so that an engine whose
workers all hang fails with an error instead of hanging the compute.

Backups
-------
A running item gets one backup copy (the same payload, sent again) when its
group (``Graph.group``: tasks doing the same work) has at least
``min_tasks`` remote tasks, at least ``min_done`` of them are done, and the
item has run longer than ``factor`` times the median of the group's
finished items (Cubed's rule: 10 tasks, 50%, 3x), and longer than that
median plus ``slack`` (twice the engine's call cost, at least 50 ms: a
copy that cannot finish sooner than the original only adds work).  Items
that are not safe to run twice never get one: see :func:`safe_to_repeat`.

Deadlines
---------
An item whose clock passes its ``item_timeout`` (the scheduler's, or the
smallest ``dask.annotate(item_timeout=...)`` among its tasks) is a lost
item: the scheduler cancels it, ignores its late result, and sends it again
within the retry bound.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import heapq
import itertools
import math
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dask.utils import key_split

from daskexec._graph import Graph
from daskexec._transport._submit import shown
from daskexec.errors import ItemTimeoutError

if TYPE_CHECKING:
    from daskexec._run import Run, _Sent

_NOT = bytes(0 if k else 1 for k in range(256))

#: Names (of a layer, a key prefix or a function) of tasks that write outside
#: the graph: ``da.store``/``to_zarr`` (``store-map``, ``store_chunk``),
#: ``to_parquet``, ``to_csv``, ``to_textfiles``, ``to_hdf``, ``to_sql``...
#: Running one twice could write twice, so it never gets a backup copy.
_WRITES = re.compile(r"(?:^|[-_])(?:store|write|writer|writes|save|insert|to[-_][a-z])", re.I)

#: The key of a ``delayed(..., pure=False)`` call (the default): a uuid4 after the name.
_IMPURE = re.compile(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
#: A name ending in Dask's ``tokenize`` of the arguments: the same call, the same key.
_TOKENIZED = re.compile(r"-[0-9a-f]{32}$")


@dataclass(frozen=True)
class BackupRule:
    """When a running work item is a straggler (see the module docstring)."""

    min_tasks: int = 10
    min_done: float = 0.5
    factor: float = 3.0
    min_slack: float = 0.05


#: The rule every compute uses (a benchmark may swap it: ``benchmarks/stragglers.py``).
RULE = BackupRule()


def writes(name: str) -> bool:
    """Whether a layer, key prefix or function name says the task writes somewhere."""
    return bool(_WRITES.search(name))


def safe_to_repeat(graph: Graph, i: int) -> bool:
    """Whether task ``i`` may run twice by default: it reads and computes, and never writes.

    Array, bag and dataframe chunks (tuple keys) and ``delayed(pure=True)``
    calls (a name and a token of the arguments) are; a task whose layer,
    key or function name says it writes (``store``, ``to_parquet``...) is
    not, nor an impure ``delayed`` call or a key of unknown origin (a hand
    built graph's ``"x"``, a ``dask_key_name``).
    """
    key = graph.keys[i]
    if writes(key_split(key)):
        return False
    work = graph.group_names[graph.group[i]]
    if isinstance(work, tuple) and len(work) == 2 and isinstance(work[0], tuple):
        work = work[0]  # (work, annotations)
    if isinstance(work, tuple) and len(work) == 2:
        kind, what = work
        name = what if kind == "layer" else getattr(what, "co_name", None)
        if name is None:
            name = getattr(what, "__name__", None) or type(what).__name__
        if isinstance(name, str) and writes(name):
            return False
    if isinstance(key, tuple):
        return bool(key) and isinstance(key[0], str)
    if isinstance(key, str):
        return not _IMPURE.search(key) and bool(_TOKENIZED.search(key))
    return False


def check_item_timeout(value: object, where: str = "item_timeout") -> float | None:
    """``value`` as a number of seconds > 0, or None; a clear error otherwise."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"daskexec: {where} must be a number of seconds > 0 or None, got {value!r}"
        )
    return float(value)


def check_backups(value: object, where: str = "backups") -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(
            f"daskexec: {where} must be True (back up any straggler), False (never) or "
            f"None (only tasks safe to run twice), got {value!r}"
        )
    return value


@dataclass
class _Clock:
    group: int
    tasks: int
    submitted: float
    deadline: float | None  # seconds of run time allowed, or None
    backup_ok: bool  # may get a backup copy
    started: float | None = None
    ended: bool = False
    backed_up: bool = False
    abandoned: bool = False


@dataclass
class Watch:
    """The driver's view of how long each work item in flight has been running.

    The scheduler tells it about submissions and endings; :meth:`due` says
    when it next needs to look, and :meth:`check` which items passed their
    deadline and which need a backup copy.  Each costs time in the number
    of groups and of items it reports, not of items in flight: clocks start
    in submission order, so a group's first candidate for a backup is its
    longest running, and deadlines wait in a heap.
    """

    workers: int
    call_overhead: float
    #: remote tasks per group, counted when first needed (a million-task graph
    #: whose items all finish on time never pays for it)
    count_tasks: Callable[[], Counter[int]]
    rule: BackupRule = field(default_factory=BackupRule)
    clocks: dict[Any, _Clock] = field(default_factory=dict)
    waiting: deque[Any] = field(default_factory=deque)
    busy: int = 0
    stuck: int = 0  # abandoned items still holding a slot
    done: Counter[int] = field(default_factory=Counter)
    durations: dict[int, list[float]] = field(default_factory=dict)
    #: per group, the running items that may still get a backup, in start order
    candidates: dict[int, dict[Any, _Clock]] = field(default_factory=dict)
    #: (when, order, clock, future) of the running items with a deadline
    deadlines: list[tuple[float, int, _Clock, Any]] = field(default_factory=list)
    _order: Iterator[int] = field(default_factory=itertools.count)
    _totals: Counter[int] | None = None
    _due: float | None = None
    _dirty: bool = False

    @property
    def slack(self) -> float:
        return max(self.rule.min_slack, 2 * self.call_overhead)

    def submitted(
        self, fut: Any, group: int, tasks: int, now: float, deadline: float | None, backup_ok: bool
    ) -> None:
        self.clocks[fut] = _Clock(group, tasks, now, deadline, backup_ok)
        self.waiting.append(fut)
        self._start(now)

    def ended(self, fut: Any, now: float, ok: bool, task_groups: Sequence[int] = ()) -> None:
        """``fut`` completed (or was cancelled before it ran); ``ok``: its result counts."""
        c = self.clocks.pop(fut, None)
        if c is None or c.ended:
            return
        c.ended = True
        self._drop(fut, c)
        if c.started is not None:
            self.busy -= 1
            if c.abandoned:
                self.stuck -= 1
            elif ok:
                bisect.insort(self.durations.setdefault(c.group, []), now - c.started)
        if ok:
            self.done.update(task_groups)
        self._start(now)

    def abandon(self, fut: Any, now: float, cancelled: bool) -> None:
        """The scheduler gave up on ``fut``; if its cancel worked, its slot is free now."""
        c = self.clocks.get(fut)
        if c is None:
            return
        if cancelled or c.started is None:
            self.ended(fut, now, ok=False)
            return
        c.abandoned = True
        self._drop(fut, c)
        self.stuck += 1
        self._start(now)

    def mark_backed_up(self, fut: Any) -> None:
        """``fut`` is itself a backup, or the item already has one: no (further) copy."""
        c = self.clocks.get(fut)
        if c is not None:
            c.backed_up = True
            self._drop(fut, c)
            self._dirty = True

    def _start(self, now: float) -> None:
        while self.waiting and (self.busy < self.workers or self.stuck >= self.workers):
            fut = self.waiting.popleft()
            c = self.clocks.get(fut)
            if c is None or c.ended:
                continue
            c.started = now
            self.busy += 1
            if c.deadline is not None:
                heapq.heappush(self.deadlines, (now + c.deadline, next(self._order), c, fut))
            if c.backup_ok and not c.backed_up:
                self.candidates.setdefault(c.group, {})[fut] = c
        self._dirty = True

    def _drop(self, fut: Any, c: _Clock) -> None:
        """``fut`` can get no backup any more (its deadline entry goes lazily)."""
        group = self.candidates.get(c.group)
        if group is not None and group.pop(fut, None) is not None and not group:
            del self.candidates[c.group]

    def _backup_after(self, group: int) -> float | None:
        durations = self.durations.get(group)
        r = self.rule
        if not durations:
            return None
        if self._totals is None:
            self._totals = self.count_tasks()
        total = self._totals.get(group, 0)
        if total < r.min_tasks or self.done[group] < r.min_done * total:
            return None
        median = durations[len(durations) // 2]
        return max(r.factor * median, median + self.slack)

    def _first_deadline(self) -> float | None:
        heap = self.deadlines
        while heap and (heap[0][2].ended or heap[0][2].abandoned):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def due(self, now: float) -> float | None:
        """Seconds until the next check is needed (None: no item needs watching)."""
        if self._dirty:
            first = self._first_deadline()
            for group, running in self.candidates.items():
                b = self._backup_after(group)
                if b is not None:
                    t = next(iter(running.values())).started + b  # type: ignore[operator]
                    first = t if first is None else min(first, t)
            self._due = first
            self._dirty = False
        return None if self._due is None else max(0.0, self._due - now)

    def check(self, now: float) -> tuple[list[Any], list[Any]]:
        """Items past their deadline, and items that need a backup copy now."""
        self.due(now)
        if self._due is None or now < self._due:
            return [], []
        late: list[Any] = []
        heap = self.deadlines
        while (first := self._first_deadline()) is not None and first <= now:
            late.append(heapq.heappop(heap)[3])
        slow: list[Any] = []
        for group in list(self.candidates):
            b = self._backup_after(group)
            if b is None:
                continue
            running = self.candidates[group]
            for fut, c in list(running.items()):
                if now - c.started < b:  # type: ignore[operator]
                    break
                if fut in late:
                    continue
                c.backed_up = True
                self._drop(fut, c)
                slow.append(fut)
        self._dirty = True
        return late, slow


def item_deadline(graph: Graph, tasks: Sequence[int], default: float | None) -> float | None:
    """The smallest ``item_timeout`` among the tasks' annotations, else ``default``."""
    if not graph.annotations:
        return default
    found = [
        check_item_timeout(a["item_timeout"], f"the item_timeout annotation of {graph.keys[i]!r}")
        for i in tasks
        if "item_timeout" in (a := graph.annotation(i))
    ]
    values = [v for v in found if v is not None]
    return min(values) if values else default


class Safety:
    """Whether an item may get a backup copy: the user's switch, else the default rule."""

    def __init__(self, graph: Graph, setting: bool | None) -> None:
        self.graph = graph
        self.setting = setting
        self.by_group: dict[int, bool] = {}

    def item(self, tasks: Sequence[int]) -> bool:
        g = self.graph
        for i in tasks:
            if g.annotations and "backups" in (a := g.annotation(i)):
                ok = check_backups(a["backups"], f"the backups annotation of {g.keys[i]!r}")
                if ok is not None:
                    if not ok:
                        return False
                    continue
            if self.setting is not None:
                if not self.setting:
                    return False
                continue
            grp = g.group[i]
            known = self.by_group.get(grp)
            if known is None:
                known = self.by_group[grp] = safe_to_repeat(g, i)
            if not known:
                return False
        return True


class Overtime:
    """What one compute does about items that run too long: the ``Run``'s hooks call it.

    It launches backup copies, times items out, and takes the late arrivals
    of copies it gave up on: their results are never applied (the other
    copy's were, or a retry's will be), what they stored is released, and
    their :class:`~daskexec.diagnostics.ItemRecord` is kept.
    """

    def __init__(
        self,
        run: Run,
        resend: Callable[[_Sent], None],
        arrive: Callable[[Future[Any]], None],
    ) -> None:
        self.run = run
        self.resend = resend  # sends an item again, as a retry
        self.arrive = arrive  # the done callback that wakes the run
        s = run.settings
        g = run.g
        self.default_deadline = s.item_timeout
        self.safety = Safety(g, s.backups)
        has_deadlines = s.item_timeout is not None or any(
            "item_timeout" in a for a in g.annotations.values()
        )
        may_back_up = s.backups is not False or any(
            a.get("backups") for a in g.annotations.values()
        )
        self.active = has_deadlines or may_back_up

        def count_tasks() -> Counter[int]:
            return Counter(itertools.compress(g.group, run.local.translate(_NOT)))

        self.watch = Watch(run.info.workers, run.info.call_overhead, count_tasks, RULE)
        self.twins: dict[Future[Any], Future[Any]] = {}
        self.late: dict[Future[Any], _Sent] = {}  # given up on, not yet arrived
        self.left_running = False

    # ------------------------------------------------------------ the run's hooks

    def submitted(self, fut: Future[Any], sent: _Sent) -> None:
        """A work item (or a retry, or a backup copy) went out."""
        if not self.active:
            return
        deadline = item_deadline(self.run.g, sent.tasks, self.default_deadline)
        self.watch.submitted(
            fut,
            sent.group,
            len(sent.tasks),
            time.monotonic(),
            deadline,
            self.safety.item(sent.tasks),
        )

    def wait(self, wait: float | None) -> float | None:
        """How long the main loop may block: no longer than the next check."""
        if not self.active:
            return wait
        due = self.watch.due(time.monotonic())
        if due is None:
            return wait
        return due if wait is None else min(wait, due)

    def tick(self) -> None:
        """Time out the items past their deadline; back up the stragglers."""
        if not self.active:
            return
        late, slow = self.watch.check(time.monotonic())
        for fut in late:
            if fut in self.run.inflight:
                self._time_out(fut)
        for fut in slow:
            if fut in self.run.inflight and fut not in self.twins:
                self._back_up(fut)

    def arrived(self, fut: Future[Any]) -> None:
        """A future the run no longer has in flight completed: a copy given up on."""
        sent = self.late.pop(fut, None)
        if sent is None:
            return
        run = self.run
        self.watch.ended(fut, time.monotonic(), ok=False)
        record = sent.record
        record.received = run.arrived.pop(fut, 0.0) or time.time()
        if fut.cancelled() or fut.exception() is not None:
            self._release(sent.refs)
            return
        try:
            result, handles = run.transport.receive(fut.result(), sent.refs, sent.keys)
        except Exception:  # an outcome nobody will read: only its storage matters
            self._release(sent.refs)
            return
        record.took(result)
        if run.remote:
            self._release(handles)

    def ended(self, fut: Future[Any], sent: _Sent, ok: bool) -> bool:
        """An item in flight completed; ``ok``: with results to apply.

        Returns whether the run should go on with it: False when it was lost
        but its twin still runs (the twin carries the item on).
        """
        if not self.active:
            return True
        self.watch.ended(
            fut, time.monotonic(), ok, [self.run.g.group[i] for i in sent.tasks] if ok else ()
        )
        twin = self.twins.pop(fut, None)
        if twin is None:
            return True
        self.twins.pop(twin, None)
        if not ok:
            return twin not in self.run.inflight
        if twin in self.run.inflight:
            self._abandon(twin)
            if sent.record.backup:
                self.run.stats.backups_won += 1
        return True

    def close(self) -> list[Any]:
        """The compute is over: cancel every copy given up on; their handles to release."""
        held: list[Any] = []
        for fut, sent in self.late.items():
            with contextlib.suppress(Exception):
                fut.cancel()
            if not fut.done():
                self.left_running = True
            held.extend(sent.refs)
        self.late.clear()
        return held

    # ------------------------------------------------------------------ actions

    def _abandon(self, fut: Future[Any]) -> _Sent:
        run = self.run
        sent = run.inflight.pop(fut)
        cancelled = False
        with contextlib.suppress(Exception):  # a future may refuse by raising
            cancelled = bool(fut.cancel())
        self.watch.abandon(fut, time.monotonic(), cancelled)
        sent.record.received = sent.record.received or time.time()
        if cancelled:
            self._release(sent.refs)
        else:
            self.late[fut] = sent
        return sent

    def _time_out(self, fut: Future[Any]) -> None:
        run = self.run
        sent = self._abandon(fut)
        sent.record.lost = True
        sent.record.timed_out = True
        run.stats.timeouts += 1
        run.stats.engine_failures += 1
        twin = self.twins.pop(fut, None)
        if twin is not None:
            self.twins.pop(twin, None)
            if twin in run.inflight:
                return  # the other copy carries the item on
        deadline = item_deadline(run.g, sent.tasks, self.default_deadline) or 0.0
        if sent.attempts > run.settings.retries:
            raise ItemTimeoutError(
                f"daskexec: the work item holding task {shown(sent.keys)} ran past its "
                f"item_timeout of {deadline:g}s on the {run.info.name} engine "
                f"{sent.attempts} times; gave up after {run.settings.retries} retries. "
                "The task may hang (a lock, a network call without a timeout) or need more "
                "time: fix it, or raise item_timeout= (per layer: "
                "dask.annotate(item_timeout=...)) or retries="
            )
        self.resend(sent)

    def _back_up(self, fut: Future[Any]) -> None:
        run = self.run
        original = run.inflight[fut]
        st = run.stats
        st.backups += 1
        st.invocations += 1
        now = time.time()
        copy_fut, refs = original.resend()
        old = original.record
        record = old.again(now, old.attempt, now, backup=True)
        st.items.append(record)
        copy = dataclasses.replace(original, record=record, refs=refs)
        run.inflight[copy_fut] = copy
        self.twins[fut] = copy_fut
        self.twins[copy_fut] = fut
        self.submitted(copy_fut, copy)
        self.watch.mark_backed_up(copy_fut)
        copy_fut.add_done_callback(self.arrive)
        st.max_inflight = max(st.max_inflight, len(run.inflight))

    def _release(self, handles: list[Any]) -> None:
        if handles and self.run.remote:
            with contextlib.suppress(Exception):
                self.run.transport.release(handles)
