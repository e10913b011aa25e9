"""Checkpoints: task results kept by Dask key, so that a later compute resumes.

``ExecutorScheduler(..., checkpoint=LOCATION)`` writes the exported result of
every task whose key is deterministic to a :class:`Checkpoint`, as the task
completes.  A later compute of a graph holding some of the same keys loads
those results instead of running their producers, and runs only the rest.

Planning (driver)
-----------------
Before a compute, :func:`plan` lists the checkpoint once and walks the graph
from its outputs towards its roots: a needed task whose key is checkpointed
is *loaded*, and the tasks only it needed are culled (never run, never
loaded); a needed task that is not checkpointed runs and needs its inputs.
A loaded task is replaced by a small task that reads the stored object
(:func:`load`) and goes to the executor like any root task, so that a
loaded value is read where its consumer runs: on a process pool it lands in
the shared-memory store, on Ray in Ray's object store, on Lithops inside the
call, and never crosses the driver unless the driver needs it.

Writing (worker)
----------------
Results are written by the worker that computed them, as each task
completes inside its work item (``_worker.run_item``), so that a long item
killed half-way keeps what it finished.  The
driver could write them too, but with a result store (process pools,
Lithops) or a reference engine (Ray) results stay where they were computed,
and writing from the driver would pull every one of them through it; on the
in-process and pickled transports the worker's write costs the same and
runs in parallel.  Only exported results are written: a value used only
inside its work item (the inside of a packed chain) is recomputed with the
item's exported result, which is loaded instead anyway.

Which keys
----------
A task is checkpointed when it is real work (a task, not an alias, literal
or the driver's bookkeeping), its key is a string or a flat tuple of strings
and integers whose stored name fits in 200 characters, and its key name
holds no uuid4: ``delayed(f)(x)`` without ``pure=True`` names its task
``f-<uuid4>``, a new key each time, whose result must never be reused.
Nor are the keys of the wrapper ``dask.compute`` puts around a collection's
last layer (``finalizecompute`` in the name), whose token changes with
every call: the results that wrapper consumes are checkpointed.

Atomic writes
-------------
A reader never sees part of an object: :class:`DirectoryStorage` writes a
temporary file and renames it into place; a storage without renames writes
the data object first and then an empty *marker* naming it, and lists only
marked objects (see ``daskexec_lithops.LithopsCheckpointStorage``).
Temporary files of writers that died (a killed driver's workers) are
deleted at the next use of the checkpoint and at the end of every compute.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import uuid
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote, unquote

from dask._task_spec import GraphNode, Task

from daskexec import _store
from daskexec._graph import CALL, TASK, Graph

if TYPE_CHECKING:
    from daskexec._packing import Built

__all__ = ["Checkpoint", "CheckpointError", "CheckpointStorage", "DirectoryStorage"]

logger = logging.getLogger("daskexec")

#: Key names that are new at every compute: a uuid4 with hyphens, as
#: ``delayed(..., pure=False)`` puts in its keys, and the wrapper that
#: ``dask.compute`` puts around a collection's last layer
#: (``...-finalize-hlgfinalizecompute-<token>``: its token changes per call).
_UUID4 = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|finalizecompute-"
)
_MAX_NAME = 200
_TMP = ".tmp-"
_MARKER = ".daskexec-checkpoint"  # says a directory is a checkpoint (``DirectoryStorage.check``)
_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()) or "host"


class CheckpointError(OSError):
    """A checkpoint cannot be used: its location cannot be created, written or read."""


@runtime_checkable
class CheckpointStorage(Protocol):
    """Where a checkpoint's objects live: the driver lists and deletes, workers write and read.

    It travels with work items, so it must be picklable and small.  Names
    are made of ``[A-Za-z0-9_.~%,-]`` and never start with a dot.
    """

    def put(self, name: str, chunks: Sequence[memoryview]) -> None:
        """Store the concatenation of ``chunks`` as ``name``, atomically (whole or not at all)."""
        ...

    def entries(self) -> dict[str, str]:
        """Every complete object: name -> the location :meth:`get` reads it from."""
        ...

    def get(self, location: str) -> bytes | bytearray | memoryview:
        """The bytes of the object at ``location``."""
        ...

    def delete(self, names: Sequence[str]) -> None:
        """Delete objects by name (missing ones are ignored)."""
        ...

    def clear(self) -> None:
        """Delete every object, and anything half-written."""
        ...

    def check(self) -> None:
        """Raise :class:`CheckpointError` with the reason if the storage cannot be written."""
        ...


# -- a local directory ---------------------------------------------------------------


@dataclass(frozen=True)
class DirectoryStorage:
    """A checkpoint in a directory of the local file system (or one every worker mounts).

    One file per result, named after its key; a write goes to a temporary
    file (``.tmp-<host>-<pid>-...``) renamed into place.  The file
    ``.daskexec-checkpoint`` marks the directory as a checkpoint: a directory
    holding other files is refused, so that :meth:`clear` never deletes a
    user's own files.
    """

    path: str

    def put(self, name: str, chunks: Sequence[memoryview]) -> None:
        tmp = os.path.join(self.path, f"{_TMP}{_HOST}-{os.getpid()}-{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, os.path.join(self.path, name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def entries(self) -> dict[str, str]:
        with os.scandir(self.path) as it:
            return {e.name: e.path for e in it if not e.name.startswith(".") and e.is_file()}

    def get(self, location: str) -> bytearray:
        return _store.read_file(location)

    def delete(self, names: Sequence[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.path, name))

    def clear(self) -> None:
        with os.scandir(self.path) as it:
            names = [e.name for e in it if e.is_file() and e.name != _MARKER]
        self.delete(names)

    def check(self) -> None:
        """Create the directory, or check that it is a checkpoint; check that it can be written.

        A directory that holds other files is refused: :meth:`clear` deletes
        every file of a checkpoint, and must never meet a user's own.
        """
        marker = os.path.join(self.path, _MARKER)
        try:
            os.makedirs(self.path, exist_ok=True)
            if not os.path.exists(marker):
                with os.scandir(self.path) as it:
                    others = sorted(e.name for e in it if not e.name.startswith(_TMP))
                if others:
                    raise CheckpointError(
                        f"daskexec: {self.path!r} is not a daskexec checkpoint and is not "
                        f"empty (it holds {', '.join(others[:3])}...); pass a new or empty "
                        "directory, or one a checkpoint made"
                    )
            self.put(_MARKER, [memoryview(b"daskexec checkpoint\n")])
        except CheckpointError:
            raise
        except OSError as exc:
            raise CheckpointError(
                f"daskexec: cannot use {self.path!r} as a checkpoint directory "
                f"({type(exc).__name__}: {exc}); pass a directory that can be created and written"
            ) from exc
        self.sweep()

    def sweep(self) -> None:
        """Delete temporary files whose writer (a process of this host) is gone."""
        mine = f"{_TMP}{_HOST}-"
        with contextlib.suppress(OSError), os.scandir(self.path) as it:
            for e in it:
                if not e.name.startswith(mine):
                    continue
                pid = e.name[len(mine) :].split("-", 1)[0]
                if pid.isdigit() and not _store.pid_alive(int(pid)):
                    with contextlib.suppress(OSError):
                        os.unlink(e.path)

    def temporary(self) -> list[str]:
        """Temporary files present now (for tests)."""
        with os.scandir(self.path) as it:
            return sorted(e.name for e in it if e.name.startswith(_TMP))


# -- keys and names --------------------------------------------------------------------


def _part(x: object) -> str | None:
    if isinstance(x, str):
        return "s" + quote(x, safe="")
    if isinstance(x, int) and not isinstance(x, bool):
        return "i" + str(x)
    return None


def nondeterministic(key: Hashable) -> bool:
    """Whether ``key``'s name says it is new at every compute (see ``_UUID4``)."""
    name = key[0] if isinstance(key, tuple) and key else key
    return isinstance(name, str) and _UUID4.search(name) is not None


