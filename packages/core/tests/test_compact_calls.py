"""Legacy tasks ``(func, *args)`` run as calls, without Dask ``Task`` objects.

A work item carries such a task as ``(key, func, args, refs)``; out of
process, its plan pickles plainly (no Python hook per object) with the
functions as indices in the batch's table.  Results, errors, callbacks and
the travel of user functions must be as with nodes.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import operator
import pickle
import subprocess
import sys
import threading
import types
from collections.abc import Hashable
from typing import Any

import dask
import numpy as np
import pytest
from dask._task_spec import Task
from dask.callbacks import Callback

import daskexec
from daskexec import _graph, _serialize, _worker
from daskexec._packing import make_item


def _mixed_graph() -> dict[Hashable, Any]:
    """Int, str and tuple keys; atoms as arguments; a lambda, a closure, nodes and nesting."""
    offset = 100

    def shift(x: int) -> int:
        return x + offset  # a closure over a local

    dsk: dict[Hashable, Any] = {("x", i): (lambda v: v * 2, i) for i in range(20)}
    dsk.update({f"s-{i}": (shift, ("x", i)) for i in range(20)})
    dsk[7_000] = (sum, [f"s-{i}" for i in range(20)])  # a list argument: not a call
    dsk["atoms"] = (lambda *a: repr(a), 1.5, b"b", None, True, "not-a-key", 2 + 3j, -4)
    dsk["same-key-twice"] = (operator.add, 7_000, 7_000)
    dsk["key-and-atom"] = (operator.sub, "same-key-twice", 0.5)
    dsk["node"] = Task("node", operator.mul, dask._task_spec.TaskRef("key-and-atom"), 3)
    dsk["nested"] = (operator.add, (operator.neg, "node"), 1)  # a nested task: not a call
    dsk["last"] = (max, "nested", ("x", 3))
    return dsk


KEYS = ["last", "atoms", 7_000, ("x", 19), "s-0"]


def test_calls_are_what_legacy_tasks_of_keys_and_atoms_become() -> None:
    dsk = _mixed_graph()
    g = _graph.prepare(dsk, KEYS)
    kinds = {k: g.kinds[i] for i, k in enumerate(g.keys)}
    assert kinds[("x", 0)] == kinds["same-key-twice"] == kinds["atoms"] == _graph.CALL, kinds
    assert kinds[7_000] != _graph.CALL and kinds["nested"] != _graph.CALL, kinds
    i = g.index["same-key-twice"]
    assert g.runnable(i) == ("same-key-twice", operator.add, (7_000, 7_000), (0, 1))
    assert g.runnable(g.index["key-and-atom"])[3] == (0,)
    assert g.runnable(g.index["atoms"])[3] == ()
    assert isinstance(g.node(i), Task) and isinstance(g.nodes["same-key-twice"], Task)
    assert not isinstance(g.runnable(g.index["node"]), tuple)


def test_results_equal_dask_get(scheduler: daskexec.ExecutorScheduler) -> None:
    dsk = _mixed_graph()
    expected = dask.get(dsk, KEYS)
    assert scheduler(dsk, KEYS) == expected


def test_a_failing_call_names_its_key(scheduler: daskexec.ExecutorScheduler) -> None:
    def broken(x: int) -> int:
        raise ValueError(f"broken at {x}")

    for key in [("boom", 3), "boom", 31_337]:
        dsk: dict[Hashable, Any] = {("a", 0): (operator.add, 1, 2), key: (broken, ("a", 0))}
        with pytest.raises(ValueError, match="broken at 3") as info:
            scheduler(dsk, [key])
        assert info.value.dask_key == key, (info.value.dask_key, key)  # type: ignore[attr-defined]
        cause = str(info.value.__cause__)
        assert "in broken" in cause and "_task_spec" not in cause, cause


def test_lambdas_made_per_task_keep_their_closures(scheduler: daskexec.ExecutorScheduler) -> None:
    dsk: dict[Hashable, Any] = {}
    for i in range(30):
        dsk[("plain", i)] = (lambda v: v + 1, i)  # alike: one table entry
        dsk[("closure", i)] = ((lambda j: lambda v: v * j)(i), ("plain", i))
    keys = [("closure", i) for i in range(30)]
    assert list(scheduler(dsk, keys)) == [(i + 1) * i for i in range(30)]


def test_callbacks_see_task_nodes(scheduler: daskexec.ExecutorScheduler) -> None:
    seen: dict[Hashable, Any] = {}

    class Watch(Callback):
        def _pretask(self, key: Hashable, dsk: Any, state: Any) -> None:
            seen[key] = dsk[key]

    dsk: dict[Hashable, Any] = {("x", i): (operator.neg, i) for i in range(5)}
    dsk["t"] = (sum, [("x", i) for i in range(5)])
    with Watch():
        assert scheduler(dsk, "t") == -10
    assert len(seen) == 6 and all(isinstance(n, Task) for n in seen.values()), seen


# -- the wire: plain pickles, functions in the table -------------------------------------


def _item(dsk: dict[Hashable, Any], keys: list[Hashable], data: dict[int, Any]) -> Any:
    g = _graph.prepare(dsk, keys)
    tasks = sorted((i for i in range(len(g)) if i not in data), key=g.priority.__getitem__)
    return make_item(tasks, g, data, set(), False).item


def _encoded(item: Any) -> tuple[bytes, bytes]:
    encoder = _serialize.BatchEncoder()
    blob = _worker.encode_item(encoder, item)
    return encoder.shared(), blob


def test_an_item_of_calls_pickles_without_a_hook_per_object(monkeypatch: Any) -> None:
    calls = []
    original = _serialize._ItemPickler.persistent_id

    def counted(self: Any, obj: Any) -> Any:
        calls.append(type(obj))
        return original(self, obj)

    monkeypatch.setattr(_serialize._ItemPickler, "persistent_id", counted)
    dsk: dict[Hashable, Any] = {("x", i): (operator.add, i, 1) for i in range(50)}
    dsk["total"] = (lambda *a: sum(a), *[("x", i) for i in range(50)])
    item = _item(dsk, ["total"], {})
    shared, blob = _encoded(item)
    assert calls == [], calls[:10]
    assert len(pickle.loads(shared)) == 2
    back = _worker._load(("test-compact", shared, blob))
    assert isinstance(back, _worker.WorkItem)
    assert _worker.run_item(back).values == [sum(i + 1 for i in range(50))]


def test_values_that_are_not_plain_fall_back(monkeypatch: Any) -> None:
    dsk: dict[Hashable, Any] = {"a": (np.arange, 4), "b": (operator.mul, "a", 2 + 1j)}
    dsk["c"] = Task("c", np.sum, dask._task_spec.TaskRef("b"))
    g = _graph.prepare(dsk, ["c"])
    a = g.index["a"]
    rest = sorted((i for i in range(len(g)) if i != a), key=g.priority.__getitem__)
    item = make_item(rest, g, {a: np.arange(4)}, set(), False).item
    shared, blob = _encoded(item)
    back = _worker._load(("test-compact", shared, blob))
    assert isinstance(back, _worker.WorkItem)
    assert _worker.run_item(back).values == [np.sum(np.arange(4) * (2 + 1j))]


# -- user functions travel by value --------------------------------------------------------

SOURCE = """
def triple(x):
    return 3 * x

