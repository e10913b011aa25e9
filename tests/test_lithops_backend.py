"""Lithops-only checks of daskexec-lithops, on the localhost backend.

Every Lithops call here is a fresh Python process (about a second on a busy
two-core machine), so the tests share the session's executor where they can
and make few calls: nine in all.
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import sys
import time
from typing import Any

import pytest

pytestmark = pytest.mark.backend("lithops")


def _work(payload: Any) -> Any:
    """One call: sleep, die, raise or echo, as the payload says."""
    kind, value = payload
    if kind == "sleep":
        time.sleep(value)
        return value
    if kind == "die":
        os._exit(1)
    if kind == "raise":
        raise ValueError(value)
    return value


def _leftovers(executor: Any) -> list[str]:
    """What this executor's jobs still have in storage and in the localhost jobs folder."""
    from lithops.constants import JOBS_DIR, JOBS_PREFIX

    fexec = executor.lithops_executor
    eid = fexec.executor_id
    bucket = fexec.internal_storage.bucket
    keys: list[str] = []
    for prefix in (f"{JOBS_PREFIX}/{eid}/", f"{JOBS_PREFIX}/{eid}-"):
        keys += fexec.storage.list_keys(bucket, prefix)
    return keys + glob.glob(os.path.join(JOBS_DIR, glob.escape(eid) + "-*"))


