"""The adapter kit (``daskexec.kit``) on its own: outcomes, bridging, relay, intake, map.

Plain functions with no fixtures: nothing here starts an engine.
"""

from __future__ import annotations

import concurrent.futures
import functools
import pickle
import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from daskexec import kit
from daskexec.errors import RemoteError, RemoteTraceback, SerializationError


def _settled(outcome: bytes) -> Future[Any]:
    future: Future[Any] = Future()
    kit.settle(future, outcome)
    return future


class _OddInit(Exception):
    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}/{b}")  # args differ from __init__'s: the pickle does not load


def _raise(exc: BaseException) -> None:
    raise exc


# -- outcomes -------------------------------------------------------------------


def test_an_outcome_carries_a_result_a_lambda_included() -> None:
    assert _settled(kit.outcome_of(pow, 2, 10)).result() == 1024
    square = _settled(kit.outcome_of(lambda: lambda x: x * x)).result()
    assert square(7) == 49


def test_an_outcome_carries_an_exception_with_its_remote_traceback() -> None:
    error = _settled(kit.outcome_of(_raise, KeyError("k"))).exception()
    assert isinstance(error, KeyError) and error.args == ("k",), repr(error)
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "_raise" in str(error.__cause__), str(error.__cause__)


def test_a_base_exception_and_an_unpicklable_one_come_back() -> None:
    interrupt = _settled(kit.outcome_of(_raise, KeyboardInterrupt())).exception()
    assert isinstance(interrupt, KeyboardInterrupt), repr(interrupt)
    odd = _settled(kit.outcome_of(_raise, _OddInit(1, 2))).exception()
    assert isinstance(odd, (_OddInit, RemoteError)), repr(odd)
    assert "1/2" in str(odd), str(odd)


def test_a_result_that_cannot_be_pickled_is_a_serialization_error() -> None:
    error = _settled(kit.outcome_of(threading.Lock)).exception()
    assert isinstance(error, SerializationError), repr(error)
    assert "cannot be serialized" in str(error), str(error)


def test_an_outcome_that_cannot_be_loaded_fails_its_future_only() -> None:
    error = _settled(b"not a pickle").exception()
    assert isinstance(error, SerializationError), repr(error)
    assert isinstance(error.__cause__, pickle.UnpicklingError), repr(error.__cause__)


# -- bridge: the engine decides about cancelling --------------------------------


def test_bridge_decodes_the_outcome_and_translates_engine_errors() -> None:
    inner: Future[Any] = Future()
    outer = kit.bridge(inner)
    assert not outer.done()
    inner.set_result(kit.outcome_of(abs, -3))
    assert outer.result(timeout=5) == 3

    broken: Future[Any] = Future()
    translated = kit.bridge(broken, lambda e: concurrent.futures.BrokenExecutor(str(e)))
    broken.set_exception(OSError("worker died"))
    error = translated.exception(timeout=5)
    assert type(error) is concurrent.futures.BrokenExecutor, repr(error)
    assert str(error) == "worker died"


def test_a_translate_that_raises_keeps_the_original_error() -> None:
    inner: Future[Any] = Future()
    outer = kit.bridge(inner, lambda e: 1 / 0)  # type: ignore[arg-type,return-value]
    original = OSError("lost")
    inner.set_exception(original)
    assert outer.exception(timeout=5) is original


def test_cancelling_asks_the_engine_and_follows_it() -> None:
    inner: Future[Any] = Future()
    outer = kit.bridge(inner)
    assert outer.cancel() and inner.cancelled() and outer.cancelled()
    done, _ = concurrent.futures.wait([outer], timeout=5)
    assert outer in done, "a cancelled bridge must wake wait()"

    running: Future[Any] = Future()
    assert running.set_running_or_notify_cancel()
    outer = kit.bridge(running)
    assert outer.running()
    assert not outer.cancel(), "the engine refused: the bridge must refuse too"
    running.set_result(kit.outcome_of(int, "5"))
    assert outer.result(timeout=5) == 5 and not outer.running()


