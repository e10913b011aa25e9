"""Results stay in an engine that keeps them itself (Ray's object store): handles are its refs."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from daskexec import _store
from daskexec._transport import Items, Sender
from daskexec._transport._submit import encode_batch, receive_outcome
from daskexec._worker import ItemResult, run_reference_item
from daskexec.engine import EngineInfo
from daskexec.stats import ComputeStats


class Referenced:
    """Items run through the engine's :class:`~daskexec.engine.ReferenceEngine`.

    The engine resolves input references where the item runs and keeps its
    outputs; only the item's status comes back at once, with the outputs'
    sizes (``dask.sizeof``), which count the bytes held in the engine's store
    and those fetched into the driver.
    """

    remote = True
    inline_getters = False

    def __init__(self, info: EngineInfo, token: str, stats: ComputeStats) -> None:
        assert info.references is not None
        self.refs = info.references
        self.info = info
        self.token = token
        self.stats = stats
        self.sizes: dict[int, int] = {}  # id(handle) -> its value's size
        self.held = 0

    def senders(
        self, items: Items, inputs: list[list[Any]], options: Mapping[str, Any]
    ) -> list[Sender]:
        shared, blobs = encode_batch(items, self.info.name, self.stats)
        refs = self.refs

        def sender(blob: bytes, handles: list[Any], n: int) -> Sender:
            return lambda: refs.submit_item(
                run_reference_item, (self.token, shared, blob), handles, n, options
            )

        return [
            sender(blob, handles, len(item.exports))
            for (item, _), blob, handles in zip(items, blobs, inputs, strict=False)
        ]

    def receive(
        self, outcome: Any, refs: list[Any], keys: list[Hashable]
    ) -> tuple[ItemResult, list[Any]]:
        result = receive_outcome(outcome, keys, self.info.name, self.stats)
        for ref, size in zip(refs, result.sizes or (), strict=False):
            self.sizes[id(ref)] = size
            self.held += size
        self.stats.store_peak_bytes = max(self.stats.store_peak_bytes, self.held)
        return result, refs

    def fetch(self, handles: Sequence[Any]) -> list[Any]:
        self.stats.bytes_received += sum(self.sizes.get(id(h), 0) for h in handles)
        # the engine hands out zero-copy, read-only views of its store
        return [_store.writable(v) for v in self.refs.fetch(handles)]

    def release(self, handles: Sequence[Any]) -> None:
        for h in handles:
            self.held -= self.sizes.pop(id(h), 0)
        self.refs.release(handles)

    def close(self) -> None:
        pass
