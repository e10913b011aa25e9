"""Checkpoints in Lithops object storage (``LithopsExecutor.checkpoint``), on localhost.

Few calls: a compute packs its tasks into one or two Lithops calls.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from dask import delayed

import daskexec
from daskexec_lithops import LithopsCheckpointStorage
from daskexec_lithops._store import worker_storage


def _record(i: int, folder: str) -> int:
    Path(folder, f"done-{i}-{uuid.uuid4().hex}").touch()
    return i * 10


def _ran(folder: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in folder.glob("done-*"))


def test_resume_from_object_storage(executor: Any, tmp_path: Path) -> None:
    ckpt = executor.checkpoint(f"test-{uuid.uuid4().hex[:8]}")
    storage = ckpt.storage
    assert isinstance(storage, LithopsCheckpointStorage)
    try:
        steps = [
            delayed(_record, pure=True)(i, str(tmp_path), dask_key_name=f"lstep-{i}")
            for i in range(4)
        ]
        s = daskexec.ExecutorScheduler(executor, checkpoint=ckpt)
        assert delayed(sum)(steps[:2]).compute(scheduler=s) == 10
        assert {"lstep-0", "lstep-1"} <= set(ckpt.keys()), ckpt.keys()

        # a half-written result (data without its marker) is never read
        store = worker_storage(storage.config)
        store.put_object(storage.bucket, f"{storage.prefix}data/slstep-2@{'0' * 32}", b"torn")
        assert "lstep-2" not in ckpt

        total = delayed(sum, pure=True)(steps, dask_key_name="ltotal")
        assert total.compute(scheduler=s) == 60
        assert s.last_stats is not None and s.last_stats.loaded == 2, s.last_stats
        assert _ran(tmp_path) == [0, 1, 2, 3]

        ckpt.discard(["lstep-3"])
        assert "lstep-3" not in ckpt and "lstep-0" in ckpt
    finally:
        ckpt.clear()
    assert len(ckpt) == 0
    assert not worker_storage(storage.config).list_keys(storage.bucket, storage.prefix)


def test_bad_checkpoint_names(executor: Any) -> None:
    for bad in ("", "/", "a/../b"):
        with pytest.raises(ValueError, match="checkpoint name"):
            executor.checkpoint(bad)
    with pytest.raises(daskexec.CheckpointError, match="cannot write the checkpoint"):
        daskexec.Checkpoint(LithopsCheckpointStorage('{"backend": "nope"}', "b", "p/"))
