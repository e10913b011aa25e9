"""The conformance suite's pytest plugin: which executor the suite runs on.

The suite (the ``test_*`` modules of :mod:`daskexec.testing`) receives the
executor under test through fixtures defined here.  Two ways to choose it:

- A registered backend (``daskexec.create_executor(name)``, built in or
  installed through the ``daskexec.backends`` entry point group)::

      pytest -p daskexec.testing.plugin --pyargs daskexec.testing --backend=NAME

- Any other executor: a ``conftest.py`` that loads this plugin and overrides
  ``daskexec_executor_factory`` (and, optionally, ``daskexec_capabilities``),
  then ``pytest --pyargs daskexec.testing`` from its folder (see
  ``examples/custom_executor/``).

The factory makes a fresh executor each time it is called: the session
shares one, and tests of ``shutdown`` and of worker death take their own.
Capabilities (names from :data:`daskexec.engine.CAPABILITIES`) default to
what the executor declares through ``__daskexec_engine__``; a test that needs
one the executor lacks is skipped, and the report names it.  Tests that start
an executor by its backend name (a scheduler owning its executor, a script
run in a fresh interpreter) need a registered backend and skip otherwise.
"""

from __future__ import annotations

import concurrent.futures
import functools
import importlib
import inspect
import pathlib
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator

import pytest

import daskexec
from daskexec.backends import available_backends, check_backend
from daskexec.engine import CAPABILITIES

__all__ = ["ExecutorFactory"]

#: Makes a new executor of the kind under test.
ExecutorFactory = Callable[[], concurrent.futures.Executor]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        default="threads",
        help="registered daskexec backend to run the suite on (threads, processes, "
        "multiprocessing-pool, loky, ray, lithops, or any installed one); a conftest "
        "overriding the daskexec_executor_factory fixture replaces it",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "requires(*capabilities): skip unless the executor declares these capabilities"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    # A conftest's fixtures apply only below its folder; the suite lives in site-packages.
    root = session.config.rootpath
    for plugin in session.config.pluginmanager.get_plugins():
        path = pathlib.Path(getattr(plugin, "__file__", None) or ".")
        overrides = [f for f in _OVERRIDES if hasattr(plugin, f)]
        if path.name == "conftest.py" and overrides and path.parent.resolve() != root.resolve():
            raise pytest.UsageError(
                f"{path} defines {', '.join(overrides)}, but pytest's rootdir is {root}: "
                "a conftest's fixtures reach only tests below its folder, and the suite "
                "is installed elsewhere. Put a pytest.ini beside that conftest.py, or "
                "run pytest with --rootdir set to its folder."
            )


_OVERRIDES = ("daskexec_executor_factory", "daskexec_capabilities")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests a conftest declares its executor fails or cannot run.

    A conftest may set ``DASKEXEC_KNOWN_FAILURES`` (strict xfails: a fix
    upstream shows as XPASS) and ``DASKEXEC_NOT_RUN`` (tests that would hang
    or break the engine for the rest of the session), each a dict from
    ``"test_module.py::test_name"`` (with its parameters, if any) to the reason.
    """
    known: dict[str, str] = {}
    not_run: dict[str, str] = {}
    for plugin in config.pluginmanager.get_plugins():
        known.update(getattr(plugin, "DASKEXEC_KNOWN_FAILURES", None) or {})
        not_run.update(getattr(plugin, "DASKEXEC_NOT_RUN", None) or {})
    if not known and not not_run:
        return
    for item in items:
        name = f"{item.path.name}::{item.name}"
        if name in known:
            item.add_marker(pytest.mark.xfail(strict=True, reason=known[name]))
        elif name in not_run:
            item.add_marker(pytest.mark.xfail(run=False, reason=not_run[name]))


@pytest.fixture(scope="session")
def daskexec_executor_factory(request: pytest.FixtureRequest) -> ExecutorFactory:
    """Override point: a callable that makes a new executor of the kind under test."""
    name = str(request.config.getoption("--backend"))
    check_backend(name)
    return functools.partial(daskexec.create_executor, name)


@pytest.fixture(scope="session")
def user_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    """:mod:`daskexec.testing.user_module`, imported from a folder beside the driver only."""
    from daskexec.testing import user_module as source

    folder = tmp_path_factory.mktemp("user-project")
    name = f"user_tasks_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(inspect.getsource(source))
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def executor(
    daskexec_executor_factory: ExecutorFactory, user_module: types.ModuleType
) -> Iterator[concurrent.futures.Executor]:
    """The session's executor, started once the user's module is on the driver's path."""
    ex = daskexec_executor_factory()
    try:
        yield ex
    finally:
        ex.shutdown(wait=True)


@pytest.fixture
def new_executor(
    daskexec_executor_factory: ExecutorFactory, user_module: types.ModuleType
) -> Iterator[ExecutorFactory]:
    """Make fresh executors for one test; each is shut down (waiting) after it.

    Like the session's executor, they start once the user's module is on the
    driver's path: a factory that starts its engine with the first executor
    it makes (a distributed cluster, a parsl kernel) starts it from there.

    The teardown calls plain ``shutdown(wait=True)``, as CPython's executor
    tests do: ``cancel_futures`` is checked by its own test, and an executor
    without it (distributed's ``ClientExecutor``) must fail that test, not
    the teardown of every test that makes an executor.
    """
    made: list[concurrent.futures.Executor] = []

    def make() -> concurrent.futures.Executor:
        made.append(daskexec_executor_factory())
        return made[-1]

    try:
        yield make
    finally:
        for ex in made:
            ex.shutdown(wait=True)


@pytest.fixture(scope="session")
def engine(executor: concurrent.futures.Executor) -> daskexec.EngineInfo:
    return daskexec.describe(executor)


@pytest.fixture(scope="session")
def daskexec_capabilities(engine: daskexec.EngineInfo) -> frozenset[str]:
    """Override point: the capabilities the executor under test has."""
    return engine.capabilities


@pytest.fixture(scope="session")
def backend_name(request: pytest.FixtureRequest) -> str:
    """The registered backend under test; skips when the executor comes from a conftest."""
    name = str(request.config.getoption("--backend"))
    factory = request.getfixturevalue("daskexec_executor_factory")
    registered = isinstance(factory, functools.partial) and factory.args == (name,)
    if not registered or name not in available_backends():
        pytest.skip(
            "starts its executor by backend name (daskexec.create_executor), "
            "and the executor under test is not a registered backend"
        )
    return name


@pytest.fixture(autouse=True)
def _check_requirements(request: pytest.FixtureRequest) -> None:
    needed: set[str] = set()
    for mark in request.node.iter_markers("requires"):
        needed.update(mark.args)
    if not needed:
        return
    unknown = needed - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    declared = request.getfixturevalue("daskexec_capabilities")
    unknown = set(declared) - set(CAPABILITIES)
    if unknown:
        raise ValueError(
            f"daskexec_capabilities declares unknown {sorted(unknown)}; known: "
            f"{sorted(CAPABILITIES)}"
        )
    missing = sorted(needed - set(declared))
    if missing:
        label = daskexec.describe(request.getfixturevalue("executor")).name
        pytest.skip(f"executor {label!r} does not declare {', '.join(missing)}")


@pytest.fixture
def scheduler(executor: concurrent.futures.Executor) -> daskexec.ExecutorScheduler:
    """A scheduler on the session's executor (which it never shuts down)."""
    return daskexec.ExecutorScheduler(executor)


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail if the test leaves a thread or a child process of ours running."""
    from daskexec.testing import leaks

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
