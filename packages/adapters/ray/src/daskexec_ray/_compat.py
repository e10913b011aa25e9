"""What Ray knows but does not publish: one function per fact.

Each function reads one private name of Ray, says which and why, and fails
loudly (naming the Ray version and the name) when it is gone;
``packages/adapters/ray/tests/test_ray_compat.py`` checks every one against
the installed Ray without starting it.
"""

from __future__ import annotations

import copy
from typing import Any

import ray
from ray.job_config import JobConfig

__all__ = ["serialize_as_return_value", "with_driver_sys_path"]


def _gone(name: str, found: object) -> RuntimeError:
    return RuntimeError(
        f"daskexec_ray: Ray {ray.__version__} no longer has {name} (found "
        f"{type(found).__name__}); daskexec_ray._compat needs updating for this Ray version"
    )


def serialize_as_return_value(value: Any) -> None:
    """Serialize ``value`` as Ray serializes a task's return value; raise its error.

    Ray has no public call for this; ``ray._private.worker.global_worker``'s
    ``get_serialization_context().serialize`` is what its task-return path
    uses (Ray 2.60).  Only called inside a Ray worker.
    """
    worker = getattr(getattr(ray, "_private", None), "worker", None)
    global_worker = getattr(worker, "global_worker", None)
    context = getattr(global_worker, "get_serialization_context", None)
    if not callable(context):
        raise _gone("ray._private.worker.global_worker.get_serialization_context", context)
    context().serialize(value)


def with_driver_sys_path(job_config: JobConfig | None, paths: list[str]) -> JobConfig:
    """A ``JobConfig`` whose workers put ``paths`` first on ``sys.path``.

    ``JobConfig._py_driver_sys_path`` is the field ``ray.init`` itself fills
    with the script's directory and the working directory (Ray 2.60); each
    worker inserts its entries at the front of ``sys.path``, one by one,
    hence the reversed order.  A ``job_config`` of the caller is copied,
    not changed.
    """
    job_config = JobConfig() if job_config is None else copy.copy(job_config)
    own = getattr(job_config, "_py_driver_sys_path", ...)
    own = [] if own is None else own
    if not isinstance(own, list):
        raise _gone("JobConfig._py_driver_sys_path (a list)", own)
    job_config._py_driver_sys_path = [*reversed(paths), *own]
    return job_config
