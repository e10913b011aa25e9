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
    outputs; only the item's status comes back at once.
    """

    remote = True

    def __init__(self, info: EngineInfo, token: str, stats: ComputeStats) -> None:
        assert info.references is not None
        self.refs = info.references
        self.info = info
        self.token = token
        self.stats = stats

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
        return receive_outcome(outcome, keys, self.info.name, self.stats), refs

    def fetch(self, handles: Sequence[Any]) -> list[Any]:
        # the engine hands out zero-copy, read-only views of its store
        return [_store.writable(v) for v in self.refs.fetch(handles)]

    def release(self, handles: Sequence[Any]) -> None:
        self.refs.release(handles)

    def close(self) -> None:
        pass
