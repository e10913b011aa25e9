"""What a Lithops call runs, and how its outcome travels back.

Lithops pickles a call's result with plain ``pickle`` (a lambda, a closure or
a class defined in ``__main__`` cannot travel) and reports the function's
exception through the worker handler, which loses an exception that does not
unpickle and a ``BaseException`` that is neither ``SystemExit`` nor
``KeyboardInterrupt`` (the call then looks like a success without a result).
So every call runs inside :func:`apply` or :func:`call`, which never raise:
they return an *outcome*, ``(True, cloudpickled result)`` or ``(False,
cloudpickled exception, type name, text, traceback)``, a tuple of bytes and
strings that any pickle carries.  The driver turns it back into a result or
an exception with :func:`unwrap`.

An exception goes through :func:`daskexec._serialize.portable_exception`,
which checks where it was raised that its pickle loads back: the original
type when it can be rebuilt, else a :class:`~daskexec.errors.RemoteError`
stand-in.  A result that cannot be pickled is a
:class:`~daskexec.errors.SerializationError`, the call's own deterministic
problem, never an engine failure.
"""

from __future__ import annotations

import contextlib
import pickle
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle

from daskexec._serialize import portable_exception
from daskexec.errors import RemoteError, RemoteTraceback, SerializationError

#: ``(True, result)`` or ``(False, exception, type name, text, traceback)``.
Outcome = tuple[Any, ...]


def apply(fn: Callable[[Any], Any], payload: Any) -> Outcome:
    """Run ``fn(payload)`` and return its outcome (never raises)."""
    try:
        result = fn(payload)
    except BaseException as exc:
        return _failed(exc)
    return _succeeded(fn, result)


def call(blob: bytes) -> Outcome:
    """Run the ``(fn, args, kwargs)`` pickled in ``blob`` and return its outcome."""
    fn: Any = call
    try:
        fn, args, kwargs = pickle.loads(blob)
        result = fn(*args, **kwargs)
    except BaseException as exc:
        return _failed(exc)
    return _succeeded(fn, result)


def _succeeded(fn: Any, result: Any) -> Outcome:
    try:
        return True, cloudpickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
        error = SerializationError(
            f"the result of {name} ({type(result).__qualname__}) cannot be pickled to "
            f"return it from the Lithops call: {type(exc).__name__}: {exc}. Return "
            f"picklable data instead"
        )
        return _failed(error, traceback.format_exc())


def _failed(exc: BaseException, tb: str | None = None) -> Outcome:
    if tb is None:
        tb = traceback.format_exc()
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        _add_note(
            exc,
            f"daskexec-lithops: module {exc.name!r} is not installed in the Lithops "
            f"runtime and was not shipped with the job; install it in the runtime, or "
            f"name it in LithopsExecutor(include_modules=[...])",
        )
    kind = type(exc)
    type_name = f"{kind.__module__}.{kind.__qualname__}"
    try:
        text = str(exc)
    except Exception:
        text = repr(exc.args)
    try:
        blob = cloudpickle.dumps(portable_exception(exc, tb), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        blob = b""
    return False, blob, type_name, text, tb


def _add_note(exc: BaseException, note: str) -> None:
    notes = getattr(exc, "__notes__", None)
    if isinstance(notes, list):
        notes.append(note)
    else:
        with contextlib.suppress(Exception):
            setattr(exc, "__notes__", [note])  # noqa: B010


def is_outcome(value: Any) -> bool:
    """Whether ``value`` is what :func:`apply` and :func:`call` return."""
    return (
        type(value) is tuple
        and (len(value), value[0]) in ((2, True), (5, False))
        and isinstance(value[1], bytes)
    )


def unwrap(outcome: Outcome) -> tuple[bool, Any]:
    """Turn a call's outcome back into ``(True, result)`` or ``(False, exception)``.

    The exception is the call's own (its remote traceback as ``__cause__``),
    a :class:`~daskexec.errors.RemoteError` for one that cannot be rebuilt in
    the driver, or a :class:`~daskexec.errors.SerializationError` for a
    result that cannot be unpickled in the driver.
    """
    if outcome[0]:
        try:
            return True, pickle.loads(outcome[1])
        except Exception as exc:
            unloadable = SerializationError(
                f"the result of a Lithops call cannot be unpickled in the driver: "
                f"{type(exc).__name__}: {exc}"
            )
            unloadable.__cause__ = exc
            return False, unloadable
    _, blob, type_name, text, tb = outcome
    try:
        loaded = pickle.loads(blob)
    except Exception:
        loaded = None
    error = loaded if isinstance(loaded, BaseException) else RemoteError(type_name, text, tb)
    if error.__cause__ is None and tb:
        error.__cause__ = RemoteTraceback(tb)
    return False, error
