"""The reference engine of a :class:`~daskexec_ray.RayExecutor`: results stay in Ray.

``RayExecutor.__daskexec_engine__().references`` implements
:class:`daskexec.engine.ReferenceEngine`: a work item runs as one task with
``num_returns = n_outputs + 1`` (see :mod:`daskexec_ray._remote`); its
status comes to the driver, its outputs stay in the object store on the node
that computed them and go as task arguments straight to the tasks that
consume them.  With ``max_retries > 0`` Ray rebuilds a lost output from its
lineage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import ray

from daskexec_ray._connect import require_ray
from daskexec_ray._remote import remote_item, shippable

if TYPE_CHECKING:
    from daskexec_ray._executor import RayExecutor

__all__ = ["TASK_OPTIONS", "RayReferences"]

#: Options of ``ray.remote(...).options()`` that Dask annotations may set per
#: work item.  Other annotation keys (``priority``, ``retries``, ...) belong
#: to the scheduler or to other engines and are ignored here.
TASK_OPTIONS = frozenset(
    {
        "accelerator_type",
        "label_selector",
        "max_retries",
        "memory",
        "name",
        "num_cpus",
        "num_gpus",
        "placement_group",
        "placement_group_bundle_index",
        "placement_group_capture_child_tasks",
        "resources",
        "retry_exceptions",
        "runtime_env",
        "scheduling_strategy",
    }
)


class RayReferences:
    """The :class:`daskexec.engine.ReferenceEngine` of a :class:`RayExecutor`."""

    def __init__(
        self, executor: RayExecutor, translate: Callable[[BaseException], BaseException]
    ) -> None:
        self._executor = executor
        self._translate = translate
        self._lock = threading.Lock()
        self._last: tuple[Callable[..., Any], Any] | None = None

    def submit_item(
        self,
        fn: Callable[..., tuple[Any, Sequence[Any]]],
        payload: Any,
        inputs: Sequence[Any],
        n_outputs: int,
        options: Mapping[str, Any],
    ) -> tuple[Future[Any], list[Any]]:
        """Run ``fn(payload, *input_values)`` as one Ray task.

        Returns the future of the work item's status and ``n_outputs``
        ``ObjectRef`` of its outputs, which stay in the object store.
        ``options`` (from Dask annotations) override the executor's task
        options; keys that are not Ray task options are ignored, and a
        ``ray_remote_args`` mapping (as ``ray.util.dask`` reads it) is
        merged in.  The status future fails with a ``RayError`` when the
        engine fails (worker or node died, task cancelled).
        """
        ex = self._executor
        ex._check_open()
        remote = remote_item.options(num_returns=n_outputs + 1, **self._task_options(options))
        refs = remote.remote(self._shipped(fn), n_outputs, payload, *inputs)
        if n_outputs == 0:
            refs = [refs]
        return ex._track(refs[0]), list(refs[1:])

    def fetch(self, refs: Sequence[Any]) -> list[Any]:
        """Return the values behind ``refs``, in order (``ray.get``).

        Raises
        ------
        RayEngineError
            If Ray lost a value and could not rebuild it.
        """
        require_ray()
        try:
            return list(ray.get(list(refs)))
        except ray.exceptions.RayError as exc:
            raise self._translate(exc) from exc

    def put(self, value: Any) -> Any:
        """Store ``value`` in Ray's object store; return its ``ObjectRef``."""
        require_ray()
        return ray.put(value)

    def release(self, refs: Sequence[Any]) -> None:
        """Nothing to do: Ray frees an object once no ``ObjectRef`` to it is left.

        This engine keeps no reference of its own to any output, so the
        scheduler's dropping its ``ObjectRef`` objects is the release.
        """

    def _task_options(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        opts = dict(self._executor._options)
        opts.update(overrides.get("ray_remote_args", {}))  # ray.util.dask's annotation
        opts.update({k: v for k, v in overrides.items() if k in TASK_OPTIONS})
        return opts

    def _shipped(self, fn: Callable[..., Any]) -> Any:
        with self._lock:
            if self._last is None or self._last[0] is not fn:
                self._last = (fn, shippable(fn))
            return self._last[1]
