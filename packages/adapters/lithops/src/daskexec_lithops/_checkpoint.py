"""Checkpoints in Lithops object storage (``LithopsExecutor.checkpoint(name)``).

A checkpoint (:class:`daskexec.Checkpoint`) keeps task results by key
across computes.  On Lithops it lives in the same storage backend as the
executor's result store (localhost storage, S3, GCS, IBM COS, ...), so that
the calls write and read it themselves, wherever they run: a local directory
would be invisible to cloud functions.

Layout
------
::

    daskexec-checkpoints/<name>/data/<stored name>@<uuid>   the result (daskexec's store format)
    daskexec-checkpoints/<name>/done/<stored name>@<uuid>   an empty marker, written after it

Object storage has no rename, and Lithops' localhost storage writes an
object in place (a reader could see part of it); so a result counts only once
its marker exists, and the marker is written after the data is whole.  A
call killed between the two leaves data without a marker: never read, and
deleted by :meth:`LithopsCheckpointStorage.clear`.  Stored names never hold
``@`` (``daskexec._checkpoint`` percent-encodes keys).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from daskexec import CheckpointError
from daskexec_lithops._store import worker_storage

__all__ = ["CHECKPOINTS_PREFIX", "LithopsCheckpointStorage"]

#: Where in the bucket every daskexec checkpoint lives.
CHECKPOINTS_PREFIX = "daskexec-checkpoints/"


@dataclass(frozen=True)
class LithopsCheckpointStorage:
    """A checkpoint's objects under one prefix of a Lithops storage bucket.

    Parameters
    ----------
    config
        The storage config, as JSON (``Storage.get_storage_config()``): a
        call builds its own ``lithops.storage.Storage`` from it, once per process.
    bucket
        The bucket (the executor's Lithops bucket).
    prefix
        The checkpoint's own prefix, ending with ``/``.
    """

    config: str
    bucket: str
    prefix: str

    def put(self, name: str, chunks: Sequence[memoryview]) -> None:
        storage = worker_storage(self.config)
        stem = f"{name}@{uuid.uuid4().hex}"
        # bytes, not a bytearray: localhost storage writes anything else as text
        storage.put_object(self.bucket, f"{self.prefix}data/{stem}", b"".join(chunks))
        storage.put_object(self.bucket, f"{self.prefix}done/{stem}", b"")

    def entries(self) -> dict[str, str]:
        storage = worker_storage(self.config)
        done = f"{self.prefix}done/"
        found: dict[str, str] = {}
        for key in storage.list_keys(self.bucket, done):
            stem = key[len(done) :]
            found[stem.split("@", 1)[0]] = f"data/{stem}"
        return found

    def get(self, location: str) -> bytes:
        data: bytes = worker_storage(self.config).get_object(self.bucket, self.prefix + location)
        return data

    def delete(self, names: Sequence[str]) -> None:
        wanted = set(names)
        storage = worker_storage(self.config)
        done = f"{self.prefix}done/"
        stems = [
            k[len(done) :]
            for k in storage.list_keys(self.bucket, done)
            if k[len(done) :].split("@", 1)[0] in wanted
        ]
        if stems:
            storage.delete_objects(self.bucket, [done + s for s in stems])
            storage.delete_objects(self.bucket, [f"{self.prefix}data/{s}" for s in stems])

    def clear(self) -> None:
        storage = worker_storage(self.config)
        keys = storage.list_keys(self.bucket, self.prefix)
        markers = [k for k in keys if k.startswith(f"{self.prefix}done/")]
        if markers:  # markers first: a reader never finds a marker without its data
            storage.delete_objects(self.bucket, markers)
        rest = [k for k in keys if k not in set(markers)]
        if rest:
            storage.delete_objects(self.bucket, rest)

    def check(self) -> None:
        probe = f"{self.prefix}probe-{uuid.uuid4().hex}"
        try:
            storage = worker_storage(self.config)
            storage.put_object(self.bucket, probe, b"")
            storage.delete_objects(self.bucket, [probe])
        except Exception as exc:
            raise CheckpointError(
                f"daskexec: cannot write the checkpoint {self.prefix!r} in bucket "
                f"{self.bucket!r} ({type(exc).__name__}: {exc}); check the Lithops "
                "storage config and its credentials"
            ) from exc

    def __repr__(self) -> str:
        return f"LithopsCheckpointStorage({self.bucket!r}, {self.prefix!r})"


def prefix_for(name: str) -> str:
    """The prefix of the checkpoint called ``name``; a clear error for a name that is no path."""
    if not isinstance(name, str) or not name.strip("/"):
        raise ValueError(f"daskexec: a checkpoint name must be a non-empty str, got {name!r}")
    if any(part in ("", ".", "..") for part in name.strip("/").split("/")):
        raise ValueError(f"daskexec: a checkpoint name must be a plain path, got {name!r}")
    return f"{CHECKPOINTS_PREFIX}{name.strip('/')}/"
