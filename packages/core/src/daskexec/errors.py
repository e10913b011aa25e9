"""Exceptions the scheduler raises for problems that are not a task's own error."""

from __future__ import annotations

from concurrent.futures import BrokenExecutor

__all__ = [
    "EngineFailure",
    "GraphCycleError",
    "ItemTimeoutError",
    "MissingKeyError",
    "RemoteError",
    "RemoteTraceback",
    "SerializationError",
]


class EngineFailure(BrokenExecutor):
    """The engine lost a work item more often than ``retries`` allows.

    Raised for failures of the executor, not of a task: a worker process
    that died, a cloud function that timed out, a lost node.  The message
    names the tasks of the lost work item; ``__cause__`` is the engine's last
    exception.
    """


class MissingKeyError(KeyError, ValueError):
    """A requested key, or a key a task depends on, is not in the graph.

    A ``KeyError``, and a ``ValueError`` as Dask's own schedulers raise for a
    malformed graph.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class GraphCycleError(ValueError):
    """The graph has a dependency cycle, so no order can run it."""


class RemoteTraceback(Exception):
    """The traceback of a task's exception, as formatted where the task ran.

    Attached as the ``__cause__`` of a task's re-raised exception, so that the
    report shows where the task failed on the worker.
    """

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


class RemoteError(Exception):
    """Stands in for a task's exception that could not be brought back as itself.

    Raised where the original exception (or an instance rebuilt without its
    ``__init__``) cannot be pickled or unpickled.  ``type_name`` is the
    original's qualified type name, ``message`` its text and ``traceback``
    the traceback formatted where it was raised.
    """

    def __init__(self, type_name: str, message: str, traceback: str = "") -> None:
        super().__init__(type_name, message, traceback)
        self.type_name = type_name
        self.message = message
        self.traceback = traceback

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}"


class SerializationError(TypeError):
    """A task, its input or its result cannot be serialized or deserialized.

    A deterministic failure, not a lost worker: it is reported once, naming
    the task, and never retried.  ``__cause__`` is the pickler's own error.
    """


class ItemTimeoutError(EngineFailure):
    """A work item ran past its ``item_timeout`` more often than ``retries`` allows.

    The message names the item's tasks and the deadline; an item past its
    deadline is treated as lost (cancelled where the engine can, its late
    result ignored) and sent again within the retry bound first.
    """
