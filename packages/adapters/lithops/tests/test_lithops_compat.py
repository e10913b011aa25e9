"""The private names ``daskexec_lithops._compat`` reads are still there, in this Lithops.

Nothing here runs a Lithops job (no runtime folder is touched).  When one of
these fails, a Lithops release changed what the adapter relies on: the
message names the Lithops version and the name.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import lithops
import lithops.concurrent.futures as lithops_cf
import pytest
from lithops.future import ResponseFuture

from daskexec_lithops import _compat

LITHOPS = lithops.__version__


def _response_future() -> Any:
    job = SimpleNamespace(
        job_id="A000",
        job_key="ex-A000",
        executor_id="ex",
        function_name="f",
        execution_timeout=10,
        runtime_name="python",
        runtime_memory=256,
    )
    storage = {"backend": "localhost", "localhost": {"storage_bucket": "bucket"}}
    return ResponseFuture("00000", job, {}, storage)


def test_the_futures_executor_can_still_track_a_jobs_calls() -> None:
    track = getattr(lithops_cf.FunctionExecutor, "_track", None)
    assert callable(track), (
        f"Lithops {LITHOPS}: lithops.concurrent.futures.FunctionExecutor._track is gone; "
        "update daskexec_lithops._compat.tracker (submit_many needs per-call futures)"
    )
    with pytest.raises(ImportError, match=rf"lithops {LITHOPS}"):
        _compat.tracker(object())


def test_response_futures_still_record_state_and_handler_failures() -> None:
    lf = _response_future()
    state = getattr(lf, "_state", None)
    assert state == ResponseFuture.State.New, (
        f"Lithops {LITHOPS}: ResponseFuture._state is gone or changed (found {state!r}); "
        "update daskexec_lithops._compat.call_lost"
    )
    handler = getattr(lf, "_handler_exception", None)
    assert handler is False, (
        f"Lithops {LITHOPS}: ResponseFuture._handler_exception is gone or changed (found "
        f"{handler!r}); update daskexec_lithops._compat.failed_in_handler"
    )
    assert not _compat.call_lost(lf) and not _compat.failed_in_handler(lf)
    lf._set_state(ResponseFuture.State.Unknown)
    lf._handler_exception = True
    assert _compat.call_lost(lf) and _compat.failed_in_handler(lf)


def test_the_localhost_environment_still_runs_each_call_in_process_task() -> None:
    from lithops.localhost.v2.localhost import DefaultEnvironment

    env = DefaultEnvironment({"runtime": "python"})
    assert callable(getattr(env, "_process_task", None)), (
        f"Lithops {LITHOPS}: lithops.localhost.v2 DefaultEnvironment._process_task is gone; "
        "update daskexec_lithops._compat.wrap_process_task (abandoned calls would run on)"
    )
    assert type(env.task_processes) is dict and env.task_processes_lock is not None
    ran: list[str] = []
    assert _compat.wrap_process_task(env, lambda original: ran.append)
    env._process_task("payload")
    assert ran == ["payload"]
    assert not _compat.wrap_process_task(object(), lambda original: original)


def test_the_worker_handler_still_names_each_call_in_the_environment() -> None:
    import inspect

    from lithops.worker import handler

    source = inspect.getsource(handler)
    assert _compat.ACTIVATION_VARIABLE in source, (
        f"lithops {LITHOPS}: lithops.worker.handler no longer sets "
        f"{_compat.ACTIVATION_VARIABLE}; the timeline cannot name Lithops calls"
    )
