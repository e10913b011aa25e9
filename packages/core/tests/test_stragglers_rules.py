"""Which tasks may get a backup copy, the switches, and the option checks (threads only)."""

from __future__ import annotations

import concurrent.futures
import os
import time
from collections.abc import Iterator
from typing import Any

import dask
import dask.array as da
import dask.bag as db
import numpy as np
import pytest
from dask import delayed

import daskexec
from daskexec import _graph
from daskexec._stragglers import BackupRule, Watch, safe_to_repeat, writes
from daskexec.testing.test_stragglers import FileTarget, first_run_slow, slow_block


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        yield ex


def _safe(collection: Any) -> dict[str, bool]:
    g = _graph.prepare(collection.__dask_graph__(), collection.__dask_keys__())
    return {str(dask.utils.key_split(g.keys[i])): safe_to_repeat(g, i) for i in range(len(g))}


def test_writers_are_found_by_their_names() -> None:
    for name in (
        "store-map",
        "arange-store-map",
        "to-parquet",
        "to_csv",
        "to-textfiles",
        "from_sequence-str-to-textfiles",
        "store_chunk",
        "insert_to_ooc",
        "write",
    ):
        assert writes(name), name
    for name in ("random_sample", "sum-aggregate", "rechunk-merge", "getitem", "mean_chunk"):
        assert not writes(name), name


def test_collections_and_pure_delayed_are_safe_the_rest_is_not(tmp_path: Any) -> None:
    x = da.ones(10, chunks=5) + 1
    assert all(_safe(x).values())
    b = db.from_sequence(range(4), npartitions=2).map(str)
    assert all(_safe(b).values())
    assert all(_safe(delayed(sum, pure=True)([1, 2])).values())
    assert not any(_safe(delayed(sum)([1, 2])).values())  # impure: a uuid key
    assert not any(_safe(delayed(sum, pure=True)([1, 2], dask_key_name="total")).values())
    stored = da.store(x, np.zeros(10), lock=False, compute=False)
    assert not all(_safe(stored).values())
    texts = b.to_textfiles(str(tmp_path / "*.txt"), compute=False)[0]
    assert not any(_safe(texts).values())


def _straggling(tmp_path: Any, n: int = 10) -> list[Any]:
    ran = tmp_path / "ran"
    ran.touch()
    markers = [str(tmp_path / "straggler")] + [str(ran)] * (n - 1)
    return [delayed(first_run_slow, pure=True)(i, m, 0.05, 1.0) for i, m in enumerate(markers)]


def test_backups_false_sends_no_copy(pool: Any, tmp_path: Any) -> None:
    s = daskexec.ExecutorScheduler(pool, pack_size=1, backups=False)
    dask.compute(*_straggling(tmp_path), scheduler=s)
    assert s.last_stats is not None and s.last_stats.backups == 0


def test_an_annotation_switches_backups_off_for_its_layer(pool: Any, tmp_path: Any) -> None:
    with dask.annotate(backups=False):
        parts = _straggling(tmp_path)
    s = daskexec.ExecutorScheduler(pool, pack_size=1)
    dask.compute(*parts, scheduler=s)
    assert s.last_stats is not None and s.last_stats.backups == 0


def test_backups_true_vouches_for_a_writer(pool: Any, tmp_path: Any) -> None:
    x = da.arange(100, chunks=10).map_blocks(
        slow_block, str(tmp_path / "straggler"), 0.05, 1.0, dtype=int
    )
    (tmp_path / "t").mkdir()
    target = FileTarget(str(tmp_path / "t"), (100,), int)
    s = daskexec.ExecutorScheduler(pool, pack_size=1, backups=True)
    da.store(x, target, lock=False, scheduler=s)
    st = s.last_stats
    assert st is not None and st.backups == 1, st.summary()
    pool.shutdown(wait=True)  # a thread cannot be stopped: the original writes too, later
    assert target.writes() == [0, *range(0, 100, 10)]  # the user said it was harmless


def hang_first(x: int, marker: str) -> int:
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return x
    time.sleep(2)
    return x


def test_item_timeout_per_layer_through_annotate(pool: Any, tmp_path: Any) -> None:
    with dask.annotate(item_timeout=0.3):
        hung = delayed(hang_first)(7, str(tmp_path / "m"))
    s = daskexec.ExecutorScheduler(pool)
    begin = time.perf_counter()
    assert hung.compute(scheduler=s) == 7
    assert time.perf_counter() - begin < 1.5
    assert s.last_stats is not None and s.last_stats.timeouts == 1


def test_item_timeout_as_a_get_keyword(pool: Any, tmp_path: Any) -> None:
    hung = delayed(hang_first)(7, str(tmp_path / "m"))
    s = daskexec.ExecutorScheduler(pool)
    assert hung.compute(scheduler=s, item_timeout=0.3) == 7
    assert s.last_stats is not None and s.last_stats.timeouts == 1


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), "1", True])
def test_bad_item_timeout_is_refused_at_construction(bad: Any) -> None:
    with pytest.raises(ValueError, match="item_timeout must be a number of seconds > 0"):
        daskexec.ExecutorScheduler(item_timeout=bad)


@pytest.mark.parametrize("bad", [0, 1, "yes"])
def test_bad_backups_is_refused_at_construction(bad: Any) -> None:
    with pytest.raises(ValueError, match="backups must be True"):
        daskexec.ExecutorScheduler(backups=bad)


def test_a_bad_annotation_is_a_clear_error(pool: Any) -> None:
    with dask.annotate(item_timeout="soon"):
        x = delayed(sum, pure=True)([1, 2])
    with pytest.raises(ValueError, match="item_timeout annotation"):
        x.compute(scheduler=daskexec.ExecutorScheduler(pool))


def test_the_clock_starts_when_a_worker_is_free() -> None:
    from collections import Counter

    w = Watch(workers=1, call_overhead=0.0, count_tasks=Counter, rule=BackupRule())
    w.submitted("a", 0, 1, 0.0, 1.0, False)
    w.submitted("b", 0, 1, 0.0, 1.0, False)  # queued behind a
    assert w.check(1.5) == (["a"], [])  # b has not started: not late
    w.abandon("a", 1.5, cancelled=False)  # a hangs on: its worker is still taken...
    assert w.clocks["b"].started == 1.5  # ...but every worker is hung: b's clock runs
    w.ended("a", 2.0, ok=False)
    assert w.check(2.6) == (["b"], [])
