"""Connecting to Ray, and giving its workers the driver's import path.

Connection
    ``RayExecutor`` uses whatever Ray this process is connected to.  When
    Ray is not initialised it calls ``ray.init`` itself (:func:`connect`):
    with ``address`` (``"auto"``, ``"ray://host:port"``, ``"host:port"``),
    else with the ``RAY_ADDRESS`` environment variable (how Ray jobs find
    their cluster), else it starts a new local instance (``address="local"``:
    all cores, no dashboard, warnings only).  It never attaches silently to
    a stale cluster that another process left running.  ``shutdown()`` calls
    ``ray.shutdown()`` only if this executor called ``ray.init``: that stops
    a local instance it started and merely disconnects from a cluster it
    joined, which keeps running.

Importing the user's modules
    Ray workers import a task's functions and classes by module name.  Ray
    puts the driver script's directory and the working directory on its
    workers' ``sys.path`` (assuming, as Ray says, the same directory layout
    on every node); a module found anywhere else on the driver's path (a
    directory a program or test runner added to ``sys.path``, an editable
    install) is not importable there.  When this executor calls ``ray.init``
    (not through Ray Client, and unless the job's ``runtime_env`` has a
    ``working_dir``, where Ray adds nothing either), the job's workers get
    every ``sys.path`` directory of the driver that lies outside the Python
    installation, in the driver's order, ahead of their own.  A Ray the
    caller initialised keeps Ray's own rules (``runtime_env`` ``working_dir``
    or ``py_modules`` ship code to a cluster).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import ray

from daskexec_ray._compat import with_driver_sys_path

__all__ = ["connect", "require_ray"]


def require_ray() -> None:
    """Fail unless Ray is initialised: ``ray.get``/``put`` would start a new local Ray."""
    if not ray.is_initialized():
        raise RuntimeError(
            "Ray is no longer initialised in this process (its RayExecutor was shut "
            "down, or ray.shutdown() was called elsewhere); create a new RayExecutor"
        )


def connect(
    address: str | None, init_kwargs: dict[str, Any], task_env: Mapping[str, Any] | None
) -> bool:
    """Make sure Ray is initialised; return whether this call initialised it.

    ``task_env`` is the executor's own ``runtime_env`` for its tasks.
    """
    if ray.is_initialized():
        if init_kwargs:
            raise ValueError(
                "Ray is already initialised in this process, so ray_init_kwargs "
                f"{sorted(init_kwargs)} cannot apply; pass them to your ray.init() "
                "call, or create the RayExecutor before initialising Ray"
            )
        return False
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
    if address == "local":
        kwargs["include_dashboard"] = False
    kwargs.update(init_kwargs)
    job_config = kwargs.get("job_config")
    ships_code = any(
        _has_working_dir(env)
        for env in (kwargs.get("runtime_env"), getattr(job_config, "runtime_env", None), task_env)
    )
    if not address.startswith("ray://") and not ships_code:
        kwargs["job_config"] = with_driver_sys_path(job_config, _driver_import_path())
    ray.init(address=address, **kwargs)
    return True


def _driver_import_path() -> list[str]:
    """The directories this process imports the user's own modules from, in order.

    Every ``sys.path`` entry outside the Python installation (its prefixes
    and user site directory): the script's directory, the working
    directory, ``PYTHONPATH``, directories a program or a test runner added,
    editable installs.  Ray itself gives its workers only the script's
    directory and the working directory.
    """
    import site

    prefixes = {
        os.path.realpath(p)
        for p in (sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix)
    }
    with contextlib.suppress(Exception):
        prefixes.add(os.path.realpath(site.getusersitepackages()))
    paths: list[str] = []
    for entry in sys.path:
        path = os.path.realpath(entry or os.curdir)
        if not os.path.isdir(path) or path in paths:
            continue
        if any(path == p or path.startswith(p + os.sep) for p in prefixes):
            continue
        paths.append(path)
    return paths


def _has_working_dir(runtime_env: Any) -> bool:
    """Whether ``runtime_env`` ships the user's code itself (then Ray adds no path either)."""
    return isinstance(runtime_env, Mapping) and bool(runtime_env.get("working_dir"))