def _runner_processes() -> list[Any]:
    import psutil

    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any("localhost-runner" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            pass
    return found


def test_default_config_is_localhost(executor: Any, engine: Any) -> None:
    from daskexec_lithops import LithopsExecutor

    assert isinstance(executor, LithopsExecutor)
    config = executor.lithops_executor.config
    assert executor.backend == "localhost"
    assert config["lithops"]["storage"] == "localhost", config["lithops"]
    assert config["localhost"]["runtime"] == sys.executable, config["localhost"]
    assert engine.name == "lithops"
    assert engine.workers == config["localhost"]["worker_processes"] == (os.cpu_count() or 1)
    assert engine.out_of_process
    assert engine.call_overhead > 0.1
    assert {"separate-processes", "survives-worker-death"} <= engine.capabilities


def test_batch_is_one_job_completing_out_of_order(executor: Any, engine: Any) -> None:
    if engine.workers < 2:
        pytest.skip("needs two localhost workers to run calls side by side")
    fexec = executor.lithops_executor
    jobs, calls, lithops_jobs = executor.jobs_submitted, executor.calls_submitted, fexec.total_jobs
    futures = executor.submit_many(_work, [("sleep", 3.0), ("echo", "fast")])
    assert executor.jobs_submitted - jobs == 1
    assert fexec.total_jobs - lithops_jobs == 1, "one batch must be one Lithops job"
    assert executor.calls_submitted - calls == 2
    order = [futures.index(f) for f in concurrent.futures.as_completed(futures, timeout=120)]
    assert order == [1, 0], f"the fast call should finish first; finished in order {order}"
    assert [f.result() for f in futures] == [3.0, "fast"]
    assert all(not f.cancel() for f in futures)


def test_map_is_one_job_in_order(executor: Any) -> None:
    jobs = executor.jobs_submitted
    assert list(executor.map(pow, [2, 3], [5, 2], timeout=120)) == [32, 9]
    assert executor.jobs_submitted - jobs == 1
    assert executor.submit_many(_work, []) == []
    assert executor.jobs_submitted - jobs == 1, "an empty batch starts no job"


def test_worker_death_is_an_engine_failure_and_the_executor_goes_on(executor: Any) -> None:
    from daskexec_lithops import LithopsWorkerError

    start = time.monotonic()
    died, raised = executor.submit_many(_work, [("die", None), ("raise", "task error")])
    with pytest.raises(LithopsWorkerError, match="failed in the engine") as info:
        died.result(timeout=120)
    detected = time.monotonic() - start
    assert isinstance(info.value, concurrent.futures.BrokenExecutor)
    assert "exited with code 1" in str(info.value)
    # The function's own exception stays what it was.
    with pytest.raises(ValueError, match="task error"):
        raised.result(timeout=120)
    assert detected < 60, f"worker death took {detected:.1f} s to detect"
    assert executor.submit(pow, 2, 10).result(timeout=120) == 1024


def test_execution_timeout_is_an_engine_failure() -> None:
    from daskexec_lithops import LithopsExecutor, LithopsWorkerError

    with LithopsExecutor(execution_timeout=2) as executor:
        start = time.monotonic()
        future = executor.submit(time.sleep, 60)
        with pytest.raises(LithopsWorkerError, match="maximum time of 2"):
            future.result(timeout=60)
        detected = time.monotonic() - start
    assert detected < 30, f"a 2 s execution timeout took {detected:.1f} s to report"
    assert not _runner_processes()


def test_shutdown_cleans_storage_and_stops_processes() -> None:
    from daskexec_lithops import LithopsExecutor

    executor = LithopsExecutor(workers=1)
    assert executor.__daskexec_engine__().workers == 1
    with executor:
        assert executor.submit(_work, ("echo", 7)).result(timeout=120) == 7
        assert _leftovers(executor), "a job should have written to storage"
    assert _leftovers(executor) == []
    assert not _runner_processes()
    executor.shutdown()
    executor.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(pow, 2, 2)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit_many(_work, [("echo", 1)])


def test_shutdown_cancel_futures_returns_promptly() -> None:
    from daskexec_lithops import LithopsExecutor

    executor = LithopsExecutor(workers=1)
    futures = executor.submit_many(_work, [("sleep", 60), ("sleep", 60)])
    start = time.monotonic()
    executor.shutdown(wait=True, cancel_futures=True)
    assert time.monotonic() - start < 30
    assert all(future.cancelled() for future in futures)
    for future in futures:
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(timeout=0)
    assert not _runner_processes()
    assert _leftovers(executor) == []


def test_bad_arguments() -> None:
    from daskexec_lithops import LithopsExecutor

    with pytest.raises(ValueError, match="workers"):
        LithopsExecutor(workers=0)
    with pytest.raises(ValueError, match="execution_timeout"):
        LithopsExecutor(execution_timeout=-1)
    with pytest.raises(ValueError, match="call_overhead"):
        LithopsExecutor(call_overhead=-1)


def test_config_file_and_arguments_are_honoured(tmp_path: Any, monkeypatch: Any) -> None:
    from daskexec_lithops import LithopsExecutor

    config_file = tmp_path / "lithops.yaml"
    config_file.write_text(
        "lithops:\n    backend: localhost\nlocalhost:\n    worker_processes: 3\n"
    )
    monkeypatch.setenv("LITHOPS_CONFIG_FILE", str(config_file))
    with LithopsExecutor(call_overhead=0.25) as from_file:
        info = from_file.__daskexec_engine__()
        assert (info.workers, info.call_overhead) == (3, 0.25)
        assert from_file.lithops_executor.config["localhost"]["runtime"] == sys.executable
    given = {"lithops": {"backend": "localhost", "storage": "localhost"}}
    with LithopsExecutor(config=given, workers=1) as from_dict:
        assert from_dict.__daskexec_engine__().workers == 1
    assert given == {"lithops": {"backend": "localhost", "storage": "localhost"}}, "mutated"


def test_cloud_config_reaches_lithops_unchanged() -> None:
    from daskexec_lithops._executor import _resolve_config

    options: dict[str, Any] = {}
    config = {"lithops": {"storage": "aws_s3"}, "aws": {"region": "us-east-1"}}
    resolved, backend = _resolve_config(config, "aws_lambda", None, 500, options)
    assert backend == "aws_lambda"
    assert resolved["lithops"] == {
        "backend": "aws_lambda",
        "storage": "aws_s3",
        "data_limit": False,
    }
    assert "localhost" not in resolved, "no localhost runtime forced onto a cloud backend"
    assert options == {"max_workers": 500, "log_level": None}


def test_each_compute_cleans_its_job_data(executor: Any) -> None:
    """A long-lived executor keeps no job data of a finished compute, success or failure."""
    import dask
    from dask import delayed
    from lithops.constants import JOBS_PREFIX

    import daskexec
    from graphs import fail, inc

    fexec = executor.lithops_executor
    bucket = fexec.internal_storage.bucket

    def job_data() -> list[str]:
        return list(fexec.storage.list_keys(bucket, f"{JOBS_PREFIX}/{fexec.executor_id}-"))

    s = daskexec.ExecutorScheduler(executor)
    assert dask.compute(delayed(inc)(1), scheduler=s) == (2,)
    assert job_data() == []
    with pytest.raises(ValueError):
        delayed(fail)(1).compute(scheduler=s)
    assert job_data() == []
