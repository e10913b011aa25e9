"""The core reads executors through the engine protocol and public API only.

The one exception, facts the stdlib pools keep private, lives in
``daskexec._compat``, one function per fact; these tests fail loudly if a
Python drops a name it reads, and if private reads, class-name matching or
error-message matching appear anywhere else in the core.
"""

from __future__ import annotations

import ast
import concurrent.futures
import pathlib
import re
from collections.abc import Callable

import pytest

import daskexec
from daskexec import _compat

CORE = pathlib.Path(daskexec.__file__).parent


@pytest.mark.parametrize(
    ("make", "flag"),
    [
        (lambda: concurrent.futures.ThreadPoolExecutor(3), "_shutdown"),
        (lambda: concurrent.futures.ProcessPoolExecutor(3), "_shutdown_thread"),
    ],
    ids=["threads", "processes"],
)
def test_the_stdlib_pools_still_have_what_compat_reads(
    make: Callable[[], concurrent.futures.Executor], flag: str
) -> None:
    ex = make()
    try:
        assert isinstance(getattr(ex, "_max_workers", None), int), "_max_workers is gone"
        assert isinstance(getattr(ex, flag, None), bool), f"{flag} is gone"
        assert _compat.pool_workers(ex) == 3
        assert daskexec.describe(ex).workers == 3
        assert _compat.pool_shut_down(ex) is False
        assert not daskexec.engine.is_shut_down(ex)
    finally:
        ex.shutdown()
    assert _compat.pool_shut_down(ex) is True
    assert daskexec.engine.is_shut_down(ex)


def test_other_executors_are_not_guessed_at() -> None:
    from dask.local import SynchronousExecutor

    ex = SynchronousExecutor()
    assert _compat.pool_workers(ex) is None
    assert _compat.pool_shut_down(ex) is None
    assert daskexec.describe(ex).name == "synchronous"


def _sources() -> list[pathlib.Path]:
    """The scheduler's modules: not the compat functions, not the suite (tests may look)."""
    return sorted(
        p
        for p in CORE.rglob("*.py")
        if p.name != "_compat.py" and p.relative_to(CORE).parts[0] != "testing"
    )


def test_no_private_attribute_is_read_outside_compat() -> None:
    found = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Attribute):
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    name = node.attr
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr", "setattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                name = str(node.args[1].value)
            if name and name.startswith("_") and not name.startswith("__"):
                found.append(f"{path.relative_to(CORE)}:{node.lineno}: {ast.unparse(node)}")
    assert not found, "private reads outside daskexec._compat:\n" + "\n".join(found)


def test_no_class_name_or_message_matching() -> None:
    patterns = [
        r"__name__\s*(==|!=|in\b)",  # type(x).__name__ == "SomeExecutor"
        r"\bin\s+str\((exc|e|err|error)\)",  # "shutdown" in str(exc)
        r"str\((exc|e|err|error)\)\.(startswith|endswith|find)",
        r"\.\w+ is (concurrent\.futures\.)?Executor\.",  # type(ex).map is Executor.map
    ]
    found = [
        f"{path.relative_to(CORE)}:{i}: {line.strip()}"
        for path in _sources()
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if any(re.search(p, line) for p in patterns)
    ]
    assert not found, "\n".join(found)
