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
