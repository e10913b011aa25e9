"""Results in Lithops object storage: the result store of a LithopsExecutor.

With a store, a Lithops call writes the large results of its tasks to the
storage backend that the executor's Lithops config names (localhost storage,
S3, GCS, IBM COS, ...), and sends the driver only a key; the call that
consumes a result reads it from storage itself, and the driver downloads
only the outputs of a compute (see :mod:`daskexec._store`).  Only Lithops'
public ``Storage`` API is used (``put_object``, ``get_object``,
``delete_objects``, ``list_keys``), so any backend works.

Layout
------
One compute's values live under its own prefix in the executor's bucket::

    daskexec-results/<host>/<driver pid>-<token>/<uuid>

so that a compute deletes what it stored by listing its prefix (the values
the scheduler released were deleted already), and a driver that starts on a
host deletes what killed drivers *of that host* left behind (their pids are
no longer running); other hosts' prefixes are never touched.

Two sides
---------
:class:`LithopsStoreClient` travels with every work item: the storage config
(as JSON), the bucket and the prefix.  In a Lithops call it builds a
``lithops.storage.Storage`` on first use and keeps it for the life of the
process (:func:`worker_storage`): building one imports the backend and, in
the cloud, makes a client and resolves credentials, which is not worth
paying for every value.  The config carries what Lithops' own job payloads
carry already (credentials included), nothing more.

:class:`LithopsResultStore` is the driver's side of one compute.
:class:`ResultStores` opens one per compute for an executor, deletes again
what a call abandoned but still running wrote after its compute closed
(:meth:`ResultStores.tidy`, once no such call can write any more), and
deletes everything left at ``shutdown`` (:meth:`ResultStores.close`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lithops.storage import Storage

from daskexec import BackgroundDeleter, StoreClient
from daskexec._store import pid_alive

__all__ = [
    "RESULTS_PREFIX",
    "LithopsResultStore",
    "LithopsStoreClient",
    "ResultStores",
    "host_prefix",
    "sweep_stale",
    "worker_storage",
]

logger = logging.getLogger("daskexec_lithops")

#: Where in the bucket the result stores of every daskexec driver live.
RESULTS_PREFIX = "daskexec-results/"

_STORAGES: dict[str, Any] = {}  # storage config (JSON) -> its lithops Storage, per process
_STORAGES_LOCK = threading.Lock()


def worker_storage(config: str) -> Any:
    """The ``lithops.storage.Storage`` for a storage config (JSON): built once per process."""
    with _STORAGES_LOCK:
        storage = _STORAGES.get(config)
        if storage is None:
            storage = Storage(storage_config=json.loads(config))
            _STORAGES[config] = storage
        return storage


@dataclass(frozen=True)
class LithopsStoreClient:
    """Writes and reads one compute's values in object storage, from a Lithops call."""

    config: str  #: the storage config, as JSON (also the key of the process's Storage cache)
    bucket: str
    prefix: str

    def write(self, chunks: Sequence[memoryview]) -> str:
        key = self.prefix + uuid.uuid4().hex
        # bytes, not a bytearray: localhost storage writes anything else as text
        worker_storage(self.config).put_object(self.bucket, key, b"".join(chunks))
        return key

    def read(self, location: str) -> memoryview:
        return memoryview(worker_storage(self.config).get_object(self.bucket, location))