# -- bridge: the caller's future is cancelled at once ---------------------------


def test_on_cancel_cancels_at_once_and_ignores_the_late_result() -> None:
    inner: Future[Any] = Future()
    assert inner.set_running_or_notify_cancel()  # an engine that cannot recall its calls
    stopped: list[bool] = []
    outer = kit.bridge(inner, on_cancel=lambda: stopped.append(True))
    assert not outer.running()
    assert outer.cancel() and outer.cancelled() and stopped == [True]
    done, _ = concurrent.futures.wait([outer], timeout=5)
    assert outer in done
    inner.set_result(kit.outcome_of(int, "1"))  # the abandoned call ends anyway
    assert outer.cancelled()
    assert outer.cancel() and stopped == [True], "cancel() twice: True, on_cancel once"


def test_custom_decode_and_an_inner_future_cancelled_by_the_engine() -> None:
    def decode(future: Future[Any], value: Any) -> None:
        future.set_result(("decoded", value))

    inner: Future[Any] = Future()
    outer = kit.bridge(inner, decode=decode, on_cancel=lambda: None)
    inner.set_result(42)
    assert outer.result(timeout=5) == ("decoded", 42)

    inner = Future()
    outer = kit.bridge(inner, decode=decode, on_cancel=lambda: None)
    inner.cancel()
    assert outer.cancelled()
    done, _ = concurrent.futures.wait([outer], timeout=5)
    assert outer in done


def test_a_relay_completes_bridged_futures_on_its_own_thread() -> None:
    relay = kit.Relay("test-relay")
    seen: list[str] = []
    inner: Future[Any] = Future()
    outer = kit.bridge(inner, decode=lambda f, v: f.set_result(v), relay=relay)
    outer.add_done_callback(lambda f: seen.append(threading.current_thread().name))
    inner.set_result("x")
    assert outer.result(timeout=5) == "x"
    relay.stop()
    assert seen == ["test-relay"], seen
    relay.stop()  # safe twice
    relay.put(seen.append, "dropped")  # after stop: dropped, no new thread
    time.sleep(0.05)
    assert seen == ["test-relay"], seen
    assert not any(t.name == "test-relay" for t in threading.enumerate())


def test_a_relay_outlives_a_failing_callback(caplog: pytest.LogCaptureFixture) -> None:
    relay = kit.Relay("test-relay-fails")
    ran = threading.Event()
    relay.put(lambda _: 1 / 0, None)
    relay.put(lambda _: ran.set(), None)
    assert ran.wait(5), "the callback after a failing one did not run"
    relay.stop()
    assert "a callback failed" in caplog.text, caplog.text


