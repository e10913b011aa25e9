"""The progress bar, the timeline's bookkeeping, and the breakdown's arithmetic."""

from __future__ import annotations

import io

import dask
import pytest
from dask import delayed

import daskexec
from daskexec._timeline import ItemRecord, align_clocks, breakdown
from daskexec.testing.graphs import fail, slow_inc


def test_progress_bar_shows_tasks_items_in_flight_and_bytes() -> None:
    pytest.importorskip("tqdm")
    from daskexec.diagnostics import ProgressBar

    out = io.StringIO()
    s = daskexec.ExecutorScheduler(pack_size=1)
    with ProgressBar(interval=0.05, file=out):
        total = dask.compute(sum(delayed(slow_inc)(i, 0.02) for i in range(40)), scheduler=s)
    assert total == (sum(range(1, 41)),)
    text = out.getvalue()
    assert s.last_stats is not None and len(s.last_stats.items) == s.last_stats.work_items
    assert "items in flight" in text and "retries" in text and "MiB moved" in text, text
    final = text.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in final, final
    with ProgressBar(file=out), pytest.raises(ValueError):
        delayed(fail)(1).compute(scheduler=s)
    assert "failed" in out.getvalue().replace("\r", "\n").strip().splitlines()[-1]


def test_progress_bar_refuses_a_bad_interval() -> None:
    from daskexec.diagnostics import ProgressBar

    with pytest.raises(ValueError, match="interval"):
        ProgressBar(interval=0)


def _record(
    i: int, host: str, submitted: float, started: float, finished: float, received: float
) -> ItemRecord:
    return ItemRecord(
        item=i,
        group="g",
        tasks=1,
        attempt=1,
        ready=submitted,
        serialized=submitted,
        submitted=submitted,
        started=started,
        ran=started,
        finished=finished,
        received=received,
        decoded=received,
        worker=f"{host}/1/t",
        host=host,
    )


def test_a_remote_clock_is_measured_and_subtracted() -> None:
    # a host whose clock runs 100 s ahead; its items take 1 s and travel 0.1 s each way
    records = [_record(i, "far-away", 10.0 + i, 110.1 + i, 111.1 + i, 11.2 + i) for i in range(3)]
    offsets = align_clocks(records)
    assert offsets["far-away"] == pytest.approx(100.0, abs=0.11)
    for r in records:
        assert r.submitted <= r.started <= r.finished <= r.received, r


def test_the_parts_add_up_to_the_wall_time() -> None:
    records = [_record(0, "h", 1.0, 2.0, 5.0, 6.0), _record(1, "h", 1.0, 4.0, 7.0, 7.5)]
    parts = breakdown(records, [("serialization", 0.5, 1.0)], 0.0, 10.0)
    assert parts == {
        "tasks": pytest.approx(5.0),  # 2..7
        "serialization": pytest.approx(0.5),
        "transfer": pytest.approx(0.5),  # 7..7.5
        "engine latency": pytest.approx(1.0),  # 1..2
        "scheduling": pytest.approx(3.0),  # 0..0.5 and 7.5..10
    }
    assert sum(parts.values()) == pytest.approx(10.0)
