"""The adapter kit's bookkeeping (``daskexec.kit``), on its own."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from daskexec.kit import Intake


def test_intake_tracks_unfinished_futures_and_refuses_work_once_closed() -> None:
    intake = Intake()
    with intake.accepting():
        a: Future[int] = intake.track(Future())
        b: Future[int] = intake.track(Future())
    assert set(intake.pending()) == {a, b}
    a.set_result(1)
    assert intake.pending() == [b]
    assert intake.state() == "running" and not intake.closed
    assert intake.close() == [b]
    assert intake.closed and intake.state() == "shut down"
    with pytest.raises(RuntimeError, match="after shutdown"), intake.accepting():
        pass
    b.cancel()
    assert intake.pending() == []


def test_a_future_done_before_tracking_is_not_counted() -> None:
    intake = Intake()
    done: Future[int] = Future()
    done.set_result(0)
    assert intake.track(done) is done
    assert intake.pending() == []


def test_results_in_order_times_out_and_cancels_what_is_left() -> None:
    import time

    from daskexec.kit import deadline, results_in_order

    fs: list[Future[int]] = [Future() for _ in range(3)]
    fs[1].set_result(1)
    fs[0].set_result(0)
    it = results_in_order(fs, deadline(0.05))
    assert next(it) == 0 and next(it) == 1
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        next(it)
    assert time.monotonic() - start < 5
    assert fs[2].cancelled()  # the failed iterator let go of it
    more: list[Future[int]] = [Future() for _ in range(2)]
    more[0].set_result(5)
    it = results_in_order(more)
    assert next(it) == 5
    it.close()  # closed early: the rest is cancelled
    assert more[1].cancelled()
