"""Result stores: where the results of out-of-process work live, and their handles.

A work item's exported results stay where they were computed: the worker
writes each one to the compute's *store* and sends the driver a small
*handle*; a consumer item receives handles and reads the values on its own
worker; the driver reads only the outputs it returns, and deletes a stored
value the moment its last consumer has finished.  Small values are not worth
a store round trip: they travel inside their handle (:class:`Inline`).

Format
------
A value is pickled (cloudpickle, protocol 5) with its large buffers (NumPy,
pandas, Arrow) out of band, and stored as one object::

    header: len(main), n, len(buffer 1..n)    (little-endian uint64s)
    main pickle, then each buffer, each starting at a 64-byte boundary

so that a reader maps the object once and hands each buffer to the unpickler
zero-copy.  Values read in a worker may therefore be read-only; values the
driver reads are copied into writable memory, so that what ``compute()``
returns is an ordinary object.

Stores
------
A store has two sides: the driver's (:class:`ResultStore`: read for the
outputs, delete, close at the end of the compute) and a small picklable
:class:`StoreClient` that travels with every work item and writes and reads
in the worker.  :class:`SharedMemoryStore` is the machine-wide store of the
process pools: one directory per compute in ``/dev/shm`` (or the temporary
directory where ``/dev/shm`` is missing or short of space), named after the
driver's pid, so that the next start of any driver deletes what a killed
driver left behind.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import mmap
import os
import pickle
import shutil
import struct
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import cloudpickle

__all__ = [
    "INLINE_BELOW",
    "BackgroundDeleter",
    "Inline",
    "ResultStore",
    "SharedMemoryStore",
    "StoreClient",
    "Stored",
    "decode_value",
    "dump_value",
    "encode_value",
    "fetch_value",
    "load_value",
    "pid_alive",
    "read_file",
    "writable",
]

#: Values whose pickle (buffers included) is smaller than this travel inside
#: their handle instead of through the store (see benchmarks/store_threshold.py).
INLINE_BELOW = 64 * 1024
_ALIGN = 64
logger = logging.getLogger("daskexec")
_PREFIX = "daskexec-"


@dataclass(frozen=True)
class Inline:
    """A handle that carries its small value, pickled."""

    data: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Stored:
    """A handle to a value in the compute's store."""

    location: str
    nbytes: int


Handle = Inline | Stored


@runtime_checkable
class StoreClient(Protocol):
    """The worker's side of a store: picklable, cheap to send with every work item."""

    def write(self, chunks: Sequence[memoryview]) -> str:
        """Store the concatenation of ``chunks`` as one new object; return its location.

        The object must appear whole or not at all (a reader never sees part of it).
        """
        ...

    def read(self, location: str) -> memoryview:
        """The bytes of the object at ``location``, mapped rather than copied where possible."""
        ...


@runtime_checkable
class ResultStore(Protocol):
    """The driver's side of one compute's store."""

    @property
    def client(self) -> StoreClient:
        """What work items carry to write and read values in the workers."""
        ...

    def read(self, location: str) -> bytearray:
        """The bytes of an object, copied into writable memory of the driver."""
        ...

    def delete(self, locations: Sequence[str]) -> None:
        """Delete objects no consumer needs any more."""
        ...

    def locations(self) -> list[str]:
        """What the store holds now (for tests and diagnostics)."""
        ...

    def close(self) -> None:
        """Delete everything this compute stored (also what workers wrote and lost track of)."""
        ...

    #: Whether workers map values into memory rather than transfer them, so
    #: that reading a whole value costs no more than a slice of it (the
    #: scheduler then runs slicing tasks inside their consumers).
    mapped: bool


# -- format --------------------------------------------------------------------


