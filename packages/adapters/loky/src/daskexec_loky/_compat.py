"""What loky knows but does not publish: one function per fact.

Each function reads one private attribute, says which and why, and fails
loudly (naming the loky version and the attribute) when it is gone;
``packages/adapters/loky/tests/test_loky_compat.py`` checks every one
against the installed loky.
"""

from __future__ import annotations

from typing import Any

import loky

__all__ = ["executor_workers"]


def executor_workers(ex: loky.ProcessPoolExecutor) -> list[Any]:
    """The worker processes of a loky executor.

    loky keeps a dict of pid to ``Process`` in the private ``_processes``
    (loky 3.x), also after ``shutdown``; there is no public list.
    """
    workers = getattr(ex, "_processes", None)
    if not isinstance(workers, dict):
        raise RuntimeError(
            f"daskexec_loky: loky {loky.__version__}'s executor no longer keeps its worker "
            f"processes in a dict _processes (found {type(workers).__name__}); "
            "daskexec_loky._compat needs updating for this loky version"
        )
    return list(workers.copy().values())
