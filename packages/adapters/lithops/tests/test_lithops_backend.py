"""Lithops-only checks of daskexec-lithops, on the localhost backend.

Every Lithops call here is a fresh Python process (about a second on a busy
two-core machine), so the tests share the session's executor where they can
and make few calls: twenty in all.
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import sys
import time
from typing import Any

import pytest


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


def _sleep_marked(folder: str, seconds: float) -> str:
    """Say it started (a file in ``folder``), sleep, say it finished."""
    with open(os.path.join(folder, "sleeper-started"), "w"):
        pass
    time.sleep(seconds)
    with open(os.path.join(folder, "sleeper-finished"), "w"):
        pass
    return "slept"


def _wait_for(path: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _fail_once_sleeper_runs(folder: str) -> None:
    """Raise while the sleeper of the same compute runs."""
    _wait_for(os.path.join(folder, "sleeper-started"), 60)
    raise ValueError("failed while another task sleeps")


def _rendezvous(folder: str, me: str, other: str) -> str:
    """Succeed only if the ``other`` task runs at the same time as this one."""
    with open(os.path.join(folder, f"here-{me}"), "w"):
        pass
    if not _wait_for(os.path.join(folder, f"here-{other}"), 15):
        raise TimeoutError(f"{other} did not run beside {me}: a worker slot is still taken")
    return me


def _kill_self_once(x: int, marker: str) -> int:
    """SIGKILL the process running this call, the first time."""
    if not os.path.exists(marker):
        with open(marker, "w"):
            pass
        os.kill(os.getpid(), 9)
    return x + 1


def _kill_handler_once(x: int, marker: str) -> int:
    """The first time, SIGKILL the Lithops handler process running this call, then linger."""
    if not os.path.exists(marker):
        parent = os.getppid()
        with open(f"/proc/{parent}/cmdline", "rb") as f:
            if b"localhost-runner" not in f.read():  # never kill anything else
                raise RuntimeError("not running under the Lithops localhost runner")
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        os.kill(parent, 9)
        time.sleep(60)  # an orphan now, holding the dead handler's pipes
    return x + 1


def _ends(pid: int, seconds: float) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``seconds``."""
    import psutil

    deadline = time.monotonic() + seconds
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _leftovers(executor: Any, eid: str | None = None) -> list[str]:
    """What an executor's jobs still have in storage and in the localhost job folders."""
    from lithops.constants import JOBS_DIR, JOBS_PREFIX, MODULES_DIR

    fexec = executor.lithops_executor
    eid = eid or fexec.executor_id
    bucket = fexec.internal_storage.bucket
    keys: list[str] = []
    for prefix in (f"{JOBS_PREFIX}/{eid}/", f"{JOBS_PREFIX}/{eid}-"):
        keys += fexec.storage.list_keys(bucket, prefix)
    for folder in (JOBS_DIR, MODULES_DIR):  # MODULES_DIR: the modules shipped with a job
        keys += glob.glob(os.path.join(folder, glob.escape(eid) + "-*"))
    return keys


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
    from user_tasks import fail, inc

    import daskexec

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


SIBLING = """
from my_sibling_helpers import double


def inc(x):
    return x + 1


def double_inc(x):
    return double(x) + 1
"""


