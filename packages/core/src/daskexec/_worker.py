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

Items for out-of-process engines travel as two byte strings: the functions
the whole batch shares, pickled once, and the item itself, whose references
to those functions are persistent ids (see ``_serialize``).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dask._task_spec import GraphNode

from daskexec import _serialize


@dataclass
class WorkItem:
    """Tasks to run in one invocation.

    ``free_after[i]`` lists the keys to drop after task ``i`` has run;
    ``exports`` the keys whose values go back (or stay remote as references).
    ``ref_keys`` names the inputs that arrive as positional values resolved by
    a reference engine, in order.
    """

    tasks: list[GraphNode]
    inputs: dict[Any, Any]
    exports: list[Any]
    free_after: list[tuple[Any, ...]] = field(default_factory=list)
    ref_keys: list[Any] = field(default_factory=list)


@dataclass
class TaskFailure:
    """A task raised: its key, its exception and the remote traceback text."""

    key: Any
    exception: BaseException
    traceback: str


@dataclass
class ItemResult:
    """The outcome of a work item: exported values, or the failure that stopped it."""

    values: list[Any] | None
    failure: TaskFailure | None
    seconds: float
    tasks_run: int


class Cancelled(Exception):
    """The compute this item belongs to was abandoned; the item stopped early."""


def run_item(item: WorkItem, cancel: threading.Event | None = None) -> ItemResult:
    """Run every task of ``item`` in order and return its exports or its failure."""
    start = time.perf_counter()
    values = item.inputs
    frees = item.free_after
    n = 0
    for i, node in enumerate(item.tasks):
        if cancel is not None and cancel.is_set():
            return ItemResult(None, TaskFailure(node.key, Cancelled(), ""), 0.0, n)
        deps = node.dependencies
        try:
            values[node.key] = node({k: values[k] for k in deps} if deps else {})
        except Exception as exc:
            tb = traceback.format_exc()
            return ItemResult(None, TaskFailure(node.key, exc, tb), time.perf_counter() - start, n)
        n += 1
        if frees:
            for k in frees[i]:
                del values[k]
    out = [values[k] for k in item.exports]
    return ItemResult(out, None, time.perf_counter() - start, n)


def run_local_item(payload: tuple[WorkItem, threading.Event]) -> ItemResult:
    """Entry point for in-process executors: no serialization at all."""
    item, cancel = payload
    return run_item(item, cancel)


def run_encoded_item(payload: tuple[bytes, bytes]) -> ItemResult:
    """Entry point for out-of-process executors: decode, run, make the result picklable."""
    shared, blob = payload
    item = _serialize.loads_item(shared, blob)
    return _picklable(run_item(item))


def run_reference_item(payload: tuple[bytes, bytes], *inputs: Any) -> tuple[Any, Sequence[Any]]:
    """Entry point for reference engines: ref inputs arrive resolved, outputs stay remote."""
    shared, blob = payload
    item = _serialize.loads_item(shared, blob)
    item.inputs.update(zip(item.ref_keys, inputs, strict=False))
    result = _picklable(run_item(item))
    values = result.values
    result.values = None
    if values is None:
        values = [None] * len(item.exports)
    return result, values


def _picklable(result: ItemResult) -> ItemResult:
    failure = result.failure
    if failure is not None:
        try:
            _serialize.dumps(failure.exception)
        except Exception:
            failure.exception = RemoteError(
                f"{type(failure.exception).__name__}: {failure.exception}"
            )
    return result


class RemoteError(Exception):
    """A task raised an exception that could not be sent back; this carries its text."""
