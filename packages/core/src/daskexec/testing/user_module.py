"""A user's own module: the suite copies it beside the driver under a fresh name.

Users keep task functions and classes in modules next to their script, on
the driver's ``sys.path`` and installed nowhere.  The suite's own modules
are installed with daskexec, so the plugin writes this file's source into a
temporary folder as ``user_tasks_<token>.py``, prepends that folder to
``sys.path`` before the session's executor starts (as a script's folder
is), and tests import it from there: an executor must bring such a module
to its workers, or give them the driver's path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Point:
    """A user class as a result, an argument and an attribute holder."""

    def __init__(self, x: float, y: float) -> None:
        self.x = x
        self.y = y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    def __hash__(self) -> int:
        return hash((self.x, self.y))

    def __repr__(self) -> str:
        return f"Point({self.x}, {self.y})"


class UserError(Exception):
    """An exception class the workers know only through this module."""


def make_point(i: int) -> Point:
    return Point(i, 2 * i)


def shift(p: Point, by: float) -> Point:
    return Point(p.x + by, p.y + by)


def norm1(p: Point) -> float:
    return abs(p.x) + abs(p.y)


def make_adder(n: int) -> Callable[[int], int]:
    """A closure as a result."""

    def add(x: int) -> int:
        return x + n

    return add


def apply(f: Callable[[int], int], x: int) -> int:
    return f(x)


def explode(x: Any) -> Any:
    raise UserError(f"user error at {x}")
