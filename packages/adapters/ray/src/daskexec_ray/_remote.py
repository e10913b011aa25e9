"""What runs in the Ray workers: the trampolines of calls and work items.

Calls
    Every call becomes one Ray task of :func:`_call` (``_call(fn, args,
    kwargs)``); arguments travel as one tuple, so an ``ObjectRef`` inside
    them arrives as a reference, as in any executor.  ``fn`` is pickled with
    cloudpickle (so ``register_pickle_by_value`` applies), once per batch,
    and put in the object store when large (:func:`shippable`).

Errors
    The trampoline catches a call's exception (``BaseException`` included:
    Ray would read ``KeyboardInterrupt`` as a cancellation and
    ``SystemExit`` as a dead worker) and returns it as a :class:`Raised`,
    holding what ``portable_exception`` makes of it: the exception itself
    when its pickle loads back, else rebuilt without its ``__init__``, else
    a :class:`~daskexec.errors.RemoteError` with its type, text and
    traceback.  Left to Ray, an exception that does not unpickle
    (``__init__`` arguments other than ``args``) fails to load in the
    driver and looks like a lost task.

Work items (references)
    A work item runs as one task of :func:`_run_item` with ``num_returns =
    n_outputs + 1``: its status comes to the driver, its outputs stay in the
    object store.  Ray serializes the outputs only after the task returned,
    and stores a value it cannot serialize as an error in that output's
    place: the item would look done and its consumers (or the final fetch)
    fail, naming no one.  So the trampoline serializes each output with
    Ray's serializer first (not the values whose type always serializes) and
    reports the first failure as the failure of the task that produced it, a
    :class:`~daskexec.errors.SerializationError`, with no output stored.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import cloudpickle
import ray

from daskexec._serialize import portable_exception
from daskexec.errors import RemoteTraceback, SerializationError
from daskexec.kit import name_worker
from daskexec_ray._compat import serialize_as_return_value

__all__ = ["Raised", "decode", "remote_call", "remote_item", "shippable"]

# A function whose pickle is larger than this goes to the object store once
# per batch instead of inline with every task.
_PUT_FUNCTION_ABOVE = 64 * 1024

#: Values Ray always stores: nothing to check.
_PLAIN = frozenset({type(None), bool, int, float, complex, str, bytes})


class Raised:
    """What a call raised, returned in place of its result (see "Errors" above).

    ``exc`` holds :func:`~daskexec._serialize.portable_exception`'s stand-in
    for the exception, which loads back as the exception itself, rebuilt, or a
    :class:`~daskexec.errors.RemoteError`; ``tb`` is the remote traceback.
    """

    def __init__(self, exc: BaseException, tb: str) -> None:
        self.exc: Any = portable_exception(exc, tb)
        self.tb = tb

    def exception(self) -> BaseException:
        """The exception to raise in the driver, the remote traceback as its cause."""
        exc: BaseException = self.exc
        with contextlib.suppress(Exception):
            exc.__cause__ = RemoteTraceback(f'\n"""\n{self.tb}"""')
        return exc


def decode(future: Future[Any], value: Any) -> None:
    """Complete ``future`` from what a call's task returned (a :class:`Raised` fails it)."""
    if isinstance(value, Raised):
        future.set_exception(value.exception())
    else:
        future.set_result(value)


def _call(fn: bytes, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return cloudpickle.loads(fn)(*args, **kwargs)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included
        return Raised(exc, traceback.format_exc())


def _run_item(fn: bytes, n_outputs: int, payload: Any, *inputs: Any) -> Any:
    status: Any
    _name_worker()
    try:
        status, outputs = cloudpickle.loads(fn)(payload, *inputs)
        # no outputs at all: the item did not even load (its status says why)
        outputs = tuple(outputs) or (None,) * n_outputs
        if len(outputs) != n_outputs:
            raise ValueError(f"work item returned {len(outputs)} outputs, expected {n_outputs}")
        for i, value in enumerate(outputs):
            try:
                _check_storable(value)
            except Exception as exc:
                status = _output_failure(status, payload, i, value, exc)
                outputs = (None,) * n_outputs
                break
    except BaseException as exc:  # not a task's error: the core catches and reports those
        status, outputs = Raised(exc, traceback.format_exc()), (None,) * n_outputs
    return (status, *outputs) if n_outputs else status


def _check_storable(value: Any) -> None:
    """Raise the pickler's error if Ray cannot store ``value`` as a task's return value.

    Each output is serialized here first, with Ray's own serializer (its
    custom serializers apply), unless its type always serializes.  NumPy
    arrays (and the blocks of pandas objects) go out of band, so checking
    them costs no copy; plain Python objects are pickled twice.
    """
    if type(value) in _PLAIN:
        return
    np = sys.modules.get("numpy")
    if np is not None and type(value) is np.ndarray and not value.dtype.hasobject:
        return
    serialize_as_return_value(value)


def _output_failure(status: bytes, payload: Any, index: int, value: Any, exc: Exception) -> bytes:
    """COMPAT(core): ``status`` as the failure of the task whose output ``index`` Ray cannot store.

    The core names the task behind each output; until it offers a way for an
    engine to report "output ``index`` cannot be stored", this reads its
    internals: the reference payload (``decode_item``'s argument), the work
    item's ``exports``, the status as a cloudpickled ``ItemResult`` and a
    ``TaskFailure`` of stage ``"dump"`` (reported once, never retried), as
    the core's own workers report a result they cannot pickle.
    """
    from daskexec import _serialize
    from daskexec._worker import TaskFailure, decode_item

    key = decode_item(payload).exports[index]
    kind = type(value)
    error = SerializationError(
        f"the result of task {key!r} (a {kind.__module__}.{kind.__qualname__}) cannot be "
        f"serialized to stay in Ray's object store ({type(exc).__name__}: {exc}); return "
        "a picklable value, or register a serializer for its type with "
        "ray.util.register_serializer"
    )
    result = _serialize.loads(status)
    result.failure = TaskFailure(key, error, traceback.format_exc(), "dump")
    result.values = None
    return _serialize.dumps(result)


remote_call = ray.remote(_call)
remote_item = ray.remote(_run_item)


def shippable(fn: Callable[..., Any]) -> Any:
    """``fn`` pickled with cloudpickle: its bytes, or an ``ObjectRef`` to them when large.

    cloudpickle rather than Ray's vendored copy, so that modules a user
    registered with ``cloudpickle.register_pickle_by_value`` travel by value
    here as on every other backend.
    """
    data = cloudpickle.dumps(fn)
    return ray.put(data) if len(data) > _PUT_FUNCTION_ABOVE else data


@functools.cache
def _name_worker() -> None:
    """Name this worker process by its Ray node, once (the records and the timeline show it)."""
    try:
        node = ray.get_runtime_context().get_node_id()
    except Exception:  # pragma: no cover - outside a Ray worker
        return
    name_worker(f"ray node {node[:8]}")
