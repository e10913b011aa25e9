"""Work items run in the driver's process (a thread pool): nothing is serialized."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Hashable, Mapping
from typing import Any

from daskexec._transport import Items, Sender
from daskexec._transport._submit import HandlesAreValues, as_result, batch_senders
from daskexec._worker import ItemResult, run_local_item
from daskexec.engine import EngineInfo


class InProcess(HandlesAreValues):
    """Items go to the executor as they are; a handle is the value itself."""

    def __init__(
        self, executor: concurrent.futures.Executor, info: EngineInfo, cancel: threading.Event
    ) -> None:
        self.executor = executor
        self.info = info
        self.cancel = cancel

    def senders(
        self, items: Items, inputs: list[list[Any]], options: Mapping[str, Any]
    ) -> list[Sender]:
        # the item and the compute's cancel flag; the executor marks its
        # workers, so that a compute started inside one of them runs inline
        payloads: list[Any] = [(item, self.cancel, self.executor) for item, _ in items]
        return batch_senders(self.executor, self.info.name, run_local_item, payloads)

    def receive(
        self, outcome: Any, refs: list[Any], keys: list[Hashable]
    ) -> tuple[ItemResult, list[Any]]:
        result = as_result(outcome)
        return result, result.values or []
