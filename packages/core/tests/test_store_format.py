"""The shared-memory result store on its own: format, lifetime, stale sweep, fallback."""

from __future__ import annotations

import multiprocessing
import os
import threading
from typing import Any

import numpy as np
import pandas as pd
import pytest

from daskexec import SharedMemoryStore, _store


@pytest.fixture
def store() -> Any:
    s = SharedMemoryStore("unit-test")
    yield s
    s.close()


def test_round_trip_keeps_values_and_maps_buffers_zero_copy(store: SharedMemoryStore) -> None:
    value = {
        "a": np.arange(100_000, dtype=np.int64),
        "f": np.asfortranarray(np.ones((300, 200))),
        "df": pd.DataFrame({"x": np.arange(50_000.0), "s": ["v"] * 50_000}),
        "f2": lambda y: y + 1,
    }
    handle = _store.dump_value(value, store.client, inline_below=1024)
    assert isinstance(handle, _store.Stored) and handle.nbytes > 800_000
    assert store.locations() == [handle.location]
    in_worker = _store.load_value(handle, store.client)
    np.testing.assert_array_equal(in_worker["a"], value["a"])
    assert not in_worker["a"].flags.writeable  # mapped, not copied
    assert in_worker["f"].flags.f_contiguous
    pd.testing.assert_frame_equal(in_worker["df"], value["df"])
    assert in_worker["f2"](1) == 2
    in_driver = _store.fetch_value(handle, store)
    in_driver["a"][0] = -1  # what compute() returns is writable
    store.delete([handle.location])
    assert store.locations() == []


def test_small_values_travel_inline(store: SharedMemoryStore) -> None:
    handle = _store.dump_value([1, 2, 3], store.client)
    assert isinstance(handle, _store.Inline)
    assert _store.fetch_value(handle, None) == [1, 2, 3]
    assert store.locations() == []


def test_close_deletes_everything(store: SharedMemoryStore) -> None:
    for i in range(3):
        _store.dump_value(np.full(100_000, i), store.client, inline_below=0)
    assert len(store.locations()) == 3
    store.close()
    assert store.locations() == []
    assert not os.path.exists(store.directory) and not os.path.exists(store.fallback)


def _exit() -> None:
    pass


def test_a_killed_drivers_store_is_swept_at_the_next_start(tmp_path: Any) -> None:
    proc = multiprocessing.get_context("spawn").Process(target=_exit)
    proc.start()
    proc.join()
    dead = proc.pid
    root = _store._shm_root()
    stale = os.path.join(root, f"daskexec-{dead}-0123abcd")
    os.makedirs(stale)
    with open(os.path.join(stale, "left-behind"), "wb") as f:
        f.write(b"x" * 1000)
    mine = SharedMemoryStore("sweeper")
    try:
        assert not os.path.exists(stale), "the dead driver's store was not swept"
        assert os.path.exists(mine.directory)  # a live driver's store is kept
    finally:
        mine.close()


def test_falls_back_when_shared_memory_is_full(store: SharedMemoryStore) -> None:
    full = _store._FileClient("/nonexistent/daskexec-full", store.fallback)
    handle = _store.dump_value(np.ones(100_000), full, inline_below=0)
    assert isinstance(handle, _store.Stored)
    assert handle.location.startswith(store.fallback)
    np.testing.assert_array_equal(_store.load_value(handle, full), np.ones(100_000))


def test_background_deleter_batches_flushes_and_survives_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from daskexec import BackgroundDeleter

    deleted: list[list[str]] = []

    def delete_now(locations: list[str]) -> None:
        if "bad" in locations:
            raise OSError("storage said no")
        deleted.append(locations)

    before = set(threading.enumerate())
    d = BackgroundDeleter(delete_now, "test")
    d.add(["a", "b"])
    d.flush()
    assert [x for batch in deleted for x in batch] == ["a", "b"]
    d.add(["bad"])
    d.flush()  # logged, not raised
    assert "could not delete 1 values from the test store" in caplog.text
    d.add(["c"])
    d.close()  # what was queued is deleted before the thread stops
    assert [x for batch in deleted for x in batch] == ["a", "b", "c"]
    d.add(["d"])  # after close: ignored (the store's close deletes everything)
    d.flush()
    assert [x for batch in deleted for x in batch] == ["a", "b", "c"]
    assert set(threading.enumerate()) <= before  # the deleter's thread has stopped
