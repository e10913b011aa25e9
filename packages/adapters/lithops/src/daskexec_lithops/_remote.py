"""What a Lithops call runs: the function, inside an outcome.

Lithops pickles a call's result with plain ``pickle`` (a lambda, a closure
or a class defined in ``__main__`` cannot travel) and reports the function's
exception through its worker handler, which loses an exception that does
not unpickle and a ``BaseException`` other than ``SystemExit`` and
``KeyboardInterrupt`` (the call then looks like a success without a
result).  So every call runs inside :func:`apply` or :func:`call`, which
return an outcome of :mod:`daskexec.kit` (bytes, the result or the portable
exception cloudpickled in the worker) and never raise; the driver settles
the call's future from it with :func:`daskexec.kit.settle`.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from daskexec.kit import name_worker, outcome_of
from daskexec_lithops._compat import activation_id

__all__ = ["apply", "call"]

HINT = (
    "daskexec-lithops: module {name!r} is not installed in the Lithops runtime and was not "
    "shipped with the job; install it in the runtime, or name it in "
    "LithopsExecutor(include_modules=[...])"
)


def apply(fn: Callable[[Any], Any], payload: Any) -> bytes:
    """Run ``fn(payload)``; return its outcome."""
    name_worker(f"lithops {activation_id()}")
    return outcome_of(_hinted, fn, payload)


def call(blob: bytes) -> bytes:
    """Run the ``(fn, args, kwargs)`` cloudpickled in ``blob``; return its outcome."""
    name_worker(f"lithops {activation_id()}")
    return outcome_of(_hinted, _load_and_call, blob)


def _load_and_call(blob: bytes) -> Any:
    fn, args, kwargs = pickle.loads(blob)
    return fn(*args, **kwargs)


def _hinted(fn: Callable[[Any], Any], arg: Any) -> Any:
    """``fn(arg)``; a missing module's error says how to ship it."""
    try:
        return fn(arg)
    except ModuleNotFoundError as exc:
        if exc.name:
            notes = getattr(exc, "__notes__", None)
            if not isinstance(notes, list):
                notes = []
                setattr(exc, "__notes__", notes)  # noqa: B010 - add_note() is 3.11+
            notes.append(HINT.format(name=exc.name))
        raise
