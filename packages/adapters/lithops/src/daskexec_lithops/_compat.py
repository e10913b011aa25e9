"""What Lithops knows but does not publish: one function per fact.

Each function reads one private name of Lithops, says which and why, and
either fails loudly (naming the Lithops version and the name) or, where the
executor can do without, returns a safe default;
``packages/adapters/lithops/tests/test_lithops_compat.py`` checks every one
against the installed Lithops.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import lithops
from lithops.future import ResponseFuture

__all__ = [
    "ACTIVATION_VARIABLE",
    "activation_id",
    "call_lost",
    "failed_in_handler",
    "tracker",
    "wrap_process_task",
]


def tracker(pool: Any) -> Callable[[list[Any]], list[Future[Any]]]:
    """How ``lithops.concurrent.futures.FunctionExecutor`` turns a job's calls into futures.

    ``FunctionExecutor._track(response_futures)`` (Lithops 3.8) returns one
    ``concurrent.futures.Future`` per ``ResponseFuture`` and watches them;
    its public ``map`` only yields results, in order.  Needed for
    ``submit_many``: raises ``ImportError`` when it is gone.
    """
    track = getattr(pool, "_track", None)
    if not callable(track):
        raise ImportError(
            "daskexec-lithops needs lithops.concurrent.futures.FunctionExecutor._track "
            f"(per-call tracking, lithops 3.8); lithops {lithops.__version__} has none"
        )
    return track  # type: ignore[no-any-return]


def call_lost(lf: Any) -> bool:
    """Whether Lithops lost track of a call (marked done, with no status behind it).

    ``ResponseFuture._state == State.Unknown`` (Lithops 3.8); the public
    ``done`` is true for it too, and for a finished call.  False when the
    attribute is missing.
    """
    return bool(getattr(lf, "_state", None) == ResponseFuture.State.Unknown)


def failed_in_handler(lf: Any) -> bool:
    """Whether a call's failure was reported by Lithops' worker handler, not the function.

    ``ResponseFuture._handler_exception`` (Lithops 3.8) is set when the
    handler, not the function, raised: its process died, or the call ran past
    its execution timeout.  False when the attribute is missing.
    """
    return bool(getattr(lf, "_handler_exception", False))


def wrap_process_task(
    env: Any, wrap: Callable[[Callable[[str], None]], Callable[[str], None]]
) -> bool:
    """Replace what a localhost environment runs for one call by ``wrap(original)``.

    ``ExecutionEnvironment._process_task(task_payload)`` of
    ``lithops.localhost.v2`` (Lithops 3.8) starts the call's process, waits
    for it and removes its task file; the consumer threads call it through
    the instance.  Returns False (and changes nothing) when it is missing.
    """
    original = getattr(env, "_process_task", None)
    if not callable(original):
        return False
    env._process_task = wrap(original)
    return True


#: The environment variable Lithops' worker handler sets to the call's
#: activation id (the platform's request id in the cloud; a fresh id per
#: process on localhost).  Not public: no API gives a call its own id.
ACTIVATION_VARIABLE = "__LITHOPS_ACTIVATION_ID"


def activation_id() -> str:
    """This Lithops call's activation id, or "" outside a Lithops worker."""
    return os.environ.get(ACTIVATION_VARIABLE, "")