def _host() -> str:
    """This host's name, as one safe path segment of a key."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"


def host_prefix(host: str | None = None) -> str:
    """The prefix under which every store of the drivers of ``host`` (default: this one) lives."""
    return f"{RESULTS_PREFIX}{host or _host()}/"


def sweep_stale(storage: Any, bucket: str) -> list[str]:
    """Delete the stores that drivers of this host no longer running left; return their prefixes."""
    base = host_prefix()
    stale: dict[str, list[str]] = {}
    for key in storage.list_keys(bucket, base):
        folder = key[len(base) :].split("/", 1)[0]
        pid = folder.split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            stale.setdefault(f"{base}{folder}/", []).append(key)
    for keys in stale.values():
        storage.delete_objects(bucket, keys)
    return sorted(stale)


def _delete_prefix(storage: Any, bucket: str, prefix: str) -> None:
    keys = storage.list_keys(bucket, prefix)
    if keys:
        storage.delete_objects(bucket, keys)


class LithopsResultStore:
    """One compute's values in the executor's bucket, under a prefix of their own.

    Parameters
    ----------
    storage
        The driver's ``lithops.storage.Storage`` (the executor's).
    config
        Its storage config, as JSON: what a call needs to build its own.
    bucket
        The bucket the values go to (the executor's Lithops bucket).
    prefix
        Where this compute's values live; it ends with ``/``.
    on_close
        Called with ``prefix`` when the compute ends, before its values are deleted.
    """

    #: values travel as whole objects: a slice is worth sending on its own
    mapped = False

    def __init__(
        self,
        storage: Any,
        config: str,
        bucket: str,
        prefix: str,
        on_close: Callable[[str], None] | None = None,
    ) -> None:
        self._storage = storage
        self._bucket = bucket
        self.prefix = prefix
        self._on_close = on_close
        self._client = LithopsStoreClient(config, bucket, prefix)
        # a release is a request to storage: sent from a thread, in batches
        self._deletes = BackgroundDeleter(self._delete_now, "Lithops")

    @property
    def client(self) -> StoreClient:
        return self._client

    def read(self, location: str) -> bytearray:
        return bytearray(self._storage.get_object(self._bucket, location))

    def delete(self, locations: Sequence[str]) -> None:
        self._deletes.add(locations)  # a failure is logged there; close() deletes them

    def _delete_now(self, locations: list[str]) -> None:
        self._storage.delete_objects(self._bucket, locations)

    def locations(self) -> list[str]:
        self._deletes.flush()
        return sorted(self._storage.list_keys(self._bucket, self.prefix))

    def close(self) -> None:
        self._deletes.close()
        if self._on_close is not None:
            self._on_close(self.prefix)
        try:
            _delete_prefix(self._storage, self._bucket, self.prefix)
        except Exception:
            # the executor tries again (ResultStores.tidy, and at shutdown)
            logger.warning("could not delete the stored results %s", self.prefix, exc_info=True)

    def __repr__(self) -> str:
        return f"LithopsResultStore({self._bucket!r}, {self.prefix!r})"


class ResultStores:
    """The result stores of one executor: one per compute, and what they leave behind.

    A call abandoned while it runs (its compute failed; in the cloud it cannot
    be recalled) may write to its compute's store after the store was closed.
    The executor calls :meth:`tidy` once no call of its can write any more,
    and :meth:`close` at shutdown; each lists this driver's stores once and
    deletes what lies under the prefixes concerned.

    Parameters
    ----------
    storage
        The executor's ``lithops.storage.Storage``.
    bucket
        The executor's Lithops bucket.
    """

    def __init__(self, storage: Any, bucket: str) -> None:
        self._storage = storage
        self._bucket = bucket
        self._config = json.dumps(storage.get_storage_config(), sort_keys=True)
        self._lock = threading.Lock()
        self._swept = False
        self._opened: set[str] = set()  # the prefix of every store this executor opened
        self._closed: set[str] = set()  # ... of stores closed since the last tidy()

    def open(self, token: str) -> LithopsResultStore:
        """The store of a new compute named ``token`` (the ``EngineInfo.store`` factory)."""
        with self._lock:
            sweep, self._swept = not self._swept, True
        if sweep:
            try:
                sweep_stale(self._storage, self._bucket)
            except Exception:
                logger.warning("could not delete stale stored results", exc_info=True)
        prefix = f"{_driver_prefix()}{token}/"
        with self._lock:
            self._opened.add(prefix)
        return LithopsResultStore(
            self._storage, self._config, self._bucket, prefix, on_close=self._closing
        )

    def _closing(self, prefix: str) -> None:
        with self._lock:
            self._closed.add(prefix)

    def tidy(self) -> None:
        """Delete what closed stores hold now: call when no call of theirs can still write."""
        with self._lock:
            prefixes, self._closed = self._closed, set()
        self._delete(prefixes)

    def close(self) -> None:
        """Delete everything any store of this executor holds (at shutdown)."""
        with self._lock:
            prefixes = set(self._opened)
            self._closed = set()
        self._delete(prefixes)

    def _delete(self, prefixes: set[str]) -> None:
        if not prefixes:
            return
        try:
            keys = [
                key
                for key in self._storage.list_keys(self._bucket, _driver_prefix())
                if key[: key.find("/", len(_driver_prefix())) + 1] in prefixes
            ]
            if keys:
                self._storage.delete_objects(self._bucket, keys)
        except Exception:
            logger.warning("could not delete stored results", exc_info=True)


def _driver_prefix() -> str:
    """Where the stores of this driver process live: each under ``<this><token>/``."""
    return f"{host_prefix()}{os.getpid()}-"
