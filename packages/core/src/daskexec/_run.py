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
import queue
import threading
import time
import traceback
import types
import uuid
from collections.abc import Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from dask._task_spec import Alias, DataNode, Task, _execute_subgraph
from dask.utils import key_split

from daskexec import _failures, _packing
from daskexec._graph import Graph, is_bookkeeping, is_finalize
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
#: then ``dask.order`` priority.
Rank = tuple[int, int]


@dataclass
class Settings:
    """The knobs of one compute, after defaults were filled in from the engine."""

    batch_size: int | None
    timeout: float
    pack_size: int | None
    max_inflight: int
    retries: int
    retry_on: tuple[type[BaseException], ...]


@dataclass
class _Sent:
    """A work item in flight: what it holds, and how to send it again."""

    item: WorkItem
    keys: list[Hashable]
    group: Hashable
    resend: Sender
    record: ItemRecord
    refs: list[Any] = field(default_factory=list)
    attempts: int = 1


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
        self.ready_at: dict[Hashable, float] = {}  # when each task waiting to go out became ready

        self.pretask = [cb[2] for cb in callbacks if cb[2]]
        self.posttask = [cb[3] for cb in callbacks if cb[3]]
        self.track = bool(callbacks)
        self.export_all = bool(self.posttask)

        nodes = graph.nodes
        if self.remote:
            # results stay remote: only what needs no data runs here
            self.local = {k for k, n in nodes.items() if isinstance(n, (DataNode, Alias))}
        else:
            self.local = {k for k, n in nodes.items() if is_bookkeeping(n) or is_finalize(k, n)}
        self.status: dict[Hashable, int] = dict.fromkeys(nodes, WAITING)
        self.missing: dict[Hashable, int] = {k: len(d) for k, d in graph.dependencies.items()}
        self.refcount: dict[Hashable, int] = {k: len(v) for k, v in graph.dependents.items()}
        for k in graph.outputs:
            self.refcount[k] += 1
        self.data: dict[Hashable, Any] = {}
        # Literal data is data, not a task (as in Dask): in the cache from the
        # start, and no callback fires for it.
        self.literals = [k for k, n in nodes.items() if isinstance(n, DataNode)]
        for key in self.literals:
            self.data[key] = nodes[key]({})
            self.status[key] = DONE
            for dep in graph.dependents[key]:
                self.missing[dep] -= 1
        self.done = len(self.literals)
        self.is_ref: set[Hashable] = set()
        self.sharers: dict[int, int] = {}  # id(handle) -> keys holding it, when several
        # ready tasks per group, most urgent first: see ``Rank``
        self.heaps: dict[Hashable, list[tuple[Rank, Hashable]]] = {}
        # family's first root -> the family; the others wait for it (``execute``)
        self.families: dict[Hashable, list[Hashable]] = {}
        self.followers: set[Hashable] = set()
        self.generation = 0
        self.group_left: dict[Hashable, int] = {}
        self.group_since: dict[Hashable, float] = {}
        self.task_time: dict[Hashable, float] = {}
        self.measured = [0.0, 0]  # seconds and tasks over every item back so far
        self.n_ready = 0
        self.state: dict[str, Any] = self._dask_state() if self.track else {}

    def progress(self) -> Progress:
        """Tasks done of all, and work items in flight (read from another thread)."""
        return Progress(self.done, len(self.g.nodes), len(self.inflight))

    # ------------------------------------------------------------------ state

    def _dask_state(self) -> dict[str, Any]:
        """The state dict Dask's callbacks read (ProgressBar counts its sets)."""
        literals = set(self.literals)
        waiting = {k: set(v) - literals for k, v in self.g.dependencies.items()}
        return {
            "cache": self.data,
            "dependencies": {k: set(v) for k, v in self.g.dependencies.items()},
            "dependents": {k: set(v) for k, v in self.g.dependents.items()},
            "waiting": {k: v for k, v in waiting.items() if v},
            "waiting_data": {k: set(v) for k, v in self.g.dependents.items() if v},
            "ready": [],
            "running": set(),
            "finished": set(),
            "released": set(),
        }

    def _group(self, key: Hashable) -> Hashable:
        node = self.g.nodes[key]
        if isinstance(node, Task) and node.func is not _execute_subgraph:
            func = node.func
            if isinstance(func, types.FunctionType):
                # one group per piece of code: a lambda made anew for every
                # task (in a loop or a comprehension) is the same work
                base: Hashable = ("code", func.__code__)
            else:
                try:
                    hash(func)
                    base = ("func", func)
                except TypeError:
                    base = ("func", id(func))
        else:
            base = ("layer", key_split(key))
        ann = self.g.annotations.get(key)
        if ann:
            return (base, repr(sorted(ann.items())))
        return base

    # -------------------------------------------------------------- main loop

    def execute(self) -> dict[Hashable, Any]:
        """Run the graph; return the values of the output keys."""
        groups: dict[Hashable, Hashable] = {}
        for key in self.g.nodes:
            if key not in self.local:
                grp = self._group(key)
                groups[key] = grp
                self.group_left[grp] = self.group_left.get(grp, 0) + 1
        self.groups = groups
        start = [k for k, n in self.missing.items() if n == 0 and self.status[k] == WAITING]
        start.sort(key=self.g.priority.__getitem__)
        # root tasks whose consumers need nothing else go out together
        self.families = (
            _packing.root_families(
                start, groups, self.g.dependents, self.g.dependencies, self.info.workers
            )
            if self.info.out_of_process and self.settings.pack_size is None
            else {}
        )
        self.followers = {k for fam in self.families.values() for k in fam[1:]}
        self._make_ready(start)
        total = len(self.g.nodes)
        while self.done < total:
            wait = self._dispatch()
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
        outputs = {k: self.data[k] for k in self.g.outputs}
        refs = [k for k in outputs if k in self.is_ref]
        if refs:
            values = self.transport.fetch([outputs[k] for k in refs])
            self.stats.fetched += len(values)
            outputs.update(zip(refs, values, strict=False))
        return outputs

    def close(self) -> None:
        """Drop every value and reference this run still holds (success or not)."""
        held = list(
            {id(h): h for h in (self.data[k] for k in self.is_ref if k in self.data)}.values()
        )
        for sent in self.inflight.values():
            held.extend(sent.refs)
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

    def _make_ready(self, keys: list[Hashable]) -> None:
        """Run ready bookkeeping nodes now (and what they release); queue the rest."""
        stack = list(reversed(keys))
        prio = self.g.priority
        now = time.time()
        ready_at = self.ready_at
        while stack:
            key = stack.pop()
            if key in self.local:
                finished = self._run_local(key)
                for nxt in reversed(finished):
                    stack.append(nxt)
                continue
            self.status[key] = READY
            ready_at[key] = now
            grp = self.groups[key]
            if key in self.followers:  # goes out with its family's first root
                self.group_left[grp] -= 1
                if self.track:
                    self.state["ready"].append(key)
                continue
            heap = self.heaps.get(grp)
            if heap is None:
                heap = self.heaps[grp] = []
                self.group_since[grp] = time.monotonic()
            heapq.heappush(heap, ((-self.generation, prio[key]), key))
            self.group_left[grp] -= 1
            self.n_ready += 1
            if self.track:
                self.state["ready"].append(key)

    def _run_local(self, key: Hashable) -> list[Hashable]:
        node = self.g.nodes[key]
        for f in self.pretask:
            f(key, self.g.nodes, self.state)
        if isinstance(node, Alias):
            value = self.data[node.target]
            if node.target in self.is_ref:
                self.is_ref.add(key)
                # one handle, two keys: released when both are
                self.sharers[id(value)] = self.sharers.get(id(value), 1) + 1
        else:
            inputs = {d: self._value(d) for d in node.dependencies}
            try:
                value = node(inputs)
            except Exception as exc:
                self._raise_task_error(TaskFailure(key, exc, traceback.format_exc()))
        self.data[key] = value
        self.stats.local_tasks += 1
        for f in self.posttask:
            f(key, self._value(key), self.g.nodes, self.state, "driver")
        return self._finish([key], set())

    def _value(self, key: Hashable) -> Any:
        value = self.data[key]
        if key in self.is_ref:
            self.stats.fetched += 1
            return self.transport.fetch([value])[0]
        return value

    def _finish(self, keys: list[Hashable], inside: set[Hashable]) -> list[Hashable]:
        """Mark ``keys`` done; release inputs no longer needed; return newly ready keys."""
        ready: list[Hashable] = []
        deps_of = self.g.dependencies
        dependents = self.g.dependents
        missing = self.missing
        refcount = self.refcount
        track = self.track
        for key in keys:
            self.status[key] = DONE
            self.done += 1
            if track:
                self.state["finished"].add(key)
                self.state["running"].discard(key)
                self.state["waiting"].pop(key, None)
            for dep in dependents[key]:
                if dep in inside:
                    continue
                missing[dep] -= 1
                if missing[dep] == 0:
                    ready.append(dep)
            for dep in deps_of[key]:
                refcount[dep] -= 1
                if refcount[dep] == 0:
                    self._release(dep)
            if refcount[key] == 0:
                self._release(key)
        if len(ready) > 1:
            ready.sort(key=self.g.priority.__getitem__)
        return ready

    def _release(self, key: Hashable) -> None:
        value = self.data.pop(key, None)
        if key in self.is_ref:
            self.is_ref.discard(key)
            n = self.sharers.pop(id(value), 1)
            if n > 1:
                self.sharers[id(value)] = n - 1
            elif value is not None:
                self.transport.release([value])
        if self.track:
            self.state["released"].add(key)

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
            best: tuple[Rank, Hashable] | None = None
            sendable: list[Hashable] = []
            for grp, heap in self.heaps.items():
                if not heap:
                    continue
                if s.timeout > 0 and self._held(grp, len(heap), now):
                    until = self.group_since[grp] + s.timeout
                    hold_until = until if hold_until is None else min(hold_until, until)
                    continue
                sendable.append(grp)
                if best is None or heap[0][0] < best[0]:
                    best = (heap[0][0], grp)
            if best is None:
                break
            others = [g for g in sendable if g != best[1]]
            if merge:
                self._send_batch(best[1], others, None)
            else:
                rival = min((self.heaps[g][0][0] for g in others), default=None)
                self._send_batch(best[1], [], rival)
        if hold_until is None:
            return None
        return max(0.0, hold_until - time.monotonic())

    def _held(self, grp: Hashable, n: int, now: float) -> bool:
        """Whether a partial batch should wait for more tasks of its group."""
        s = self.settings
        if s.batch_size is not None and n >= s.batch_size:
            return False
        if not self.group_left.get(grp) or not self.inflight:
            return False
        return now < self.group_since[grp] + s.timeout

    def _send_batch(self, grp: Hashable, merge: list[Hashable], rival: Rank | None) -> None:
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
        slots = s.max_inflight - len(self.inflight)
        ntasks = len(heap)
        if s.batch_size is not None:
            ntasks = min(ntasks, s.batch_size)
        seconds, counted = self.measured
        typical = seconds / counted if counted else None
        p = s.pack_size or _packing.pack_size(
            ntasks,
            self.info.workers,
            self.info.call_overhead,
            self.task_time.get(grp),
            typical,
        )
        ntasks = min(ntasks, p * slots)
        if p == 1 and rival is not None:
            members = [heapq.heappop(heap)[1]]
            while len(members) < ntasks and heap[0][0] < rival:
                members.append(heapq.heappop(heap)[1])
            ntasks = len(members)
        else:
            members = [heapq.heappop(heap)[1] for _ in range(ntasks)]
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
        self._submit(grp, items)

    def _can_join(self, key: Hashable) -> bool:
        return self.status[key] == WAITING and key not in self.local

    def _available(self, key: Hashable) -> bool:
        return self.status[key] == DONE

    def _build_item(
        self, members: list[Hashable], fan_out: bool = False
    ) -> tuple[WorkItem, list[Hashable]]:
        g = self.g
        extra = _packing.close_over_dependents(
            members,
            g.dependents,
            g.dependencies,
            self._can_join,
            self._available,
            1_000_000,
            fan_out,
        )
        keys = members + extra
        if extra:
            keys.sort(key=g.priority.__getitem__)
        for key in keys:
            self.status[key] = PLACED
        item = _packing.make_item(keys, g, self.data, self.is_ref, self.export_all)
        return item, keys

    # ------------------------------------------------------------------- submit

    def _submit(self, grp: Hashable, items: list[tuple[WorkItem, list[Hashable]]]) -> None:
        st = self.stats
        st.map_calls += 1
        st.work_items += len(items)
        st.invocations += len(items)
        for _, keys in items:
            st.remote_tasks += len(keys)
            if self.pretask or self.track:
                for key in keys:
                    if self.track:
                        self.state["running"].add(key)
                    for f in self.pretask:
                        f(key, self.g.nodes, self.state)
        if self.track:
            self.state["ready"] = [k for h in self.heaps.values() for _, k in h]
        inputs = [[self.data[k] for k in item.ref_keys] for item, _ in items]
        options = self.g.annotations.get(items[0][1][0], {})
        begin, sent_before, spans = time.time(), st.bytes_sent, len(st.driver_spans)
        sends = self.transport.senders(items, inputs, options)
        serialized = st.driver_spans[-1][2] if len(st.driver_spans) > spans else begin
        payload = (st.bytes_sent - sent_before) // len(items)
        ready_at = self.ready_at
        for (item, keys), send in zip(items, sends, strict=False):
            fut, refs = send()
            record = ItemRecord(
                item=len(st.items),
                group=key_split(keys[0]),
                tasks=len(keys),
                attempt=1,
                ready=min((ready_at.pop(k, begin) for k in keys), default=begin),
                serialized=serialized,
                submitted=serialized,
                payload_bytes=payload,
            )
            st.items.append(record)
            sent = _Sent(item=item, keys=keys, group=grp, resend=send, record=record, refs=refs)
            self.inflight[fut] = sent
            fut.add_done_callback(self._arrive)
        st.max_inflight = max(st.max_inflight, len(self.inflight))
        st.largest_batch = max(st.largest_batch, sum(len(keys) for _, keys in items))

    # ----------------------------------------------------------------- complete

    def _arrive(self, fut: Future[Any]) -> None:
        """Done callback (an engine's thread): note when, and wake the scheduler."""
        self.arrived[fut] = time.time()
        self.completed.put(fut)

    def _complete(self, fut: Future[Any]) -> None:
        sent = self.inflight.pop(fut, None)
        received = self.arrived.pop(fut, 0.0) or time.time()
        if sent is None:
            return
        self.generation += 1
        record = sent.record
        record.received = received
        try:
            outcome = fut.result()
        except Exception as exc:  # CancelledError included: the engine dropped it
            record.lost = True
            self._engine_failure(sent, exc)
            return
        got_before = self.stats.bytes_received
        result, handles = self.transport.receive(outcome, sent.refs, sent.keys)
        record.decoded = time.time()
        record.result_bytes = self.stats.bytes_received - got_before
        if result.started:
            record.started, record.ran, record.finished = (
                result.started,
                result.ran,
                result.finished,
            )
            record.worker, record.label, record.cold = result.worker, result.label, result.cold
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
                self._resend(sent)
                return
            self._raise_task_error(failure)
        if result.tasks_run:
            self.measured[0] += result.seconds
            self.measured[1] += result.tasks_run
            per_task = result.seconds / result.tasks_run
            old = self.task_time.get(sent.group)
            self.task_time[sent.group] = per_task if old is None else 0.5 * (old + per_task)
        exports = sent.item.exports
        self.data.update(zip(exports, handles, strict=False))
        if self.remote:
            self.is_ref.update(exports)
        if len(self.data) > self.stats.peak_values:
            self.stats.peak_values = len(self.data)
        if self.posttask:
            for key in sent.keys:
                value = self._value(key)
                for f in self.posttask:
                    f(key, value, self.g.nodes, self.state, self.info.name)
        ready = self._finish(sent.keys, set(sent.keys))
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
        sent.record = ItemRecord(
            item=old.item,
            group=old.group,
            tasks=old.tasks,
            attempt=sent.attempts,
            ready=old.received or now,
            serialized=now,
            submitted=now,
            payload_bytes=old.payload_bytes,
        )
        self.stats.items.append(sent.record)
        sent.refs = refs
        self.inflight[fut] = sent
        fut.add_done_callback(self._arrive)

    def _raise_task_error(self, failure: TaskFailure) -> None:
        exc = _failures.noted(failure, self.info.name)
        if failure.traceback:
            raise exc from RemoteTraceback(failure.traceback)
        raise exc
