"""Results stay in the engine's result store; the driver holds handles and reads only outputs."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from daskexec import _store
from daskexec._transport import Items, Sender
from daskexec._transport._submit import batch_senders, encode_batch, receive_outcome
from daskexec._worker import ItemResult, run_stored_item
from daskexec.engine import EngineInfo
from daskexec.stats import ComputeStats


class Stored:
    """Items carry input handles and the store's client; workers write exports to the store.

    A value smaller than :data:`daskexec._store.INLINE_BELOW` travels inside
    its handle (a store round trip costs more than it saves); larger ones stay
    in the store until the scheduler releases them.
    """

    remote = True

    def __init__(
        self,
        executor: concurrent.futures.Executor,
        info: EngineInfo,
        token: str,
        stats: ComputeStats,
    ) -> None:
        assert info.store is not None
        self.executor = executor
        self.info = info
        self.token = token
        self.stats = stats
        self.store = info.store(token)
        self.client = self.store.client
        # a store that maps values into the reader's memory reads a whole block
        # as cheaply as a slice of it (see ``_inlining``)
        self.inline_getters = self.store.mapped
        self.held = 0  # bytes in the store that the driver holds handles to

    def senders(
        self, items: Items, inputs: list[list[Any]], options: Mapping[str, Any]
    ) -> list[Sender]:
        shared, blobs = encode_batch(items, self.info.name, self.stats)
        # small inputs travel inside their handles
        self.stats.bytes_sent += sum(
            h.nbytes for hs in inputs for h in hs if isinstance(h, _store.Inline)
        )
        payloads = [
            (self.token, shared, blob, self.client, handles, _store.INLINE_BELOW)
            for blob, handles in zip(blobs, inputs, strict=False)
        ]
        return batch_senders(self.executor, self.info.name, run_stored_item, payloads)

    def receive(
        self, outcome: Any, refs: list[Any], keys: list[Hashable]
    ) -> tuple[ItemResult, list[Any]]:
        result = receive_outcome(outcome, keys, self.info.name, self.stats)
        handles = result.values or []
        for h in handles:
            if isinstance(h, _store.Stored):
                self.held += h.nbytes
        self.stats.store_peak_bytes = max(self.stats.store_peak_bytes, self.held)
        return result, handles

    def fetch(self, handles: Sequence[Any]) -> list[Any]:
        self.stats.bytes_received += sum(h.nbytes for h in handles if isinstance(h, _store.Stored))
        return [_store.fetch_value(h, self.store) for h in handles]

    def release(self, handles: Sequence[Any]) -> None:
        stored = [h for h in handles if isinstance(h, _store.Stored)]
        if stored:
            self.held -= sum(h.nbytes for h in stored)
            self.store.delete([h.location for h in stored])

    def close(self) -> None:
        self.store.close()