def name_of(key: Hashable) -> str | None:
    """The stored name of ``key``, or None when it must not be checkpointed."""
    if isinstance(key, tuple):
        if not key or not isinstance(key[0], str) or _UUID4.search(key[0]):
            return None
        parts = [_part(x) for x in key]
        if None in parts:
            return None
        name = "t" + ",".join(parts)  # type: ignore[arg-type]
    elif isinstance(key, str):
        if _UUID4.search(key):
            return None
        name = "s" + quote(key, safe="")
    else:
        return None
    return name if len(name) <= _MAX_NAME else None


def key_of(name: str) -> Hashable | None:
    """The key a stored name stands for (None for a name we did not write)."""

    def part(p: str) -> str | int:
        return unquote(p[1:]) if p[0] == "s" else int(p[1:])

    try:
        if name.startswith("s"):
            return unquote(name[1:])
        if name.startswith("t"):
            return tuple(part(p) for p in name[1:].split(","))
    except (ValueError, IndexError):
        pass
    return None


# -- the public object ----------------------------------------------------------------


class Checkpoint:
    """Task results kept by Dask key across computes: pass as ``checkpoint=`` to the scheduler.

    Parameters
    ----------
    location
        A local directory (``str`` or path-like; created if missing), or a
        :class:`CheckpointStorage` (``daskexec_lithops.LithopsCheckpointStorage``
        for Lithops object storage).  The location is checked at once: one
        that cannot be created or written raises :class:`CheckpointError`.

    Examples
    --------
    >>> ckpt = daskexec.Checkpoint("run-1")                       # doctest: +SKIP
    >>> x.compute(scheduler=daskexec.ExecutorScheduler("processes", checkpoint=ckpt))
    ...                                                            # doctest: +SKIP
    >>> len(ckpt), ckpt.keys()[:3]                                 # doctest: +SKIP
    >>> ckpt.clear()                                               # doctest: +SKIP
    """

    storage: CheckpointStorage

    def __init__(self, location: str | os.PathLike[str] | CheckpointStorage) -> None:
        if isinstance(location, Checkpoint):
            location = location.storage
        if isinstance(location, (str, os.PathLike)):
            path = os.fspath(location)
            if not isinstance(path, str) or not path:
                raise TypeError(
                    f"daskexec: a checkpoint directory must be a str path, got {path!r}"
                )
            storage: CheckpointStorage = DirectoryStorage(os.path.abspath(path))
        elif isinstance(location, CheckpointStorage):
            storage = location
        else:
            raise TypeError(
                "daskexec: checkpoint must be a directory (str or os.PathLike), a "
                f"daskexec.Checkpoint or a CheckpointStorage, got {type(location).__name__}: "
                f"{location!r}"
            )
        storage.check()
        self.storage = storage

    def __repr__(self) -> str:
        return f"Checkpoint({self.storage!r})"

    def keys(self) -> list[Hashable]:
        """The keys whose results are stored, in no particular order."""
        return [k for k in map(key_of, self.storage.entries()) if k is not None]

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        name = name_of(key) if isinstance(key, (str, tuple)) else None
        return name is not None and name in self.storage.entries()

    def discard(self, keys: Sequence[Hashable]) -> None:
        """Forget the results of ``keys`` (their tasks run again next time)."""
        names = [n for n in map(name_of, keys) if n is not None]
        self.storage.delete(names)

    def clear(self) -> None:
        """Forget every result (and delete what a killed writer left half-written)."""
        self.storage.clear()

    def sweep(self) -> None:
        """Delete temporary files of writers that are gone (where the storage has any)."""
        sweep = getattr(self.storage, "sweep", None)
        if callable(sweep):
            sweep()