def test_modules_beside_the_script_are_shipped(
    executor: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """A module importable only in the driver (as a script's sibling) reaches the workers."""
    import importlib

    from dask import delayed

    import daskexec

    (tmp_path / "my_sibling_funcs.py").write_text(SIBLING)
    (tmp_path / "my_sibling_helpers").mkdir()  # a package: shipped whole
    (tmp_path / "my_sibling_helpers" / "__init__.py").write_text("from .core import double\n")
    (tmp_path / "my_sibling_helpers" / "core.py").write_text("def double(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the driver's path only
    try:
        funcs = importlib.import_module("my_sibling_funcs")
        graph = delayed(funcs.double_inc)(delayed(funcs.inc)(1))
        # the helper module is imported by the sibling only: shipped as its dependency
        assert graph.compute(scheduler=daskexec.ExecutorScheduler(executor)) == 5
        assert executor.submit(funcs.inc, 41).result(timeout=120) == 42
    finally:
        for name in ("my_sibling_funcs", "my_sibling_helpers", "my_sibling_helpers.core"):
            sys.modules.pop(name, None)


def test_module_references_are_found_in_pickles() -> None:
    """refers_to never misses a module that unpickling asks for."""
    import functools
    import io
    import pickle

    import cloudpickle
    import user_tasks

    from daskexec_lithops._modules import refers_to

    class Recorder(pickle.Unpickler):
        def __init__(self, data: bytes, found: set[str]) -> None:
            super().__init__(io.BytesIO(data))
            self.found = found

        def find_class(self, module: str, name: str) -> Any:
            self.found.add(module.partition(".")[0])
            obj = super().find_class(module, name)
            if name == "subimport":  # cloudpickle's reference to a module object
                return lambda mod: (self.found.add(mod.partition(".")[0]), obj(mod))[1]
            return obj

    samples = [
        user_tasks.inc,
        [user_tasks.inc, user_tasks.add, os.path.join, user_tasks.inc],
        lambda x: user_tasks.inc(x),  # by value, its global by reference
        lambda: user_tasks,  # a module object: subimport("user_tasks")
        functools.partial(user_tasks.slow_inc, delay=0),
        {"__module__": "user_tasks", "f": user_tasks.fail},  # the name memoized before the global
        (b"x" * 100_000, user_tasks.add),
    ]
    roots = ["user_tasks", "os", "posixpath", "functools", "cloudpickle", "builtins", "dask"]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        for sample in samples:
            data = cloudpickle.dumps(sample, protocol=protocol)
            found: set[str] = set()
            Recorder(data, found).load()
            missed = [r for r in roots if r in found and not refers_to(data, r)]
            assert not missed, (protocol, sample, missed)
        nested = cloudpickle.dumps((cloudpickle.dumps(user_tasks.inc), b""), protocol=protocol)
        assert refers_to(nested, "user_tasks"), protocol
    assert not refers_to(cloudpickle.dumps((pow, "user_tasks_like", b"user_tasks")), "user_tasks")
    # protocol 0 escapes a nested pickle's newline, CR, NUL, backslash and \x1a bytes:
    # names whose length is one of those bytes must still be found
    for n in (0x0A, 0x0D, 0x1A, 0x5C, 0x100):
        name = "m" * n
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            nested = cloudpickle.dumps((cloudpickle.dumps(name), b""), protocol=protocol)
            assert refers_to(nested, name), (n, protocol)


def test_module_options_pass_through(executor: Any) -> None:
    """include_modules/exclude_modules as Lithops has them (no call is made)."""
    import cloudpickle
    import user_tasks

    from daskexec_lithops import LithopsExecutor

    blob = cloudpickle.dumps((user_tasks.inc, (1,), {}))
    shipper = executor._shipper
    assert shipper is not None
    shipped = shipper.modules_for(None, [blob])
    assert [os.path.abspath(p) for p in shipped] == [user_tasks.__file__], shipped
    assert shipper.modules_for(None, [b"not a pickle"]) == []
    with LithopsExecutor(exclude_modules=["user_tasks"]) as excluding:
        assert excluding._shipper is not None
        assert excluding._shipper.modules_for(None, [blob]) == []
        assert excluding._job_kwargs["exclude_modules"] == ["user_tasks"]
    with LithopsExecutor(include_modules=["user_tasks"]) as explicit:
        assert explicit._shipper is None
        assert explicit._job_kwargs["include_modules"] == ["user_tasks"]
    with LithopsExecutor(include_modules=None) as off:
        assert off._shipper is None and off._job_kwargs["include_modules"] is None
    with pytest.raises(TypeError, match="list of module names"):
        LithopsExecutor(include_modules="user_tasks")


def test_localhost_hooks_are_installed(executor: Any) -> None:
    """The private parts of Lithops localhost that _localhost hooks into are still there."""
    assert executor._local is not None, (
        "daskexec_lithops._localhost could not hook into this Lithops version: abandoned "
        "calls run on and a dead worker process is seen only at the execution timeout"
    )


@pytest.mark.timeout(180)
def test_compute_after_an_error_does_not_wait_for_abandoned_calls(tmp_path: Any) -> None:
    import dask
    from dask import delayed

    import daskexec
    from daskexec_lithops import LithopsExecutor

    folder = str(tmp_path)
    with LithopsExecutor(workers=2) as executor:
        s = daskexec.ExecutorScheduler(executor, pack_size=1)
        sleeper = delayed(_sleep_marked)(folder, 20)
        with pytest.raises(ValueError, match="another task sleeps"):
            dask.compute(sleeper, delayed(_fail_once_sleeper_runs)(folder), scheduler=s)
        # both worker slots must be free again: these two only succeed side by side
        start = time.monotonic()
        pair = dask.compute(
            delayed(_rendezvous)(folder, "a", "b"),
            delayed(_rendezvous)(folder, "b", "a"),
            scheduler=s,
        )
        took = time.monotonic() - start
        assert pair == ("a", "b")
        assert took < 15, f"the compute after the error took {took:.1f} s"
        assert not os.path.exists(os.path.join(folder, "sleeper-finished")), "not stopped"
    assert not _runner_processes()
    assert _leftovers(executor) == []


def test_killed_call_process_is_retried_promptly(executor: Any, tmp_path: Any) -> None:
    from dask import delayed

    import daskexec

    s = daskexec.ExecutorScheduler(executor, retries=2)
    start = time.monotonic()
    assert delayed(_kill_self_once)(1, str(tmp_path / "m")).compute(scheduler=s) == 2
    took = time.monotonic() - start
    assert s.last_stats is not None and s.last_stats.engine_failures == 1, s.last_stats
    assert took < 60, f"took {took:.1f} s"


def test_killed_handler_process_is_reported_promptly(executor: Any, tmp_path: Any) -> None:
    """A dead handler process is a lost call at once, not at the execution timeout."""
    from dask import delayed

    import daskexec

    if not os.path.exists(f"/proc/{os.getpid()}/cmdline"):
        pytest.skip("the task checks its parent process through /proc")
    marker = tmp_path / "m"
    s = daskexec.ExecutorScheduler(executor, retries=2)
    start = time.monotonic()
    assert delayed(_kill_handler_once)(1, str(marker)).compute(scheduler=s) == 2
    took = time.monotonic() - start
    assert s.last_stats is not None and s.last_stats.engine_failures == 1, s.last_stats
    assert took < 45, f"took {took:.1f} s (the orphan lingers 60 s)"
    assert _ends(int(marker.read_text()), 10), "the dead handler's JobRunner still runs"


EXITS_AT_ONCE = """
import os, sys, time
from daskexec_lithops import LithopsExecutor

def sleep_here(path):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)

ex = LithopsExecutor()
print(ex.lithops_executor.executor_id, flush=True)
ex.submit(sleep_here, sys.argv[1])
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
ex.shutdown(wait=False, cancel_futures=True)  # and the script ends here
"""


def test_script_exiting_right_after_shutdown_leaves_nothing(executor: Any, tmp_path: Any) -> None:
    """What an owned executor does after an error: shutdown(wait=False), then the script exits."""
    import subprocess

    script = tmp_path / "exits_at_once.py"
    script.write_text(EXITS_AT_ONCE)
    pid_file = tmp_path / "pid"
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), str(pid_file)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - start < 50, "the exit waited for the abandoned call"
    eid = done.stdout.split()[0]
    assert _leftovers(executor, eid) == []
    assert _ends(int(pid_file.read_text()), 10), "the abandoned call's process runs on"


# -- the result store ---------------------------------------------------------------


def _ramp(n: int) -> Any:
    import numpy as np

    return np.arange(n, dtype=float)


def _total(a: Any) -> float:
    return float(a.sum())


def _round_trip_in_a_call(client: Any, data: bytes) -> tuple[bool, int, bool]:
    """In a Lithops call: write and read back twice; was one Storage built and kept?"""
    from daskexec_lithops import _store

    first = client.write([memoryview(data)])
    storage = _store._STORAGES.get(client.config)
    second = client.write([memoryview(data[:10]), memoryview(data[10:])])
    same = bytes(client.read(first)) == data == bytes(client.read(second))
    kept = storage is not None and _store._STORAGES[client.config] is storage
    return same, len(_store._STORAGES), kept


def _mine(executor: Any) -> list[str]:
    """The stored results of this driver's computes in the executor's bucket."""
    from daskexec_lithops._store import host_prefix

    fexec = executor.lithops_executor
    bucket = fexec.internal_storage.bucket
    return list(fexec.storage.list_keys(bucket, f"{host_prefix()}{os.getpid()}-"))


def test_results_stay_in_lithops_storage_and_are_deleted(executor: Any, engine: Any) -> None:
    import dask
    from dask import delayed

    import daskexec
    from daskexec_lithops._store import LithopsStoreClient

    assert {"result-store", "results-stay-remote"} <= engine.capabilities
    s = daskexec.ExecutorScheduler(executor, pack_size=1)
    n = 50_000  # 400 kB: stored, not inline
    ramp = delayed(_ramp)(n)  # two consumers: an export, not fused into one call
    assert (
        dask.compute(delayed(_total)(ramp), delayed(_total)(ramp), scheduler=s)
        == (n * (n - 1) / 2,) * 2
    )
    st = s.last_stats
    assert st is not None
    assert st.store_peak_bytes >= 8 * n, st.summary()
    assert st.bytes_received < 16 * 1024, st.summary()
    assert _mine(executor) == []
    store = engine.store("probe")
    try:
        assert isinstance(store.client, LithopsStoreClient)
        key = store.client.write([memoryview(b"x" * 10)])
        assert key.startswith(store.prefix) and store.prefix.endswith(f"/{os.getpid()}-probe/")
        assert store.locations() == [key]
        assert store.read(key) == bytearray(b"x" * 10)
    finally:
        store.close()
    assert store.locations() == [] and _mine(executor) == []


def test_store_client_is_not_shipped_and_builds_one_storage_per_process(
    executor: Any, engine: Any
) -> None:
    import cloudpickle

    store = engine.store("cache")
    try:
        shipper = executor._shipper
        assert shipper is not None
        assert shipper.modules_for(None, [cloudpickle.dumps(store.client)]) == [], (
            "daskexec_lithops is installed in the runtime: the client must not be shipped"
        )
        data = os.urandom(100_000)
        future = executor.submit(_round_trip_in_a_call, store.client, data)
        assert future.result(timeout=120) == (True, 1, True)
        assert len(store.locations()) == 2
    finally:
        store.close()
    assert store.locations() == []


def test_stale_results_of_dead_drivers_of_this_host_are_swept(executor: Any) -> None:
    import subprocess

    from daskexec_lithops._store import RESULTS_PREFIX, ResultStores, host_prefix, sweep_stale

    fexec = executor.lithops_executor
    storage, bucket = fexec.storage, fexec.internal_storage.bucket
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    keys = {
        "dead": f"{host_prefix()}{dead.pid}-old/a",
        "dead2": f"{host_prefix()}{dead.pid}-old/b",
        "alive": f"{host_prefix()}{os.getppid()}-running/a",
        "other host": f"{RESULTS_PREFIX}some-other-host.invalid/{dead.pid}-old/a",
    }
    for key in keys.values():
        storage.put_object(bucket, key, b"left")
    try:
        assert sweep_stale(storage, bucket) == [f"{host_prefix()}{dead.pid}-old/"]
        left = set(storage.list_keys(bucket, RESULTS_PREFIX))
        assert {keys["alive"], keys["other host"]} <= left
        assert not {keys["dead"], keys["dead2"]} & left
        # a new executor's first store sweeps
        storage.put_object(bucket, keys["dead"], b"left")
        stores = ResultStores(storage, bucket)
        stores.open("first").close()
        assert keys["dead"] not in storage.list_keys(bucket, RESULTS_PREFIX)
    finally:
        storage.delete_objects(bucket, list(keys.values()))


def test_shutdown_deletes_abandoned_and_late_results() -> None:
    """A store never closed (an abandoned compute), a write after close: gone by shutdown."""
    from daskexec_lithops import LithopsExecutor

    executor = LithopsExecutor(workers=1)
    info = executor.__daskexec_engine__()
    assert info.store is not None
    late = info.store("late")
    late.close()
    late.client.write([memoryview(b"written after the compute ended")])
    assert len(late.locations()) == 1
    executor.__daskexec_compute_done__()  # no job in flight: deleted now
    assert late.locations() == []
    abandoned = info.store("abandoned")
    abandoned.client.write([memoryview(b"v")])
    late.client.write([memoryview(b"again")])
    executor.shutdown()
    assert abandoned.locations() == [] and late.locations() == []


def test_records_name_calls_and_match_lithops_own_durations(executor: Any) -> None:
    """Each work item's record names its call and agrees with Lithops' per-call statistics."""
    import dask
    from dask import delayed
    from user_tasks import slow_inc

    import daskexec

    s = daskexec.ExecutorScheduler(executor, pack_size=1)
    before = len(executor.lithops_executor.futures)
    assert dask.compute(*[delayed(slow_inc)(i, 0.3) for i in range(3)], scheduler=s) == (1, 2, 3)
    st = s.last_stats
    assert st is not None and st.cost is None  # localhost has no list price
    calls = {f.activation_id: f for f in executor.lithops_executor.futures[before:]}
    assert len(st.items) == 3
    for r in st.items:
        assert r.label.startswith("lithops "), r
        call = calls.get(r.label.split(" ", 1)[1])
        assert call is not None, (r.label, sorted(calls))
        assert r.cold  # localhost runs every call in a fresh process
        theirs = call.stats["worker_func_exec_time"]
        ours = r.finished - r.started
        # ours is inside their function call: no longer, and only the outcome's pickling shorter
        assert 0.3 <= ours <= theirs + 0.01, (ours, theirs)
        assert theirs - ours < max(0.5, 0.5 * theirs), (ours, theirs)


def test_cloud_backends_are_billed_at_their_list_price() -> None:
    from daskexec.cost import PRICES, Price
    from daskexec_lithops._config import billing

    def resolved(backend: str, **section: Any) -> dict[str, Any]:
        return {"lithops": {"backend": backend}, backend: section}

    lam = billing(resolved("aws_lambda", runtime_memory=1769), None)
    assert lam is not None and lam.price is PRICES["aws_lambda"]
    assert abs(lam.memory_gb - 1769 / 1024) < 1e-9
    run = billing(resolved("gcp_cloudrun", runtime_memory=512, runtime_cpu=1), None)
    assert run is not None and run.vcpus == 1.0 and run.price is PRICES["gcp_cloudrun"]
    assert billing(resolved("localhost"), None) is None
    mine = Price("negotiated", per_gb_second=0.00001)
    own = billing(resolved("aws_lambda", runtime_memory=256), mine)
    assert own is not None and own.price is mine
