"""What the transports over a ``concurrent.futures.Executor`` share: batch submission, encoding."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import Any

from daskexec import _serialize
from daskexec._worker import ItemResult, WorkItem, encode_item
from daskexec.engine import SubmitsMany, shut_down_state
from daskexec.errors import SerializationError
from daskexec.stats import ComputeStats


def batch_senders(
    executor: concurrent.futures.Executor, name: str, fn: Callable[[Any], Any], payloads: list[Any]
) -> list[Callable[[], tuple[Future[Any], list[Any]]]]:
    """Submit every payload as one batch now; a sender returns its future, later resubmits."""
    futures = _submit_many(executor, name, fn, payloads)
    senders: list[Callable[[], tuple[Future[Any], list[Any]]]] = []
    for fut, payload in zip(futures, payloads, strict=False):
        first: list[Future[Any] | None] = [fut]
        attempt = [1]

        def send(
            payload: Any = payload,
            first: list[Future[Any] | None] = first,
            attempt: list[int] = attempt,
        ) -> tuple[Future[Any], list[Any]]:
            if first[0] is not None:
                f, first[0] = first[0], None
                return f, []
            attempt[0] += 1
            n = attempt[0]
            return _guarded(executor, name, lambda: [executor.submit(again, fn, payload, n)])[0], []

        senders.append(send)
    return senders


def again(fn: Callable[[Any], Any], payload: Any, attempt: int) -> Any:
    """Run ``fn(payload)`` once more: a retry that is a call of its own.

    An executor may memoize identical calls (distributed's ``ClientExecutor``
    with its default ``pure=True`` gives the same task key, and so the same
    failed result, to the same function and arguments); the attempt number
    makes each retry a different call.
    """
    return fn(payload)


def _submit_many(
    ex: concurrent.futures.Executor, name: str, fn: Callable[[Any], Any], payloads: list[Any]
) -> list[Future[Any]]:
    if isinstance(ex, SubmitsMany):
        return _guarded(ex, name, lambda: list(ex.submit_many(fn, payloads)))
    # Without submit_many, each item is one submit: the scheduler sees every
    # item finish as soon as it does (a map would yield in order).
    return _guarded(ex, name, lambda: [ex.submit(fn, p) for p in payloads])


def _guarded(
    ex: concurrent.futures.Executor, name: str, submit: Callable[[], list[Future[Any]]]
) -> list[Future[Any]]:
    try:
        return submit()
    except RuntimeError as exc:
        state = shut_down_state(ex)
        if state is None:
            # The executor cannot say; by the concurrent.futures contract,
            # submit() raises RuntimeError once the executor was shut down.
            raise RuntimeError(
                f"daskexec: the {name} executor refused new work ({exc}); an executor "
                "raises RuntimeError from submit() when it has been shut down: pass an "
                "executor that is still running"
            ) from exc
        if state:
            raise RuntimeError(
                f"daskexec: the {name} executor has been shut down; "
                "pass an executor that is still running"
            ) from exc
        raise


def encode(
    encoder: _serialize.BatchEncoder, item: WorkItem, keys: list[Hashable], name: str
) -> bytes:
    """Pickle ``item``; an error names the first task that cannot be pickled."""
    try:
        return encode_item(encoder, item)
    except Exception as exc:
        culprit = keys[0]
        for key, task in zip(keys, item.tasks, strict=False):
            try:
                _serialize.dumps(task)
            except Exception:
                culprit = key
                break
        raise _unpicklable(f"task {culprit!r}", name, exc) from exc


def _unpicklable(what: str, name: str, exc: Exception) -> SerializationError:
    return SerializationError(
        f"daskexec: {what} cannot be serialized to run on the "
        f"{name} engine, which runs tasks in other processes "
        f"({type(exc).__name__}: {exc}); make its function and arguments "
        "picklable, or use an in-process executor such as ThreadPoolExecutor"
    )


def _shared(encoder: _serialize.BatchEncoder, keys: list[Hashable], name: str) -> bytes:
    """The pickled function table; an error names a task whose function cannot be pickled.

    The task is known for a call's function; for a function met inside a
    node or a value, the message shows the first item's ``keys``.
    """
    try:
        return encoder.shared()
    except Exception as exc:
        what = f"a function of one of the tasks {shown(keys)}"
        for func, user in zip(encoder.functions(), encoder.users, strict=True):
            try:
                _serialize.dumps(func)
            except Exception:
                if user is not None:
                    what = f"task {user!r}"
                break
        raise _unpicklable(what, name, exc) from exc


def encode_batch(
    items: Sequence[tuple[WorkItem, list[Hashable]]], name: str, stats: ComputeStats
) -> tuple[bytes, list[bytes]]:
    """The batch's shared function table and each item's pickle, counted as bytes sent.

    The table travels with every item of the batch.
    """
    begin = time.time()
    encoder = _serialize.BatchEncoder()
    blobs = [encode(encoder, item, keys, name) for item, keys in items]
    shared = _shared(encoder, items[0][1], name)
    stats.bytes_sent += len(shared) * len(blobs) + sum(map(len, blobs))
    stats.driver_spans.append(("serialization", begin, time.time()))
    return shared, blobs


def receive_outcome(
    outcome: bytes, keys: list[Hashable], name: str, stats: ComputeStats
) -> ItemResult:
    """Unpickle a worker's outcome, counted as bytes received."""
    stats.bytes_received += len(outcome)
    return as_result(decode(outcome, keys, name))


def decode(outcome: bytes, keys: list[Hashable], name: str) -> Any:
    """Unpickle what a worker sent back; an error names the item's tasks."""
    try:
        return _serialize.loads(outcome)
    except Exception as exc:
        raise SerializationError(
            f"daskexec: the outcome of task {shown(keys)} came back from the "
            f"{name} engine but cannot be deserialized in the driver "
            f"({type(exc).__name__}: {exc}); the driver must be able to import every "
            "class a task returns or raises"
        ) from exc


def shown(keys: list[Hashable]) -> str:
    """Up to five keys for a message."""
    return ", ".join(map(repr, keys[:5])) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def as_result(value: Any) -> ItemResult:
    assert isinstance(value, ItemResult), type(value)
    return value


class HandlesAreValues:
    """For transports whose handles are the values themselves: nothing to fetch or delete."""

    remote = False
    inline_getters = False

    def fetch(self, handles: Sequence[Any]) -> list[Any]:
        return list(handles)

    def release(self, handles: Sequence[Any]) -> None:
        pass

    def close(self) -> None:
        pass
