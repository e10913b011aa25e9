"""Items and results pickled through the driver: for executors with no result store."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Hashable, Mapping
from typing import Any

from daskexec._transport import Items, Sender
from daskexec._transport._submit import (
    HandlesAreValues,
    batch_senders,
    encode_batch,
    receive_outcome,
)
from daskexec._worker import ItemResult, run_encoded_item
from daskexec.engine import EngineInfo
from daskexec.stats import ComputeStats


class Pickled(HandlesAreValues):
    """A handle is the value: every result comes back to the driver and goes out again."""

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
        shared, blobs = encode_batch(items, self.info.name, self.stats)
        payloads = [(self.token, shared, blob) for blob in blobs]
        return batch_senders(self.executor, self.info.name, run_encoded_item, payloads)

    def receive(
        self, outcome: Any, refs: list[Any], keys: list[Hashable]
    ) -> tuple[ItemResult, list[Any]]:
        result = receive_outcome(outcome, keys, self.info.name, self.stats)
        return result, result.values or []
