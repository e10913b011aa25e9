"""The numbered graph (``_graph.prepare``) reads legacy tasks exactly as Dask does."""

from __future__ import annotations

from operator import add
from typing import Any

import dask
import pytest

import daskexec
from daskexec import _graph
from daskexec.errors import MissingKeyError


def inc(x: int) -> int:
    return x + 1


# each graph, computed for "out", by daskexec and by dask.get
GRAPHS: dict[str, dict[Any, Any]] = {
    "int key as an argument": {1: 10, "out": (add, 1, 5)},
    "True where key 1 exists": {1: 10, "out": (add, True, 5)},
    "float key": {1.5: 2, "out": (inc, 1.5)},
    "string that is not a key": {"out": (str.upper, "hello")},
    "bytes equal to a key's text": {"a": 1, "out": (len, b"a")},
    "nested task": {"a": 1, "out": (add, (inc, "a"), 1)},
    "tuple of values": {"out": (len, (1, 2, 3))},
    "tuple key": {("x", 0): 3, "out": (inc, ("x", 0))},
    "list of keys": {"a": 1, "b": 2, "out": (sum, ["a", "b"])},
    "same key twice": {"a": 4, "out": (add, "a", "a")},
    "alias": {"a": 4, "b": (inc, "a"), "out": "b"},
    "dict argument": {"a": 4, "out": (dict, {"k": "a"})},
    "None and complex": {"out": (lambda x, y: (x, y), None, 1j)},
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_legacy_forms_compute_as_in_dask(name: str) -> None:
    dsk = GRAPHS[name]
    assert daskexec.ExecutorScheduler("threads")(dsk, "out") == dask.get(dsk, "out")


def test_simple_calls_are_not_converted_when_prepared() -> None:
    dsk = {("x", i): (inc, i) for i in range(100)}
    dsk["total"] = (sum, [("x", i) for i in range(100)])  # type: ignore[assignment]
    g = _graph.prepare(dsk, "total")
    simple = [i for i, k in enumerate(g.keys) if k != "total"]
    assert all(g.kinds[i] == _graph.CALL for i in simple)
    assert g.kinds[g.index["total"]] == _graph.TASK
    assert not g.replaced  # nothing converted is kept
    node = g.node(g.index[("x", 3)])
    assert node.key == ("x", 3) and node({}) == 4


def test_a_key_aliased_to_itself_is_not_in_the_graph() -> None:
    with pytest.raises(MissingKeyError):
        _graph.prepare({"a": "a", "b": (inc, 1)}, "a")
    with pytest.raises(MissingKeyError, match="'a'"):
        _graph.prepare({"a": "a", "b": (inc, "a")}, "b")


def test_numbering_and_dependents() -> None:
    dsk = {"a": 1, "b": (inc, "a"), "c": (add, "a", "b"), "unused": (inc, 5)}
    g = _graph.prepare(dsk, "c")
    assert set(g.keys) == {"a", "b", "c"}
    a, b, c = (g.index[k] for k in "abc")
    assert set(g.deps[c]) == {a, b} and g.deps[b] == (a,) and g.deps[a] == ()
    assert set(g.dependents[a]) == {b, c} and g.dependents[c] == ()
    assert g.priority[a] < g.priority[b] < g.priority[c]
    assert [g.keys[i] for i in g.outputs] == ["c"]
    assert dict(g.nodes)["c"].dependencies == {"a", "b"}
