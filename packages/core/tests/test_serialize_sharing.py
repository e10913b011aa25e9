"""A batch's table holds one function for lambdas that would behave alike (``_serialize``)."""

from __future__ import annotations

import pickle
from typing import Any

from daskexec._serialize import BatchEncoder, loads_item


def _roundtrip(objs: list[Any]) -> tuple[int, list[Any]]:
    enc = BatchEncoder()
    blobs = [enc.encode(o) for o in objs]
    shared = enc.shared()
    table = pickle.loads(shared)
    return len(table), [loads_item("test", shared, b) for b in blobs]


def test_a_lambda_made_per_task_travels_once() -> None:
    funcs = [lambda x: x + 1 for _ in range(50)]
    n, back = _roundtrip(funcs)
    assert n == 1
    assert [f(i) for i, f in enumerate(back)] == [i + 1 for i in range(50)]


def test_closures_and_defaults_keep_their_own_values() -> None:
    with_closure = []
    for i in range(5):
        with_closure.append((lambda j: lambda x: x + j)(i))
    with_default = [lambda x, i=i: x * i for i in range(5)]
    n, back = _roundtrip(with_closure + with_default)
    assert n == 10
    assert [f(10) for f in back] == [10, 11, 12, 13, 14, 0, 10, 20, 30, 40]


def test_a_function_with_attributes_is_its_own() -> None:
    def make() -> Any:
        def f(x: int) -> int:
            return x + f.step  # type: ignore[attr-defined,no-any-return]

        return f

    a, b = make(), make()
    a.step, b.step = 1, 2
    n, back = _roundtrip([a, b])
    assert n == 2
    assert [f(0) for f in back] == [1, 2]