def as_checkpoint(value: object) -> Checkpoint | None:
    """The ``checkpoint=`` option as a :class:`Checkpoint` (checked), or None."""
    if value is None or isinstance(value, Checkpoint):
        return value
    return Checkpoint(value)  # type: ignore[arg-type]


# -- planning a compute --------------------------------------------------------------


@dataclass
class Plan:
    """A checkpointed compute: the graph it runs, and where its tasks write their results."""

    graph: Graph
    storage: CheckpointStorage
    #: the tasks replaced by loads (their results are stored already)
    loaded: frozenset[Hashable]
    #: tasks that consume, directly or not, a nondeterministic key: never written
    tainted: frozenset[Hashable] = frozenset()

    def mark(self, built: Built, g: Graph) -> None:
        """Have work item ``built`` (of graph ``g``) write its exported results."""
        kinds, keys = g.kinds, g.keys
        save = {}
        for t in built.exports:
            key = keys[t]
            if kinds[t] in (TASK, CALL) and key not in self.loaded and key not in self.tainted:
                name = name_of(key)
                if name is not None:
                    save[key] = name
        if save:
            built.item.checkpoint = self.storage
            built.item.save = save


def plan(graph: Graph, checkpoint: Checkpoint) -> Plan:
    """Load what ``checkpoint`` holds, cull what only loaded tasks needed (see the module doc)."""
    storage = checkpoint.storage
    kinds = graph.kinds
    try:
        entries = storage.entries()
    except OSError as exc:
        raise CheckpointError(
            f"daskexec: cannot list the checkpoint {storage!r} ({type(exc).__name__}: {exc})"
        ) from exc
    tainted = _tainted(graph)
    if not entries:
        return Plan(graph, storage, frozenset(), tainted)
    n = len(graph)
    need = bytearray(n)
    for o in graph.outputs:
        need[o] = 1
    left = [len(d) for d in graph.dependents]  # consumers not yet visited
    stack = [i for i in range(n) if not left[i]]
    loaders: dict[int, GraphNode] = {}
    while stack:
        i = stack.pop()
        location = None
        if need[i] and kinds[i] in (TASK, CALL) and graph.keys[i] not in tainted:
            name = name_of(graph.keys[i])
            location = entries.get(name) if name is not None else None
        if location is not None:
            loaders[i] = Task(graph.keys[i], load, storage, location)
        for d in graph.deps[i]:
            if need[i] and location is None:
                need[d] = 1
            left[d] -= 1
            if not left[d]:
                stack.append(d)
    if not loaders:
        return Plan(graph, storage, frozenset(), tainted)
    gone = {i for i in range(n) if not need[i]}
    culled = graph.restricted(gone, loaders)
    # loads are work of their own kind: batched together, not with the tasks they replace
    group = len(graph.group_names)
    culled.group_names = [*graph.group_names, "daskexec-checkpoint-load"]
    loaded = frozenset(graph.keys[i] for i in loaders)
    for key in loaded:
        j = culled.index[key]
        culled.group[j] = group
        culled.kinds[j] = TASK
    return Plan(culled, storage, loaded, tainted)


