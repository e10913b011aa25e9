"""The private names ``daskexec_ray._compat`` reads are still there, in this Ray.

Nothing here starts Ray.  When one of these fails, a Ray release changed what
the adapter relies on: the message names the Ray version and the name.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import ray
from ray.job_config import JobConfig

from daskexec_ray import _compat

RAY = ray.__version__


def test_ray_still_serializes_return_values_through_the_global_worker() -> None:
    worker = getattr(getattr(getattr(ray, "_private", None), "worker", None), "global_worker", None)
    context = getattr(worker, "get_serialization_context", None)
    assert callable(context), (
        f"Ray {RAY}: ray._private.worker.global_worker.get_serialization_context is gone; "
        "update daskexec_ray._compat.serialize_as_return_value"
    )
    assert callable(getattr(type(worker), "get_serialization_context", None))


def test_job_config_still_has_the_driver_sys_path() -> None:
    own = getattr(JobConfig(), "_py_driver_sys_path", ...)
    assert own is None or isinstance(own, list), (
        f"Ray {RAY}: JobConfig._py_driver_sys_path is gone or no longer a list (found "
        f"{type(own).__name__}); update daskexec_ray._compat.with_driver_sys_path"
    )
    theirs = JobConfig()
    theirs._py_driver_sys_path = ["/theirs"]
    ours = _compat.with_driver_sys_path(theirs, ["/a", "/b"])
    assert ours is not theirs and theirs._py_driver_sys_path == ["/theirs"], "changed in place"
    assert ours._py_driver_sys_path == ["/b", "/a", "/theirs"], ours._py_driver_sys_path
    assert _compat.with_driver_sys_path(None, ["/a"])._py_driver_sys_path == ["/a"]


def test_a_missing_name_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    class Bare:
        pass

    with pytest.raises(RuntimeError, match=rf"Ray {RAY}.*_py_driver_sys_path"):
        _compat.with_driver_sys_path(Bare(), [])  # type: ignore[arg-type]
    # a Ray without the private worker module, seen by the compat module only
    # (Ray's own global worker stays: a running Ray needs it)
    no_private = SimpleNamespace(__version__=RAY, _private=SimpleNamespace())
    monkeypatch.setattr(_compat, "ray", no_private)
    with pytest.raises(RuntimeError, match=rf"Ray {RAY}.*get_serialization_context"):
        _compat.serialize_as_return_value(1)