def test_a_relay_stopped_from_its_own_thread_does_not_wait_for_itself() -> None:
    relay = kit.Relay("test-relay-self")
    done = threading.Event()

    def stop_here(_: object) -> None:
        relay.stop()
        done.set()

    relay.put(stop_here, None)
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while any(t.name == "test-relay-self" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the relay thread did not end"
        time.sleep(0.01)


# -- intake ---------------------------------------------------------------------


def test_intake_names_the_executor_when_it_refuses_work() -> None:
    intake = kit.Intake("RayExecutor")
    intake.check()
    intake.close()
    with pytest.raises(RuntimeError, match=r"after shutdown: this RayExecutor has been shut down"):
        intake.check()


def test_on_idle_runs_once_closed_and_every_future_is_done() -> None:
    calls: list[int] = []
    intake = kit.Intake(on_idle=lambda: calls.append(len(intake.pending())))
    a: Future[int] = intake.track(Future())
    a.set_result(1)
    assert calls == [], "not closed: not idle"
    b: Future[int] = intake.track(Future())
    assert intake.close() == [b]
    intake.notify_if_idle()
    assert calls == [] and not intake.idle()
    b.set_result(2)
    assert calls == [0] and intake.idle()
    intake.notify_if_idle()
    assert calls == [0, 0], "notify_if_idle calls it again: on_idle must be idempotent"


def test_a_done_future_counts_as_idle_before_its_callbacks_ran() -> None:
    intake = kit.Intake()
    f: Future[int] = Future()
    intake.track(f)
    intake.close()
    with f._condition:  # done, callbacks not run yet (as between wait() and them)
        f._state = "FINISHED"
        f._result = 1
    assert intake.idle() and intake.pending() == [f]


# -- batches --------------------------------------------------------------------


def _submit_many_inline(fn: Any, payloads: list[Any]) -> list[Future[Any]]:
    futures = []
    for payload in payloads:
        future: Future[Any] = Future()
        future.set_result(fn(payload))
        futures.append(future)
    return futures


def test_eager_map_submits_one_batch_of_argument_tuples() -> None:
    batches: list[list[Any]] = []

    def submit_many(fn: Any, payloads: list[Any]) -> list[Future[Any]]:
        batches.append(payloads)
        return _submit_many_inline(fn, payloads)

    it = kit.eager_map(submit_many, pow, ([2, 3, 4], [2, 2]))
    assert batches == [[(2, 2), (3, 2)]], "every call goes out before the first result"
    assert list(it) == [4, 9]
    with pytest.raises(ValueError, match="chunksize"):
        kit.eager_map(submit_many, pow, ([1],), chunksize=0)


def test_eager_map_times_out_from_the_call() -> None:
    pending: list[Future[Any]] = []

    def never(fn: Any, payloads: list[Any]) -> list[Future[Any]]:
        pending.extend(Future() for _ in payloads)
        return list(pending)

    it = kit.eager_map(never, abs, ([1, 2],), timeout=0.05)
    with pytest.raises(TimeoutError):
        next(it)
    assert all(f.cancelled() for f in pending), "the calls left are cancelled"


def test_eager_map_mixin_is_the_executors_map() -> None:
    class Batchy(kit.EagerMap, concurrent.futures.Executor):
        def __init__(self) -> None:
            self.batches: list[list[Any]] = []

        def submit_many(self, fn: Any, payloads: list[Any]) -> list[Future[Any]]:
            self.batches.append(list(payloads))
            return _submit_many_inline(fn, payloads)

    ex = Batchy()
    assert list(ex.map(divmod, [7, 9], [2, 4])) == [(3, 1), (2, 1)]
    assert ex.batches == [[(7, 2), (9, 4)]]
    with pytest.raises(ValueError, match="chunksize"):
        ex.map(abs, [1], chunksize=0)


def test_star_pickles_by_reference() -> None:
    fn = functools.partial(kit.star, divmod)
    assert pickle.loads(pickle.dumps(fn))((7, 2)) == (3, 1)


def test_local_pool_info_describes_a_local_process_pool() -> None:
    from daskexec import SharedMemoryStore

    info = kit.local_pool_info(3, "mine")
    assert (info.workers, info.name, info.out_of_process) == (3, "mine", True)
    assert info.store is SharedMemoryStore
    assert info.capabilities >= {"separate-processes", "survives-worker-death", "cancel-running"}
    assert kit.local_pool_info(1, "x", call_overhead=0.5).call_overhead == 0.5


def test_the_kit_is_public_and_typed() -> None:
    import pathlib

    import daskexec

    assert sorted(kit.__all__) == sorted(
        [
            "EagerMap",
            "Intake",
            "Relay",
            "bridge",
            "deadline",
            "eager_map",
            "local_pool_info",
            "name_worker",
            "outcome_of",
            "results_in_order",
            "settle",
            "star",
        ]
    )
    for name in kit.__all__:
        assert getattr(kit, name).__doc__, f"daskexec.kit.{name} has no docstring"
    core = pathlib.Path(daskexec.__file__).parent
    assert (core / "py.typed").exists()
    assert not (core / "_kit.py").exists(), "daskexec._kit was folded into daskexec.kit"
