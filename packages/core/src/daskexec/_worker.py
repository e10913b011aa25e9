"""What runs on a worker: one work item, a list of tasks executed in order.

A work item carries its tasks in a valid execution order (Dask's priority
order), the values of the inputs that come from outside the item, and which
results to send back.  A value needed only inside the item is dropped as
soon as its last consumer inside the item has run, so a chain or a small
reduction packed into one item keeps its intermediate data on the worker and
its memory bounded.

A task's exception is caught and returned as a :class:`TaskFailure` (the
failing key, the exception, the formatted traceback): anything the executor
itself raises is therefore an engine failure (a lost worker, a timeout),
which the scheduler may retry, never a task's own error.

A task is a task-spec node, or for a legacy task ``(func, *args)`` whose
arguments are keys or plain values a *call*: the plain tuple ``(key, func,
args, refs)``, run as ``func(*args)`` with the arguments at the positions
``refs`` replaced by the values of the keys they are.  No Dask ``Task`` is
built for it, in the driver or here.

Items for out-of-process engines travel as two byte strings: the functions
the whole batch shares, pickled once, and the item itself
(:func:`encode_item`), in three pickles: its plan (each call with its
function's index in the table, or the callable itself if it is not a function,
builtin or class; each node's place; the exports, what to free
when, the reference inputs, what to checkpoint), its inputs, and its nodes
and checkpoint store.  A plan of calls whose keys and arguments are atoms,
and inputs of plain values, pickle without any Python code per object; the
rest as before, with persistent ids for the shared functions
(see ``_serialize``).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dask._task_spec import GraphNode
from dask.sizeof import sizeof
from dask.utils import shorten_traceback

from daskexec import _checkpoint, _serialize
from daskexec._store import Handle, StoreClient, dump_value, load_value
from daskexec.errors import SerializationError

if TYPE_CHECKING:
    from daskexec._graph import Call


@dataclass
class WorkItem:
    """Tasks to run in one invocation.

    A task is a node or a call (see the module's docstring).
    ``free_after[i]`` lists the keys to drop after task ``i`` has run;
    ``exports`` the keys whose values go back (or stay remote as references).
    ``ref_keys`` names the inputs that arrive as positional values resolved by
    a reference engine, in order.
    """

    tasks: list[GraphNode | Call]
    inputs: dict[Any, Any]
    exports: list[Any]
    free_after: list[tuple[Any, ...]] = field(default_factory=list)
    ref_keys: list[Any] = field(default_factory=list)
    #: where to write results that outlive the compute (``_checkpoint``), and
    #: which exports go there, as each completes: key -> stored name
    checkpoint: Any = None
    save: dict[Any, str] = field(default_factory=dict)


@dataclass
class TaskFailure:
    """A work item stopped: which task, why, and the traceback text where it happened.

    ``stage`` says what failed: ``"run"`` (the task raised), ``"load"`` (the
    worker could not deserialize the item: ``key`` is None, the driver knows
    the item's tasks) or ``"dump"`` (a result cannot be serialized to leave
    the worker).  Only ``"run"`` failures are the task's own error; the
    others are deterministic problems of serialization, never retried.
    """

    key: Any
    exception: BaseException
    traceback: str
    stage: str = "run"


@dataclass
class ItemResult:
    """The outcome of a work item: exported values, or the failure that stopped it."""

    values: list[Any] | None
    failure: TaskFailure | None
    seconds: float
    tasks_run: int
    #: after a failure: the exports of the tasks that ran before it (for callbacks)
    partial: dict[Any, Any] | None = None
    #: for outputs kept by a reference engine: their sizes (``dask.sizeof``)
    sizes: list[int] | None = None
    #: the worker's wall clock (``time.time()``) when its entry point began
    #: (before the item was deserialized), when its first task began and when
    #: its last task ended
    started: float = 0.0
    ran: float = 0.0
    finished: float = 0.0
    #: where the item ran: ``host/pid/thread``, and the engine's own name for
    #: it (``DASKEXEC_WORKER_LABEL`` in the worker's environment: a Lithops
    #: activation id, a Ray node id) where the adapter sets one
    worker: str = ""
    label: str = ""
    #: whether this was the first item its worker process ran (a cold start)
    cold: bool = False


class Cancelled(Exception):
    """The compute this item belongs to was abandoned; the item stopped early."""


_inside = threading.local()

#: The clock that times a work item's run (``ItemResult.seconds``, from which
#: the scheduler packs).  A simulated platform sets its own, whose seconds
#: are those its calls cost in simulated time.
item_clock: Callable[[], float] = time.perf_counter


def running_in(executor: object) -> bool:
    """Whether the calling thread is running a work item that ``executor`` ran in-process."""
    return getattr(_inside, "executor", None) is executor


def run_item(item: WorkItem, cancel: threading.Event | None = None) -> ItemResult:
    """Run every task of ``item`` in order and return its exports or its failure.

    A task's ``BaseException`` (``KeyboardInterrupt``, ``SystemExit``) is caught
    and returned too, as Dask's local scheduler does, so that it is re-raised in
    the driver instead of killing a worker.
    """
    ran = time.time()
    clock = item_clock
    start = clock()
    # a copy: a backup or a retry of an in-process item may run beside the original
    values = dict(item.inputs)
    frees = item.free_after
    save = item.save
    n = 0
    for i, task in enumerate(item.tasks):
        key = task[0] if isinstance(task, tuple) else task.key
        if cancel is not None and cancel.is_set():
            return ItemResult(None, TaskFailure(key, Cancelled(), ""), 0.0, n)
        try:
            if isinstance(task, tuple):
                _, func, args, refs = task
                if refs:
                    given = list(args)
                    for j in refs:
                        given[j] = values[given[j]]
                    values[key] = func(*given)
                else:
                    values[key] = func(*args)
            else:
                deps = task.dependencies
                values[key] = task({k: values[k] for k in deps} if deps else {})
        except BaseException as exc:
            tb = _format(exc)
            partial = {k: values[k] for k in item.exports if k in values}
            seconds = clock() - start
            failed = ItemResult(None, TaskFailure(key, exc, tb), seconds, n, partial)
            failed.ran, failed.finished = ran, time.time()
            return failed
        n += 1
        if save and key in save:
            try:
                _checkpoint.save(item.checkpoint, key, save[key], values[key])
            except Exception as exc:
                failed = ItemResult(None, TaskFailure(key, exc, _format(exc), "dump"), 0, n)
                failed.ran, failed.finished = ran, time.time()
                return failed
        if frees:
            for k in frees[i]:
                del values[k]
    out = [values[k] for k in item.exports]
    result = ItemResult(out, None, clock() - start, n)
    result.ran, result.finished = ran, time.time()
    return result


def where() -> str:
    """This worker: ``host/pid/thread``."""
    return f"{_HOST}/{os.getpid()}/{threading.current_thread().name}"


_HOST = socket.gethostname()


#: Set by an adapter in its workers: the engine's name for the worker running an item.
LABEL_VARIABLE = "DASKEXEC_WORKER_LABEL"
_ran_before = False


def stamped(result: ItemResult, started: float) -> ItemResult:
    """``result`` with the time its entry point began, where it ran, and if it was cold."""
    global _ran_before
    result.started = started
    result.worker = where()
    result.label = os.environ.get(LABEL_VARIABLE, "")
    result.cold, _ran_before = not _ran_before, True
    if not result.finished:  # it never ran (it could not be loaded)
        result.ran = result.finished = time.time()
    return result


def _format(exc: BaseException) -> str:
    """The task's traceback without the frames of Dask's and our own machinery."""
    tb = exc.__traceback__
    if tb is not None:
        tb = shorten_traceback.shorten(tb)
    return "".join(traceback.format_exception(type(exc), exc, tb))


def run_local_item(payload: tuple[WorkItem, threading.Event, object]) -> ItemResult:
    """Entry point for in-process executors: no serialization at all."""
    started = time.time()
    item, cancel, executor = payload
    outer = getattr(_inside, "executor", None)
    _inside.executor = executor
    try:
        return stamped(run_item(item, cancel), started)
    finally:
        _inside.executor = outer


def run_encoded_item(payload: tuple[str, bytes, bytes]) -> bytes:
    """Entry point for out-of-process executors: decode, run, pickle the outcome.

    The outcome leaves as bytes pickled here with cloudpickle, so that the
    executor's own transport (plain pickle on the stdlib pools) never meets a
    value it cannot carry, and a result that cannot be serialized is reported
    as that, naming its task.
    """
    started = time.time()
    item = _load(payload)
    if isinstance(item, ItemResult):
        return _serialize.dumps(stamped(item, started))
    return _dump_result(stamped(run_item(item), started), item)


def run_reference_item(
    payload: tuple[str, bytes, bytes], *inputs: Any
) -> tuple[bytes, Sequence[Any]]:
    """Entry point for reference engines: ref inputs arrive resolved, outputs stay remote."""
    started = time.time()
    item = _load(payload)
    if isinstance(item, ItemResult):
        return _serialize.dumps(stamped(item, started)), ()
    item.inputs.update(zip(item.ref_keys, inputs, strict=False))
    result = stamped(run_item(item), started)
    values = result.values
    result.values = None
    if values is None:
        values = [None] * len(item.exports)
    else:
        result.sizes = [_sizeof(v) for v in values]
    return _dump_result(result, item), values


def run_stored_item(
    payload: tuple[str, bytes, bytes, StoreClient | None, list[Handle], int],
) -> bytes:
    """Entry point for engines with a result store: inputs read from it, exports written to it.

    The outcome's ``values`` are the exports' handles: small values inline,
    the others written to the store by this worker.
    """
    started = time.time()
    compute, shared, blob, client, handles, inline_below = payload
    item = _load((compute, shared, blob))
    if isinstance(item, ItemResult):
        return _serialize.dumps(stamped(item, started))
    try:
        item.inputs.update(
            zip(item.ref_keys, (load_value(h, client) for h in handles), strict=False)
        )
    except BaseException as exc:
        tb = traceback.format_exc()
        failure = TaskFailure(None, _serialize.portable_exception(exc, tb), tb, "load")
        return _serialize.dumps(stamped(ItemResult(None, failure, 0.0, 0), started))
    result = stamped(run_item(item), started)
    if result.failure is not None or result.values is None:
        return _dump_result(result, item)
    out: list[Handle] = []
    for key, value in zip(item.exports, result.values, strict=False):
        try:
            out.append(dump_value(value, client, inline_below))
        except Exception as exc:
            failure = TaskFailure(key, _unserializable(key, value, exc), traceback.format_exc())
            failure.stage = "dump"
            return _serialize.dumps(_replaced(result, failure))
    result.values = out
    return _serialize.dumps(result)


def _sizeof(value: Any) -> int:
    try:
        return int(sizeof(value))
    except Exception:
        return 0


def encode_item(encoder: _serialize.BatchEncoder, item: WorkItem) -> bytes:
    """``item`` pickled for :func:`_load`, its functions in ``encoder``'s table."""
    index = encoder.index
    tabled = _serialize.TABLED
    plan: list[tuple[Any, Any, tuple[Any, ...], tuple[int, ...]] | None] = []
    nodes: list[GraphNode] = []
    known: dict[int, int] = {}  # id -> index, for this item (the table keeps func alive)
    for task in item.tasks:
        if isinstance(task, tuple):
            key, func, args, refs = task
            if type(func) in tabled:
                f = known.get(id(func))
                if f is None:
                    f = known[id(func)] = index(func, key)
                plan.append((key, f, args, refs))
            else:
                plan.append(task)
        else:
            plan.append(None)
            nodes.append(task)
    head = (plan, item.exports, item.free_after, item.ref_keys, item.save)
    return encoder.encode_parts((head, item.inputs, (nodes, item.checkpoint)))


def _decode(compute: str, shared: bytes, blob: bytes) -> WorkItem:
    parts, table = _serialize.loads_parts(compute, shared, blob, 3)
    (plan, exports, free_after, ref_keys, save), inputs, (nodes, checkpoint) = parts
    given = iter(nodes)
    tasks: list[GraphNode | Call] = [
        next(given)
        if step is None
        else (step[0], table[step[1]] if type(step[1]) is int else step[1], step[2], step[3])
        for step in plan
    ]
    return WorkItem(tasks, inputs, exports, free_after, ref_keys, checkpoint, save)


def decode_item(payload: tuple[str, bytes, bytes]) -> WorkItem:
    """The work item of an encoded payload ``(compute, shared table, item)``."""
    return _decode(*payload)


def _load(payload: tuple[str, bytes, bytes]) -> WorkItem | ItemResult:
    compute, shared, blob = payload
    try:
        item = _decode(compute, shared, blob)
    except BaseException as exc:
        tb = traceback.format_exc()
        failure = TaskFailure(None, _serialize.portable_exception(exc, tb), tb, "load")
        return ItemResult(None, failure, 0.0, 0)
    return item


def _dump_result(result: ItemResult, item: WorkItem) -> bytes:
    failure = result.failure
    if failure is not None:
        failure.exception = _serialize.portable_exception(failure.exception, failure.traceback)
        try:
            return _serialize.dumps(result)
        except Exception:
            result.partial = None  # what ran before the failure cannot travel: drop it
            return _serialize.dumps(result)
    try:
        return _serialize.dumps(result)
    except Exception as exc:
        key, value = _unpicklable(item.exports, result.values or [])
        error = _unserializable(key, value, exc)
        tb = traceback.format_exc()
        return _serialize.dumps(_replaced(result, TaskFailure(key, error, tb, "dump")))


def _replaced(result: ItemResult, failure: TaskFailure) -> ItemResult:
    """``result`` failed after all: its times and worker, with ``failure`` instead of values."""
    failed = ItemResult(None, failure, result.seconds, result.tasks_run)
    failed.started, failed.ran = result.started, result.ran
    failed.finished, failed.worker = result.finished, result.worker
    failed.label, failed.cold = result.label, result.cold
    return failed


def _unserializable(key: Any, value: Any, exc: BaseException) -> SerializationError:
    kind = type(value)
    return SerializationError(
        f"the result of task {key!r} (a {kind.__module__}.{kind.__qualname__}) cannot be "
        f"serialized to leave the worker ({type(exc).__name__}: {exc}); return a "
        "picklable value, or use an in-process executor such as ThreadPoolExecutor"
    )


def _unpicklable(keys: list[Any], values: list[Any]) -> tuple[Any, Any]:
    """The first export whose value cannot be pickled (the first one if each can alone)."""
    for key, value in zip(keys, values, strict=False):
        try:
            _serialize.dumps(value)
        except Exception:
            return key, value
    return (keys[0], values[0]) if keys else (None, None)