def _encode(value: Any) -> tuple[list[memoryview], int]:
    buffers: list[pickle.PickleBuffer] = []
    main = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    header = struct.pack(f"<{2 + len(raws)}Q", len(main), len(raws), *(r.nbytes for r in raws))
    chunks = [memoryview(header), memoryview(main)]
    size = len(header) + len(main)
    for raw in raws:
        pad = -size % _ALIGN
        if pad:
            chunks.append(memoryview(bytes(pad)))
            size += pad
        chunks.append(raw)
        size += raw.nbytes
    return chunks, size


def _decode(data: memoryview) -> Any:
    n_main, n = struct.unpack_from("<2Q", data)
    lens = struct.unpack_from(f"<{n}Q", data, 16)
    at = 16 + 8 * n
    main = data[at : at + n_main]
    at += n_main
    buffers = []
    for length in lens:
        at += -at % _ALIGN
        buffers.append(data[at : at + length])
        at += length
    return pickle.loads(main, buffers=buffers)


def encode_value(value: Any) -> tuple[list[memoryview], int]:
    """``value`` in the store format (see Format): the chunks of one object, and its size."""
    return _encode(value)


def decode_value(data: memoryview) -> Any:
    """The value stored as ``data`` (buffers are views of ``data``: writable only if it is)."""
    return _decode(data)


def dump_value(value: Any, client: StoreClient | None, inline_below: int = INLINE_BELOW) -> Handle:
    """Store ``value`` (or, when small or no store is given, carry it inline); return its handle."""
    chunks, size = _encode(value)
    if client is None or size < inline_below:
        return Inline(b"".join(chunks))
    return Stored(client.write(chunks), size)


def load_value(handle: Handle, client: StoreClient | None) -> Any:
    """The value behind ``handle``, read in a worker (zero-copy: buffers may be read-only)."""
    if isinstance(handle, Inline):
        return _decode(memoryview(handle.data))
    assert client is not None, "a stored handle needs the store's client"
    return _decode(client.read(handle.location))


def fetch_value(handle: Handle, store: ResultStore | None) -> Any:
    """The value behind ``handle``, read in the driver into writable memory."""
    if isinstance(handle, Inline):
        return _decode(memoryview(bytearray(handle.data)))
    assert store is not None, "a stored handle needs its store"
    return _decode(memoryview(store.read(handle.location)))


def writable(value: Any) -> Any:
    """``value``, or a copy in writable memory when any of its buffers is read-only."""
    buffers: list[pickle.PickleBuffer] = []
    try:
        main = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception:
        return value
    del main
    if not any(b.raw().readonly for b in buffers):
        return value
    # the pickle stream marks read-only buffers as such: copy the objects instead
    return copy.deepcopy(value)


# -- deleting in the background ------------------------------------------------------


