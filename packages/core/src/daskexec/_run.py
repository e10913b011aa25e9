"""One compute: the scheduler's state machine.

State
-----
Every task of the culled graph is, in turn, *waiting* (inputs missing),
*ready* (in its group's priority heap), *placed* (inside a work item in
flight) and *done*.  ``data`` holds the values the driver has (or, with a
reference engine, the references to them); ``refcount`` counts, per key,
the consumers that have not finished yet (plus one for an output), and a
value is dropped the moment its count reaches zero.

Task selection
--------------
Ready tasks wait in one heap per *group*: tasks that do the same work (the
same function, or for a fused task the same layer) and carry the same
annotations.  The most urgent ready task is one that the latest completion
made ready (it consumes data just produced, as in Dask's local scheduler),
then the one first in ``dask.order``.  While fewer work items than the
in-flight limit are out, the group holding the most urgent task goes out as
one batch: its most urgent tasks, cut into work items of
``pack_size`` tasks (see ``_packing``), each closed over the consumers it
alone feeds.  Bookkeeping nodes (literal data, aliases, and, unless results
stay remote, containers of references and Dask's final assembly of a
collection's result) never go out: the driver runs them as soon as their
inputs are in.

Failures
--------
A task's exception stops the compute: queued work is cancelled, in-process
items stop at their next task, and the exception is re-raised with its
remote traceback as ``__cause__`` and a note naming the key.  A work item
whose future itself fails (the engine lost it) is sent again, up to
``retries`` times, then :class:`~daskexec.errors.EngineFailure` names it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import itertools
import queue
import threading
import time
import traceback
import uuid
from array import array
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from dask.utils import key_split

from daskexec import _failures, _packing, _stragglers
from daskexec._checkpoint import Plan
from daskexec._graph import ALIAS, CALL, DATA, TASK, Graph
from daskexec._inlining import inline_getters
from daskexec._timeline import ItemRecord
from daskexec._transport import Sender, choose
from daskexec._worker import Cancelled, TaskFailure, WorkItem
from daskexec.engine import EngineInfo
from daskexec.errors import RemoteTraceback
from daskexec.stats import ComputeStats, Progress

WAITING, READY, PLACED, DONE = 0, 1, 2, 3

#: How urgent a ready task is: tasks made ready by the latest completion
#: first (they consume data just produced, as Dask's local scheduler does),
#: then ``dask.order`` priority.  One integer per ready task, lower first,
#: which also carries the task's number (``_entry``): a million ready tasks
#: cost a million small integers, not a million tuples.
Rank = int
_TOP = 1 << 40  # more completions than any compute has
_LOW = (1 << 32) - 1


#: Ready tasks sampled to estimate the time of a task in a batch.
TIME_SAMPLE = 32


def _entry(generation: int, priority: int, task: int) -> Rank:
    return ((_TOP - generation) << 64) | (priority << 32) | task


# kinds of task (``_graph``) that the driver runs itself, by transport
_LOCAL_IF_REMOTE = bytes(1 if k in (DATA, ALIAS) else 0 for k in range(256))
_LOCAL_IF_VALUES = bytes(0 if k in (TASK, CALL) else 1 for k in range(256))
_NOT = bytes(0 if k else 1 for k in range(256))


@dataclass
class Settings:
    """The knobs of one compute, after defaults were filled in from the engine."""

    batch_size: int | None
    timeout: float
    pack_size: int | None
    max_inflight: int
    retries: int
    retry_on: tuple[type[BaseException], ...]
    item_timeout: float | None = None
    backups: bool | None = None


@dataclass
class _Sent:
    """A work item in flight: what it holds, and how to send it again."""

    item: WorkItem
    tasks: list[int]
    keys: list[Hashable]
    exports: list[int]
    group: int
    resend: Sender
    record: ItemRecord
    refs: list[Any] = field(default_factory=list)
    attempts: int = 1
    #: ready tasks of its batch it took (the tasks that joined them excluded):
    #: what ``pack_size`` counts
    members: int = 0


class Run:
    """Runs one prepared graph on one executor."""

    def __init__(
        self,
        graph: Graph,
        executor: concurrent.futures.Executor,
        info: EngineInfo,
        settings: Settings,
        callbacks: Sequence[tuple[Any, ...]],
        stats: ComputeStats,
    ) -> None:
        self.g = graph
        self.executor = executor
        self.info = info
        self.settings = settings
        self.stats = stats
        self.token = uuid.uuid4().hex  # names this compute on the workers and in stores
        self.cancel = threading.Event()
        self.transport = choose(executor, info, self.token, self.cancel, stats)
        self.remote = self.transport.remote
        if self.transport.inline_getters:
            self.g = graph = inline_getters(graph)
        self.completed: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self.inflight: dict[Future[Any], _Sent] = {}
        self.arrived: dict[Future[Any], float] = {}  # when each future completed
        # when each task became ready to go out (0: it never waited on its own)
        self.ready_at = array("d", bytes(8 * len(graph)))

        self.pretask = [cb[2] for cb in callbacks if cb[2]]
        self.posttask = [cb[3] for cb in callbacks if cb[3]]
        self.track = bool(callbacks)
        self.export_all = bool(self.posttask)

        n = len(graph)
        # results stay remote: only what needs no data runs here
        self.local = graph.kinds.translate(_LOCAL_IF_REMOTE if self.remote else _LOCAL_IF_VALUES)
        self.status = bytearray(n)  # WAITING
        self.missing = array("q", map(len, graph.deps))
        self.refcount = array("q", map(len, graph.dependents))
        for k in graph.outputs:
            self.refcount[k] += 1
        self.data: dict[int, Any] = {}
        # Literal data is data, not a task (as in Dask): in the cache from the
        # start, and no callback fires for it.
        self.literals: list[int] = []
        k = graph.kinds.find(DATA)
        while k >= 0:
            self.literals.append(k)
            self.data[k] = graph.node(k)({})
            self.status[k] = DONE
            for dep in graph.dependents[k]:
                self.missing[dep] -= 1
            k = graph.kinds.find(DATA, k + 1)
        self.done = len(self.literals)
        self.is_ref: set[int] = set()
        self.sharers: dict[int, int] = {}  # id(handle) -> keys holding it, when several
        # ready tasks per group, most urgent first: see ``Rank``
        self.heaps: dict[int, list[Rank]] = {}
        # family's first root -> the family; the others wait for it (``execute``)
        self.families: dict[int, list[int]] = {}
        self.followers: set[int] = set()
        self.generation = 0
        self.group_left: Counter[int] = Counter()
        self.group_since: dict[int, float] = {}
        self.task_time: dict[int, float] = {}
        self.measured = [0.0, 0]  # seconds and tasks over every item back so far
        self.n_ready = 0
        self.state: dict[str, Any] = self._dask_state() if self.track else {}
        #: set by the scheduler: where work items write their results (``_checkpoint``)
        self.checkpoint: Plan | None = None
        # backups for stragglers, item_timeout (``_stragglers``)
        self.overtime = _stragglers.Overtime(self, self._resend, self._arrive)

    def progress(self) -> Progress:
        """Tasks done of all, and work items in flight (read from another thread)."""
        return Progress(self.done, len(self.g.nodes), len(self.inflight))

    # ------------------------------------------------------------------ state

    def _dask_state(self) -> dict[str, Any]:
        """The state dict Dask's callbacks read (ProgressBar counts its sets), by key."""
        keys, g = self.g.keys, self.g
        literals = set(self.literals)
        deps = {keys[i]: {keys[d] for d in ds} for i, ds in enumerate(g.deps)}
        waiting = {
            keys[i]: {keys[d] for d in ds if d not in literals} for i, ds in enumerate(g.deps)
        }
        return {
            "cache": _Cache(self),
            "dependencies": deps,
            "dependents": {keys[i]: {keys[d] for d in ds} for i, ds in enumerate(g.dependents)},
            "waiting": {k: v for k, v in waiting.items() if v},
            "waiting_data": {
                keys[i]: {keys[d] for d in ds} for i, ds in enumerate(g.dependents) if ds
            },
            "ready": [],
            "running": set(),
            "finished": set(),
            "released": set(),
        }

    # -------------------------------------------------------------- main loop

    def execute(self) -> dict[Hashable, Any]:
        """Run the graph; return the values of the output keys."""
        g = self.g
        self.group_left.update(itertools.compress(g.group, self.local.translate(_NOT)))
        missing, status = self.missing, self.status
        start = [k for k, m in enumerate(missing) if m == 0 and status[k] == WAITING]
        start.sort(key=g.priority.__getitem__)
        # root tasks whose consumers need nothing else go out together
        self.families = (
            _packing.root_families(
                start, g.group, self.local, g.dependents, g.deps, self.info.workers
            )
            if self.info.out_of_process and self.settings.pack_size is None
            else {}
        )
        self.followers = {k for fam in self.families.values() for k in fam[1:]}
        self._make_ready(start)
        total = len(g)
        while self.done < total:
            self.overtime.tick()
            wait = self.overtime.wait(self._dispatch())
            if not self.inflight:
                if self.done < total and not self.n_ready:
                    raise RuntimeError("daskexec: no task can run; the graph is inconsistent")
                continue
            try:
                fut = self.completed.get(timeout=wait)
            except queue.Empty:
                continue
            self._complete(fut)
            while True:
                try:
                    fut = self.completed.get_nowait()
                except queue.Empty:
                    break
                self._complete(fut)
        outputs = {k: self.data[k] for k in g.outputs}
        refs = [k for k in outputs if k in self.is_ref]
        if refs:
            values = self.transport.fetch([outputs[k] for k in refs])
            self.stats.fetched += len(values)
            outputs.update(zip(refs, values, strict=False))
        return {g.keys[k]: v for k, v in outputs.items()}

    def close(self) -> None:
        """Drop every value and reference this run still holds (success or not)."""
        held = list(
            {id(h): h for h in (self.data[k] for k in self.is_ref if k in self.data)}.values()
        )
        for sent in self.inflight.values():
            held.extend(sent.refs)
        held.extend(self.overtime.close())
        self.inflight.clear()
        self.data.clear()
        self.is_ref.clear()
        try:
            if held:
                self.transport.release(held)
        finally:
            self.transport.close()

    def abort(self) -> None:
        """Stop everything still queued or running (error or interrupt)."""
        self.cancel.set()
        for fut in list(self.inflight):
            # A future that cannot be cancelled may say so by raising (parsl's
            # AppFuture.cancel raises NotImplementedError) instead of returning
            # False: it runs to its end, and the error that stopped the compute
            # stays the one the caller sees.
            with contextlib.suppress(Exception):
                fut.cancel()

    # ---------------------------------------------------------------- readiness

    def _make_ready(self, keys: list[int]) -> None:
        """Run ready bookkeeping nodes now (and what they release); queue the rest."""
        stack = list(reversed(keys))
        prio = self.g.priority
        group = self.g.group
        local = self.local
        status = self.status
        now = time.time()
        ready_at = self.ready_at
        while stack:
            key = stack.pop()
            if local[key]:
                finished = self._run_local(key)
                for nxt in reversed(finished):
                    stack.append(nxt)
                continue
            status[key] = READY
            ready_at[key] = now
            grp = group[key]
            if key in self.followers:  # goes out with its family's first root
                self.group_left[grp] -= 1
                if self.track:
                    self.state["ready"].append(self.g.keys[key])
                continue
            heap = self.heaps.get(grp)
            if heap is None:
                heap = self.heaps[grp] = []
                self.group_since[grp] = time.monotonic()
            heapq.heappush(heap, _entry(self.generation, prio[key], key))
            self.group_left[grp] -= 1
            self.n_ready += 1
            if self.track:
                self.state["ready"].append(self.g.keys[key])

    def _run_local(self, i: int) -> list[int]:
        g = self.g
        key = g.keys[i]
        for f in self.pretask:
            f(key, g.nodes, self.state)
        if g.kinds[i] == ALIAS:
            target = g.deps[i][0]
            value = self.data[target]
            if target in self.is_ref:
                self.is_ref.add(i)
                # one handle, two keys: released when both are
                self.sharers[id(value)] = self.sharers.get(id(value), 1) + 1
        else:
            inputs = {g.keys[d]: self._value(d) for d in g.deps[i]}
            try:
                value = g.node(i)(inputs)
            except Exception as exc:
                self._raise_task_error(TaskFailure(key, exc, traceback.format_exc()))
        self.data[i] = value
        self.stats.local_tasks += 1
        for f in self.posttask:
            f(key, self._value(i), g.nodes, self.state, "driver")
        return self._finish([i], set())

    def _value(self, i: int) -> Any:
        value = self.data[i]
        if i in self.is_ref:
            self.stats.fetched += 1
            return self.transport.fetch([value])[0]
        return value

    def _finish(self, done: list[int], inside: set[int]) -> list[int]:
        """Mark tasks ``done``; release inputs no longer needed; return newly ready tasks."""
        ready: list[int] = []
        deps_of = self.g.deps
        dependents = self.g.dependents
        missing = self.missing
        refcount = self.refcount
        status = self.status
        track = self.track
        for i in done:
            status[i] = DONE
            if track:
                key = self.g.keys[i]
                self.state["finished"].add(key)
                self.state["running"].discard(key)
                self.state["waiting"].pop(key, None)
            for dep in dependents[i]:
                if dep in inside:
                    continue
                missing[dep] -= 1
                if missing[dep] == 0:
                    ready.append(dep)
            for dep in deps_of[i]:
                refcount[dep] -= 1
                if refcount[dep] == 0:
                    self._release(dep)
            if refcount[i] == 0:
                self._release(i)
        self.done += len(done)
        if len(ready) > 1:
            ready.sort(key=self.g.priority.__getitem__)
        return ready

    def _release(self, i: int) -> None:
        value = self.data.pop(i, None)
        if i in self.is_ref:
            self.is_ref.discard(i)
            n = self.sharers.pop(id(value), 1)
            if n > 1:
                self.sharers[id(value)] = n - 1
            elif value is not None:
                self.transport.release([value])
        if self.track:
            self.state["released"].add(self.g.keys[i])

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self) -> float | None:
        """Send batches while there is room; return how long a held batch may wait."""
        s = self.settings
        hold_until: float | None = None
        # On an expensive engine every round trip is a whole invocation: all
        # ready work goes out in one batch (one job), whatever its kind.
        merge = self.info.call_overhead >= _packing.CHEAP_CALL
        while self.n_ready and len(self.inflight) < s.max_inflight:
            now = time.monotonic()
            best: tuple[Rank, int] | None = None
            sendable: list[int] = []
            for grp, heap in self.heaps.items():
                if not heap:
                    continue
                if s.timeout > 0 and self._held(grp, len(heap), now):
                    until = self.group_since[grp] + s.timeout
                    hold_until = until if hold_until is None else min(hold_until, until)
                    continue
                sendable.append(grp)
                if best is None or heap[0] < best[0]:
                    best = (heap[0], grp)
            if best is None:
                break
            others = [g for g in sendable if g != best[1]]
            if merge:
                self._send_batch(best[1], others, None)
            else:
                rival = min((self.heaps[g][0] for g in others), default=None)
                self._send_batch(best[1], [], rival)
        if hold_until is None:
            return None
        return max(0.0, hold_until - time.monotonic())

    def _held(self, grp: int, n: int, now: float) -> bool:
        """Whether a partial batch should wait for more tasks of its group."""
        s = self.settings
        if s.batch_size is not None and n >= s.batch_size:
            return False
        if not self.group_left.get(grp) or not self.inflight:
            return False
        return now < self.group_since[grp] + s.timeout

    def _send_batch(self, grp: int, merge: list[int], rival: Rank | None) -> None:
        """Send ready tasks of ``grp`` (and of the ``merge`` groups) as one batch.

        Unpacked tasks (one per item: they are long enough to pay for their
        call) go strictly by priority: none that another group's ready task
        (most urgent: ``rival``) should precede.  Running ahead of Dask's order
        would make data before its consumers can take it.
        """
        s = self.settings
        heap = self.heaps[grp]
        for other in merge:
            for entry in self.heaps.pop(other):
                heapq.heappush(heap, entry)
        seconds, counted = self.measured
        typical = seconds / counted if counted else None
        task_time = self._batch_time(heap, typical)
        slots = s.max_inflight - len(self.inflight)
        ntasks = len(heap)
        if s.batch_size is not None:
            ntasks = min(ntasks, s.batch_size)
        p = s.pack_size or _packing.pack_size(
            ntasks, self.info.workers, self.info.call_overhead, task_time, typical
        )
        ntasks = min(ntasks, p * slots, max(p, _packing.BATCH_TASKS))
        if p == 1 and rival is not None:
            members = [heapq.heappop(heap) & _LOW]
            while len(members) < ntasks and heap[0] < rival:
                members.append(heapq.heappop(heap) & _LOW)
            ntasks = len(members)
        else:
            members = [heapq.heappop(heap) & _LOW for _ in range(ntasks)]
        self.n_ready -= ntasks
        if heap:
            self.group_since[grp] = time.monotonic()
        else:
            del self.heaps[grp]
        overhead = self.info.call_overhead
        fan_out = (
            overhead >= _packing.CHEAP_CALL
            and typical is not None
            and typical * _packing.AMORTIZE < overhead
        )
        if not self.families:
            items = [self._build_item(members[i : i + p], fan_out) for i in range(0, ntasks, p)]
        else:  # a family's first root brings the others; consumers of several join
            units = [self.families.get(m) or [m] for m in members]
            items = [
                self._build_item(
                    [k for unit in units[i : i + p] for k in unit],
                    fan_out or any(len(unit) > 1 for unit in units[i : i + p]),
                )
                for i in range(0, ntasks, p)
            ]
        self._submit(grp, items, p, ntasks)

    def _batch_time(self, heap: list[Rank], typical: float | None) -> float | None:
        """The measured time of a task in ``heap``, on average over its groups.

        A merged batch's heap holds tasks of several groups (and keeps them
        for the next batches): up to :data:`TIME_SAMPLE` entries, spread over
        the heap, stand for it.  A group not measured yet counts at
        ``typical``; None if that is unknown too.
        """
        step = max(1, len(heap) // TIME_SAMPLE)
        group, times = self.g.group, self.task_time
        total, count = 0.0, 0
        for entry in heap[::step]:
            t = times.get(group[entry & _LOW], typical)
            if t is None:
                return None
            total += t
            count += 1
        return total / count if count else None

    def _can_join(self, i: int) -> bool:
        return self.status[i] == WAITING and not self.local[i]

    def _build_item(self, members: list[int], fan_out: bool = False) -> _packing.Built:
        g = self.g
        extra = _packing.close_over_dependents(
            members, g.dependents, self._can_join, self.missing, 1_000_000, fan_out
        )
        tasks = members + extra
        if extra:
            tasks.sort(key=g.priority.__getitem__)
        status = self.status
        for i in tasks:
            status[i] = PLACED
        built = _packing.make_item(tasks, g, self.data, self.is_ref, self.export_all)
        if self.checkpoint is not None:
            self.checkpoint.mark(built, g)
        return built

    # ------------------------------------------------------------------- submit

    def _submit(self, grp: int, items: list[_packing.Built], p: int, ntasks: int) -> None:
        """Send ``items``: ``ntasks`` ready tasks of group ``grp``, ``p`` in each item."""
        st = self.stats
        g = self.g
        st.map_calls += 1
        st.work_items += len(items)
        st.invocations += len(items)
        for built in items:
            st.remote_tasks += len(built.tasks)
            if self.pretask or self.track:
                for key in built.keys:
                    if self.track:
                        self.state["running"].add(key)
                    for f in self.pretask:
                        f(key, g.nodes, self.state)
        if self.track:
            self.state["ready"] = [g.keys[e & _LOW] for h in self.heaps.values() for e in h]
        inputs = [[self.data[k] for k in built.refs] for built in items]
        options = g.annotation(items[0].tasks[0])
        begin, sent_before, spans = time.time(), st.bytes_sent, len(st.driver_spans)
        sends = self.transport.senders([(b.item, b.keys) for b in items], inputs, options)
        serialized = st.driver_spans[-1][2] if len(st.driver_spans) > spans else begin
        payload = (st.bytes_sent - sent_before) // len(items)
        ready_at = self.ready_at
        for n, (built, send) in enumerate(zip(items, sends, strict=False)):
            fut, refs = send()
            record = ItemRecord(
                item=len(st.items),
                group=key_split(built.keys[0]),
                tasks=len(built.tasks),
                attempt=1,
                ready=min((ready_at[k] or begin for k in built.tasks), default=begin),
                serialized=serialized,
                submitted=serialized,
                payload_bytes=payload,
            )
            st.items.append(record)
            sent = _Sent(
                item=built.item,
                tasks=built.tasks,
                keys=built.keys,
                exports=built.exports,
                group=grp,
                resend=send,
                record=record,
                refs=refs,
                members=min(p, ntasks - n * p),
            )
            self.inflight[fut] = sent
            self.overtime.submitted(fut, sent)
            fut.add_done_callback(self._arrive)
        st.max_inflight = max(st.max_inflight, len(self.inflight))
        st.largest_batch = max(st.largest_batch, sum(len(b.tasks) for b in items))

    # ----------------------------------------------------------------- complete

    def _arrive(self, fut: Future[Any]) -> None:
        """Done callback (an engine's thread): note when, and wake the scheduler."""
        self.arrived[fut] = time.time()
        self.completed.put(fut)

    def _complete(self, fut: Future[Any]) -> None:
        sent = self.inflight.pop(fut, None)
        received = self.arrived.pop(fut, 0.0) or time.time()
        if sent is None:
            self.overtime.arrived(fut)  # a copy given up on: never applied
            return
        self.generation += 1
        record = sent.record
        record.received = received
        try:
            outcome = fut.result()
        except Exception as exc:  # CancelledError included: the engine dropped it
            record.lost = True
            if self.overtime.ended(fut, sent, ok=False):
                self._engine_failure(sent, exc)
            return
        got_before = self.stats.bytes_received
        result, handles = self.transport.receive(outcome, sent.refs, sent.keys)
        record.decoded = time.time()
        record.result_bytes = self.stats.bytes_received - got_before
        record.took(result)
        failure = result.failure
        if failure is not None:
            if isinstance(failure.exception, Cancelled):
                return
            if failure.stage != "run":
                self._raise_serialization_error(failure, sent)
            if self.posttask and result.partial:
                # the tasks of the item that finished before the failure
                for key in sent.keys:
                    if key in result.partial:
                        for f in self.posttask:
                            f(key, result.partial[key], self.g.nodes, self.state, self.info.name)
            if (
                self.settings.retry_on
                and isinstance(failure.exception, self.settings.retry_on)
                and sent.attempts <= self.settings.retries
            ):
                if self.overtime.ended(fut, sent, ok=False):
                    self._resend(sent)
                return
            self._raise_task_error(failure)
        self.overtime.ended(fut, sent, ok=True)
        if result.tasks_run:
            # per ready task of the batch, the tasks that joined it included:
            # what one more ready task in an item costs
            seconds = result.seconds * len(sent.tasks) / result.tasks_run
            members = sent.members or len(sent.tasks)
            self.measured[0] += seconds
            self.measured[1] += members
            per_task = seconds / members
            old = self.task_time.get(sent.group)
            self.task_time[sent.group] = per_task if old is None else 0.5 * (old + per_task)
        exports = sent.exports
        self.data.update(zip(exports, handles, strict=False))
        if self.remote:
            self.is_ref.update(exports)
        if len(self.data) > self.stats.peak_values:
            self.stats.peak_values = len(self.data)
        if self.posttask:
            for i, key in zip(sent.tasks, sent.keys, strict=True):
                value = self._value(i)
                for f in self.posttask:
                    f(key, value, self.g.nodes, self.state, self.info.name)
        ready = self._finish(sent.tasks, set(sent.tasks))
        if ready:
            self._make_ready(ready)

    def _raise_serialization_error(self, failure: TaskFailure, sent: _Sent) -> None:
        if failure.stage == "load":
            error = _failures.unloadable(failure, sent.keys, self.info.name)
            self._raise_task_error(TaskFailure(sent.keys[0], error, ""))
        # a result that cannot leave the worker: the error names the task and the value
        self._raise_task_error(failure)

    def _engine_failure(self, sent: _Sent, exc: BaseException) -> None:
        self.stats.engine_failures += 1
        if sent.attempts > self.settings.retries:
            raise _failures.lost(
                sent.keys, sent.attempts, self.settings.retries, self.info.name
            ) from exc
        self._resend(sent)

    def _resend(self, sent: _Sent) -> None:
        sent.attempts += 1
        self.stats.retries += 1
        self.stats.invocations += 1
        now = time.time()
        fut, refs = sent.resend()
        old = sent.record
        sent.record = old.again(now, sent.attempts, old.received or now)
        self.stats.items.append(sent.record)
        sent.refs = refs
        self.inflight[fut] = sent
        self.overtime.submitted(fut, sent)
        fut.add_done_callback(self._arrive)

    def _raise_task_error(self, failure: TaskFailure) -> None:
        exc = _failures.noted(failure, self.info.name)
        if failure.traceback:
            raise exc from RemoteTraceback(failure.traceback)
        raise exc


class _Cache(Mapping[Hashable, Any]):
    """The values the driver holds, by key: Dask's callbacks read ``state["cache"]``."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def __getitem__(self, key: Hashable) -> Any:
        return self._run.data[self._run.g.index[key]]

    def __iter__(self) -> Iterator[Hashable]:
        keys = self._run.g.keys
        return (keys[i] for i in list(self._run.data))

    def __len__(self) -> int:
        return len(self._run.data)