def _tainted(graph: Graph) -> frozenset[Hashable]:
    """The keys that are nondeterministic or consume one, directly or not.

    ``sum(delayed(f, pure=False)(i) for i in ...)`` has a key made from its
    inputs' keys, the same whenever that graph is computed again; its inputs
    run again, so it must too.
    """
    keys = graph.keys
    bad = bytearray(map(nondeterministic, keys))
    if not any(bad):
        return frozenset()
    missing = [len(d) for d in graph.deps]
    stack = [i for i, m in enumerate(missing) if not m]
    while stack:
        i = stack.pop()
        for c in graph.dependents[i]:
            if bad[i]:
                bad[c] = 1
            missing[c] -= 1
            if not missing[c]:
                stack.append(c)
    return frozenset(keys[i] for i in range(len(keys)) if bad[i])


# -- on the worker ---------------------------------------------------------------------


def load(storage: CheckpointStorage, location: str) -> Any:
    """A loaded task: the value stored at ``location`` (runs on a worker)."""
    data = storage.get(location)
    return _store.decode_value(memoryview(data))


def save(storage: CheckpointStorage, key: Any, name: str, value: Any) -> None:
    """Write the result of task ``key`` as ``name``; runs on the worker as the task completes.

    A value that cannot be pickled is not checkpointed (its task runs again
    next time); a storage that cannot be written raises :class:`CheckpointError`.
    """
    try:
        chunks, _ = _store.encode_value(value)
    except Exception:
        logger.warning("daskexec: the result of %r cannot be pickled; not checkpointed", key)
        return
    try:
        storage.put(name, chunks)
    except Exception as exc:
        raise CheckpointError(
            f"daskexec: cannot write the result of task {key!r} to the checkpoint "
            f"{storage!r} ({type(exc).__name__}: {exc})"
        ) from exc
