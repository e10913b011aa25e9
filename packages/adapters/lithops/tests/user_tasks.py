"""Task functions in a module beside the tests, as a user's project has them.

This folder is on the driver's ``sys.path`` only: Lithops workers can use
these functions only if the executor ships this module to them.
"""

from __future__ import annotations

import time
from typing import Any


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def slow_inc(x: int, delay: float = 0.2) -> int:
    time.sleep(delay)
    return x + 1


def fail(x: Any, message: str = "boom") -> Any:
    raise ValueError(f"{message}: {x}")
