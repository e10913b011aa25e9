"""The private name ``daskexec_loky._compat`` reads is still there, in this loky.

When this fails, a loky release changed what the adapter relies on: the
message names the loky version and the attribute.
"""

from __future__ import annotations

import loky
import pytest

from daskexec_loky import _compat


def test_loky_keeps_its_workers_in_processes() -> None:
    ex = loky.get_reusable_executor(max_workers=1, reuse=False)
    try:
        assert ex.submit(abs, -1).result(timeout=60) == 1
        workers = getattr(ex, "_processes", None)
        assert isinstance(workers, dict), (
            f"loky {loky.__version__}: ProcessPoolExecutor._processes is gone or no longer a "
            f"dict (found {type(workers).__name__}); update "
            "daskexec_loky._compat.executor_workers"
        )
        assert len(_compat.executor_workers(ex)) == 1
    finally:
        ex.shutdown(wait=True)
    assert isinstance(getattr(ex, "_processes", None), dict), "gone after shutdown"


def test_a_missing_name_fails_loudly() -> None:
    with pytest.raises(RuntimeError, match=rf"loky {loky.__version__}.*_processes"):
        _compat.executor_workers(object())  # type: ignore[arg-type]
