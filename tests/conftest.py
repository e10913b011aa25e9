"""The conformance suite's wiring: one backend per run, chosen by ``--backend``.

Every test receives the backend's executor through the ``executor`` fixture
(one executor for the whole session, created through the backend registry
exactly as a user would: ``daskexec.create_executor(name)``).  A test that
needs something not every engine offers says so with
``@pytest.mark.requires("capability", ...)``; when the backend does not
declare it, the test is skipped and the report shows why.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator

import pytest

import daskexec
from daskexec.engine import CAPABILITIES


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        default="threads",
        help="daskexec backend to run the suite on (threads, processes, "
        "multiprocessing-pool, loky, ray, lithops)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(*capabilities): skip unless the backend declares these capabilities"
    )
    config.addinivalue_line("markers", "backend(*names): run only on these backends")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--backend"))


@pytest.fixture(scope="session")
def executor(backend: str) -> Iterator[concurrent.futures.Executor]:
    ex = daskexec.create_executor(backend)
    try:
        yield ex
    finally:
        ex.shutdown(wait=True)


@pytest.fixture(scope="session")
def engine(executor: concurrent.futures.Executor) -> daskexec.EngineInfo:
    return daskexec.describe(executor)


@pytest.fixture(autouse=True)
def _check_requirements(request: pytest.FixtureRequest) -> None:
    names = request.config.getoption("--backend")
    for mark in request.node.iter_markers("backend"):
        if names not in mark.args:
            pytest.skip(f"only for backends {', '.join(mark.args)}; this run: {names}")
    needed: set[str] = set()
    for mark in request.node.iter_markers("requires"):
        needed.update(mark.args)
    if not needed:
        return
    unknown = needed - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    info = request.getfixturevalue("engine")
    missing = sorted(needed - info.capabilities)
    if missing:
        pytest.skip(f"backend {names!r} does not declare {', '.join(missing)}")


@pytest.fixture
def scheduler(executor: concurrent.futures.Executor) -> daskexec.ExecutorScheduler:
    """A scheduler on the session's executor (which it never shuts down)."""
    return daskexec.ExecutorScheduler(executor)


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail if the test leaves a thread or a child process of ours running."""
    import leaks

    threads_before = set(threading.enumerate())
    children_before = leaks.snapshot()
    yield
    deadline = time.monotonic() + 10
    while True:
        new_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        new_children = leaks.leftovers(children_before)
        if not new_threads and not new_children:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"left running: threads {[t.name for t in new_threads]}, processes {new_children}"
            )
        time.sleep(0.05)