class BackgroundDeleter:
    """Deletes released values in a thread of its own, in batches.

    A store's ``delete`` is called from the scheduler's loop each time a
    value's last consumer finishes; freeing a large file, or a request to
    object storage, would hold the loop up.  ``delete_now(locations)`` runs
    in the thread, with everything released since its last call; an error
    there is logged, and the store's ``close`` deletes what is left.

    Parameters
    ----------
    delete_now
        Deletes a batch of locations.
    what
        Names the store in log messages.
    """

    def __init__(self, delete_now: Callable[[list[str]], None], what: str) -> None:
        self._delete_now = delete_now
        self._what = what
        self._queued: list[str] = []
        self._busy = False
        self._closed = False
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, locations: Sequence[str]) -> None:
        """Delete ``locations`` soon."""
        if not locations:
            return
        with self._wake:
            if self._closed:
                return
            self._queued.extend(locations)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="daskexec-store-delete", daemon=True
                )
                self._thread.start()
            self._wake.notify_all()

    def flush(self) -> None:
        """Return once everything added so far is deleted."""
        with self._wake:
            while (self._queued or self._busy) and self._thread is not None:
                self._wake.wait()

    def close(self) -> None:
        """Delete what is queued, then stop the thread (the store deletes the rest)."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queued and not self._closed:
                    self._wake.wait()
                batch, self._queued = self._queued, []
                self._busy = bool(batch)
                closed = self._closed
            if batch:
                try:
                    self._delete_now(batch)
                except Exception:
                    logger.warning(
                        "daskexec: could not delete %d values from the %s store",
                        len(batch),
                        self._what,
                        exc_info=True,
                    )
            with self._wake:
                self._busy = False
                self._wake.notify_all()
            if closed:
                return


# -- shared memory -----------------------------------------------------------------


@dataclass(frozen=True)
class _FileClient:
    """Writes and maps files in a directory that every process of this machine sees."""

    directory: str
    fallback: str

    def write(self, chunks: Sequence[memoryview]) -> str:
        name = uuid.uuid4().hex
        for folder in (self.directory, self.fallback):
            path = os.path.join(folder, name)
            try:
                # the driver made both folders; once it deleted them, the compute is over
                with open(path + ".part", "wb") as f:
                    for chunk in chunks:
                        f.write(chunk)
                os.rename(path + ".part", path)
                return path
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(path + ".part")
                if folder == self.fallback:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, location: str) -> memoryview:
        with open(location, "rb") as f:
            return memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))


def _shm_root(min_free: int = 2**30) -> str:
    """``/dev/shm`` when it exists, is writable and has room; else the temporary directory."""
    root = "/dev/shm"
    try:
        if os.access(root, os.W_OK) and shutil.disk_usage(root).free >= min_free:
            return root
    except OSError:
        pass
    return tempfile.gettempdir()


def read_file(path: str) -> bytearray:
    """The bytes of a file, in writable memory of this process."""
    with open(path, "rb") as f:
        data = bytearray(os.fstat(f.fileno()).st_size)
        f.readinto(data)
    return data


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (stores name their owner by pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(roots: Sequence[str]) -> list[str]:
    """Delete the store directories of drivers that are no longer running; return them."""
    removed = []
    for root in roots:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            if not name.startswith(_PREFIX):
                continue
            pid = name[len(_PREFIX) :].split("-", 1)[0]
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                removed.append(name)
    return removed


class SharedMemoryStore:
    """One compute's results in shared memory, for workers on this machine.

    Parameters
    ----------
    token
        Names the compute; the store is the directory
        ``/dev/shm/daskexec-<driver pid>-<token>`` (the temporary directory
        when ``/dev/shm`` is missing or has less than 1 GiB free; values that
        do not fit in ``/dev/shm`` go there too).
    """

    #: Readers map values instead of copying them: reading a whole value costs
    #: no more than reading part of it.
    mapped = True

    def __init__(self, token: str) -> None:
        name = f"{_PREFIX}{os.getpid()}-{token}"
        tmp = tempfile.gettempdir()
        root = _shm_root()
        sweep_stale(sorted({root, tmp}))
        self.directory = os.path.join(root, name)
        self.fallback = os.path.join(tmp, name)
        os.makedirs(self.directory, exist_ok=True)
        os.makedirs(self.fallback, exist_ok=True)
        self._client = _FileClient(self.directory, self.fallback)
        # freeing a large file's pages takes milliseconds: not in the scheduler's loop
        self._deletes = BackgroundDeleter(self._unlink, "shared memory")

    @property
    def client(self) -> StoreClient:
        return self._client

    def read(self, location: str) -> bytearray:
        return read_file(location)

    def delete(self, locations: Sequence[str]) -> None:
        self._deletes.add(locations)

    @staticmethod
    def _unlink(locations: Sequence[str]) -> None:
        for location in locations:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(location)

    def locations(self) -> list[str]:
        self._deletes.flush()  # what was deleted is gone first
        found: list[str] = []
        for folder in (self.directory, self.fallback):
            with contextlib.suppress(FileNotFoundError):
                found.extend(os.path.join(folder, name) for name in os.listdir(folder))
        return sorted(found)

    def close(self) -> None:
        self._deletes.close()
        for folder in (self.directory, self.fallback):
            shutil.rmtree(folder, ignore_errors=True)

    def __repr__(self) -> str:
        return f"SharedMemoryStore({self.directory!r})"
