"""The errors a compute raises for a failed work item: what the user reads."""

from __future__ import annotations

import contextlib
from collections.abc import Hashable

from daskexec._transport._submit import shown
from daskexec._worker import TaskFailure
from daskexec.errors import EngineFailure, SerializationError

_NOTE = "daskexec: task "


def noted(failure: TaskFailure, engine: str) -> BaseException:
    """The task's exception, with one note naming the task and ``dask_key`` set.

    An exception object raised again in a later compute (a module-level
    instance) keeps one note of ours, not one per compute.
    """
    exc = failure.exception
    note = f"{_NOTE}{failure.key!r} failed on the {engine} engine"
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes[:] = [n for n in notes if not (isinstance(n, str) and n.startswith(_NOTE))]
        notes.append(note)
    else:
        with contextlib.suppress(Exception):
            setattr(exc, "__notes__", [note])  # noqa: B010
    with contextlib.suppress(Exception):
        exc.dask_key = failure.key  # type: ignore[attr-defined]
    return exc


def unloadable(failure: TaskFailure, keys: list[Hashable], engine: str) -> SerializationError:
    """A work item the worker could not deserialize (a module missing there, ...)."""
    error = SerializationError(
        f"daskexec: task {shown(keys)} could not be loaded on a worker of the {engine} "
        f"engine ({type(failure.exception).__name__}: {failure.exception}); the workers "
        "must be able to import every module the task uses: install it there, or ship it "
        "by value with cloudpickle.register_pickle_by_value(module)"
    )
    error.__cause__ = failure.exception
    return error


def lost(keys: list[Hashable], attempts: int, retries: int, engine: str) -> EngineFailure:
    """The engine lost a work item more often than the retries allow."""
    return EngineFailure(
        f"daskexec: the {engine} engine lost the work item holding task {shown(keys)} "
        f"{attempts} times; gave up after {retries} retries. A worker may have crashed "
        "(out of memory, os._exit, a killed node) or timed out; raise retries= or fix "
        "the cause (the engine's error is the __cause__)"
    )
