"""Items and results pickled through the driver: for executors with no result store."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from daskexec import _serialize
from daskexec._transport import Items, Sender
from daskexec._transport._submit import as_result, batch_senders, decode, encode
from daskexec._worker import ItemResult, run_encoded_item
from daskexec.engine import EngineInfo
from daskexec.stats import ComputeStats


class Pickled:
    """A handle is the value: every result comes back to the driver and goes out again."""

    remote = False

    def __init__(
        self,
        executor: concurrent.futures.Executor,
        info: EngineInfo,
        token: str,
        stats: ComputeStats,
    ) -> None:
        self.executor = executor
        self.info = info
        self.token = token
        self.stats = stats

    def senders(
        self, items: Items, inputs: list[list[Any]], options: Mapping[str, Any]
    ) -> list[Sender]:
        encoder = _serialize.BatchEncoder()
        blobs = [encode(encoder, item, keys, self.info.name) for item, keys in items]
        shared = encoder.shared()
        self.stats.bytes_sent += len(shared) * len(blobs) + sum(map(len, blobs))
        payloads = [(self.token, shared, blob) for blob in blobs]
        return batch_senders(self.executor, self.info.name, run_encoded_item, payloads)

    def receive(
        self, outcome: Any, refs: list[Any], keys: list[Hashable]
    ) -> tuple[ItemResult, list[Any]]:
        self.stats.bytes_received += len(outcome)
        result = as_result(decode(outcome, keys, self.info.name))
        return result, result.values or []

    def fetch(self, handles: Sequence[Any]) -> list[Any]:
        return list(handles)

    def release(self, handles: Sequence[Any]) -> None:
        pass

    def close(self) -> None:
        pass
