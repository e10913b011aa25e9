"""How work items reach the engine, and where their results live: one transport per compute.

The scheduler's state machine (``_run``) knows only *handles*: what a
transport gives it for each exported result, and gives back when a consumer
needs that result, when the driver needs its value, or when nobody does any
more.  Which transport a compute uses follows from the engine's description,
once, when the compute starts:

- :mod:`.inprocess`: the engine runs in the driver's process (threads): a
  handle is the value itself; nothing is serialized.
- :mod:`.pickled`: any other executor: items and results are pickled through
  the driver; a handle is the value.
- :mod:`.stored`: the engine names a result store (shared memory for the
  process pools, object storage for Lithops): results stay in the store
  where the worker wrote them, a handle is a small reference, and only the
  outputs come back to the driver.
- :mod:`.referenced`: the engine keeps results itself (Ray's object store):
  a handle is the engine's own reference.

Each transport resends an item itself on a retry (its sender), counts the
bytes that cross the driver, and deletes what it stored when the compute
ends, whether it returned, failed or was interrupted.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Protocol

from daskexec._worker import ItemResult, WorkItem
from daskexec.engine import EngineInfo
from daskexec.stats import ComputeStats

#: Submits one work item (again, on a retry): its future, and the handles of
#: its exports when the engine knows them at submission (else an empty list).
Sender = Callable[[], tuple["Future[Any]", list[Any]]]
Items = Sequence[tuple[WorkItem, list[Hashable]]]


class Transport(Protocol):
    """What the scheduler's state machine needs from a transport."""

    #: Whether handles are references to values kept outside the driver.
    remote: bool
    #: Whether a consumer reads a whole input as cheaply as a slice of it, so
    #: that slicing tasks should run inside their consumer (``_inlining``).
    inline_getters: bool

    def senders(
        self, items: Items, inputs: list[list[Any]], options: Mapping[str, Any]
    ) -> list[Sender]:
        """Submit ``items``, whose ``ref_keys`` inputs are the handles ``inputs[i]``."""
        ...

    def receive(
        self, outcome: Any, refs: list[Any], keys: list[Hashable]
    ) -> tuple[ItemResult, list[Any]]:
        """The item's result, and one handle per export (from ``outcome`` or ``refs``)."""
        ...

    def fetch(self, handles: Sequence[Any]) -> list[Any]:
        """The values behind ``handles``, in the driver, as ordinary writable objects."""
        ...

    def release(self, handles: Sequence[Any]) -> None:
        """Nobody needs these results any more: delete them."""
        ...

    def close(self) -> None:
        """The compute is over: delete everything it still holds."""
        ...


def choose(
    executor: concurrent.futures.Executor,
    info: EngineInfo,
    token: str,
    cancel: threading.Event,
    stats: ComputeStats,
) -> Transport:
    """The transport for one compute on ``executor``."""
    from daskexec._transport import inprocess, pickled, referenced, stored

    if not info.out_of_process:
        return inprocess.InProcess(executor, info, cancel)
    if info.references is not None:
        return referenced.Referenced(info, token, stats)
    if info.store is not None:
        return stored.Stored(executor, info, token, stats)
    return pickled.Pickled(executor, info, token, stats)
