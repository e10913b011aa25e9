"""Named backends: ``ExecutorScheduler("ray")`` and ``pytest --backend ray``.

Adapter packages register a factory under the ``daskexec.backends`` entry
point group (``ray = "daskexec_ray:RayExecutor"``).  Entry points are read
lazily, on the first lookup by name, and cached; nothing is scanned at
import time.  The ``threads`` backend is built in.
"""

from __future__ import annotations

import concurrent.futures
import functools
import os
from importlib.metadata import entry_points
from typing import Any

__all__ = ["available_backends", "check_backend", "create_executor"]

_ENTRY_POINT_GROUP = "daskexec.backends"
_INSTALL_HINTS = {
    "processes": "daskexec-stdlib",
    "multiprocessing-pool": "daskexec-stdlib",
    "loky": "daskexec-loky",
    "ray": "daskexec-ray",
    "lithops": "daskexec-lithops",
}


def _threads(max_workers: int | None = None, **kwargs: Any) -> concurrent.futures.Executor:
    return concurrent.futures.ThreadPoolExecutor(
        max_workers=max_workers or os.cpu_count() or 1,
        thread_name_prefix="daskexec",
        **kwargs,
    )


@functools.cache
def _registry() -> dict[str, Any]:
    found: dict[str, Any] = {"threads": _threads}
    for ep in entry_points(group=_ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def available_backends() -> list[str]:
    """Names of the backends installed in this environment, sorted."""
    return sorted(_registry())


def check_backend(name: str) -> None:
    """Raise ``ValueError`` naming what is installed unless backend ``name`` is."""
    if name not in _registry():
        hint = _INSTALL_HINTS.get(name)
        install = f"; pip install {hint}" if hint else ""
        raise ValueError(
            f"no daskexec backend {name!r} is installed; installed: "
            f"{', '.join(available_backends())}{install}"
        )


def create_executor(name: str, **options: Any) -> concurrent.futures.Executor:
    """Make a new executor of backend ``name``, passing ``options`` to its factory.

    Raises
    ------
    ValueError
        If no installed package provides ``name``; the message lists what is
        installed and which package to install.
    """
    check_backend(name)
    registry = _registry()
    factory = registry[name]
    if not callable(factory):
        factory = factory.load()
        registry[name] = factory
    executor = factory(**options)
    if not isinstance(executor, concurrent.futures.Executor):
        raise TypeError(
            f"backend {name!r} factory returned {type(executor).__name__}, "
            "not a concurrent.futures.Executor"
        )
    return executor