class Scale:
    def __init__(self, k):
        self.k = k
    def __call__(self, x):
        return self.k * x
"""


def _module(name: str) -> dict[str, Any]:
    """Functions as a script's ``__main__`` or a module only the driver has defines them."""
    namespace: dict[str, Any] = {"__name__": name}
    exec(compile(SOURCE, f"<{name}>", "exec"), namespace)
    if name != "__main__":
        module = types.ModuleType(name)
        module.__dict__.update(namespace)
    return namespace


def test_the_table_holds_main_functions_by_value() -> None:
    main = _module("__main__")
    dsk: dict[Hashable, Any] = {"a": (main["triple"], 2), "b": (main["Scale"], "a")}
    # a callable instance holds data of its own: it travels in its item, not the table
    dsk["c"] = (main["Scale"](5), "a")
    shared, _ = _encoded(_item(dsk, ["b", "c"], {}))
    loader = (
        "import sys, pickle; table = pickle.loads(sys.stdin.buffer.read()); "
        "print(table[0](2), table[1](3).k, any(type(f).__name__ == 'Scale' for f in table))"
    )
    done = subprocess.run(
        [sys.executable, "-c", loader], input=shared, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [b"6", b"3", b"False"], done.stdout


def test_main_and_driver_only_functions_over_a_process_pool() -> None:
    main, other = _module("__main__"), _module("only_in_the_driver_7f3a")
    dsk: dict[Hashable, Any] = {
        ("a", i): (main["triple"] if i % 2 else other["triple"], i) for i in range(8)
    }
    dsk.update({("b", i): (other["Scale"](i), ("a", i)) for i in range(8)})
    dsk["c"] = (main["Scale"](10), ("b", 7))
    keys: list[Hashable] = [*(("b", i) for i in range(8)), "c"]
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        assert daskexec.ExecutorScheduler(pool)(dsk, keys) == dask.get(dsk, keys)


def test_a_function_that_cannot_be_pickled_names_a_task_using_it() -> None:
    from daskexec._transport._submit import encode_batch
    from daskexec.stats import ComputeStats

    lock = threading.Lock()
    dsk: dict[Hashable, Any] = {("ok", 0): (operator.neg, 1)}
    dsk["holds-a-lock"] = (lambda x: (lock, x)[1], ("ok", 0))
    item = _item(dsk, ["holds-a-lock"], {})
    with pytest.raises(daskexec.SerializationError, match="task 'holds-a-lock' cannot be"):
        encode_batch([(item, [("ok", 0), "holds-a-lock"])], "test", ComputeStats())
