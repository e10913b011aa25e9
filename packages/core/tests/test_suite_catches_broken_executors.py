"""The conformance suite fails executors that break the contract, and passes a sound one.

Each case wires a deliberately broken executor into the suite exactly as a
third party wires theirs (a folder with ``pytest.ini`` and a ``conftest.py``
overriding ``daskexec_executor_factory``), runs the tests that should catch
the breakage in a fresh pytest process, and checks that they fail.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

import pytest

BROKEN = '''
import concurrent.futures


class Sound(concurrent.futures.ThreadPoolExecutor):
    """The control: a stdlib pool, as it is."""


class ReorderingMap(concurrent.futures.ThreadPoolExecutor):
    def map(self, fn, *iterables, timeout=None, chunksize=1):
        return reversed(list(super().map(fn, *iterables, timeout=timeout)))


class ShutdownDoesNotWait(concurrent.futures.ThreadPoolExecutor):
    def shutdown(self, wait=True, *, cancel_futures=False):
        super().shutdown(wait=False, cancel_futures=cancel_futures)


def _swallowing(fn):
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:
            return None
    return call


class SwallowsExceptions(concurrent.futures.ThreadPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        return super().submit(_swallowing(fn), *args, **kwargs)


class FutureNeverCompletes(concurrent.futures.ThreadPoolExecutor):
    def submit(self, fn, /, *args, **kwargs):
        super().submit(fn, *args, **kwargs)
        return concurrent.futures.Future()
'''

CONFTEST = """
import pytest
import broken

pytest_plugins = ["daskexec.testing.plugin"]


@pytest.fixture(scope="session")
def daskexec_executor_factory():
    return lambda: broken.{name}(max_workers=2)


@pytest.fixture(scope="session")
def daskexec_capabilities():
    return frozenset({{"shared-memory"}})
"""

#: broken executor -> the suite's tests that must catch it
CASES = {
    "ReorderingMap": ["test_map_keeps_order"],
    "ShutdownDoesNotWait": ["test_shutdown_wait_finishes_submitted_work"],
    # (the scheduler's own work items catch task errors, so only the contract sees this)
    "SwallowsExceptions": ["test_submit_exception_keeps_type_and_message"],
    "FutureNeverCompletes": [
        "test_submit_returns_future_with_result",
        "test_first_error_returns_promptly",
    ],
}


def run_suite(
    folder: pathlib.Path, name: str, tests: list[str]
) -> subprocess.CompletedProcess[str]:
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "broken.py").write_text(BROKEN)
    (folder / "conftest.py").write_text(textwrap.dedent(CONFTEST.format(name=name)))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "daskexec.testing",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rfE",
            "--timeout=10",
            "-k",
            " or ".join(tests),
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", sorted(CASES))
def test_the_suite_fails_a_broken_executor(name: str, tmp_path: pathlib.Path) -> None:
    done = run_suite(tmp_path / name, name, CASES[name])
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    for test in CASES[name]:
        assert any(f"::{test}" in line for line in failed), (test, done.stdout[-3000:])


@pytest.mark.timeout(600)
def test_the_same_tests_pass_a_sound_executor(tmp_path: pathlib.Path) -> None:
    tests = sorted({t for ts in CASES.values() for t in ts})
    done = run_suite(tmp_path / "sound", "Sound", tests)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{len(tests)} passed" in done.stdout, done.stdout[-2000:]
