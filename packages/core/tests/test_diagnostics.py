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


def test_bill_rounds_each_invocation_up_and_adds_requests() -> None:
    from daskexec.cost import Billing, Price, bill

    price = Price("test", per_gb_second=1.0, per_vcpu_second=10.0, per_request=0.5, round_to=0.1)
    gb_s, dollars = bill(Billing(price, memory_gb=2.0, vcpus=1.0), [0.01, 0.1, 0.25])
    # 0.1 + 0.1 + 0.3 = 0.5 s billed
    assert gb_s == pytest.approx(1.0)
    assert dollars == pytest.approx(1.0 * 1.0 + 0.5 * 10.0 + 3 * 0.5)
    with pytest.raises(ValueError, match="per_gb_second"):
        Price("bad", per_gb_second=-1)
    with pytest.raises(ValueError, match="memory_gb"):
        Billing(price, memory_gb=0)


def test_an_engine_that_declares_its_billing_gets_a_price_per_compute() -> None:
    import concurrent.futures

    from daskexec.cost import PRICES, Billing

    class Billed(concurrent.futures.ThreadPoolExecutor):
        def __daskexec_engine__(self) -> daskexec.EngineInfo:
            return daskexec.EngineInfo(
                workers=2,
                out_of_process=False,
                name="billed",
                billing=Billing(PRICES["aws_lambda"], memory_gb=1.0),
            )

    with Billed(2) as ex:
        s = daskexec.ExecutorScheduler(ex, pack_size=1)
        dask.compute(*[delayed(slow_inc)(i, 0.05) for i in range(4)], scheduler=s)
    st = s.last_stats
    assert st is not None and st.cost is not None
    assert st.gb_seconds >= 4 * 0.05 and st.gb_seconds == pytest.approx(st.worker_seconds, abs=0.01)
    assert st.cost == pytest.approx(st.gb_seconds * 0.0000166667 + len(st.items) * 0.2e-6, rel=0.01)
    assert "AWS Lambda" in st.summary() and "GB-s" in st.summary()
