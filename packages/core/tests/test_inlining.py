"""Slicing tasks run inside their consumer where the store maps values (``_inlining``)."""

from __future__ import annotations

import operator

import dask
import numpy as np
from dask._task_spec import Task, TaskRef
from dask.array import chunk

from daskexec import _graph
from daskexec._inlining import inline_getters
from daskexec.testing.graphs import rechunked


def test_a_slice_with_one_consumer_joins_it() -> None:
    y = rechunked()
    (opt,) = dask.optimize(y)
    g = _graph.prepare(opt.__dask_graph__(), opt.__dask_keys__())
    slices = [k for k, n in g.nodes.items() if getattr(n, "func", None) is chunk.getitem]
    assert slices, "the rechunk no longer slices: the test proves nothing"
    inlined = inline_getters(g)
    assert not any(k in inlined.nodes for k in slices)
    outputs = [inlined.keys[i] for i in inlined.outputs]
    assert outputs == [g.keys[i] for i in g.outputs]
    for i, deps in enumerate(inlined.deps):
        assert {inlined.keys[d] for d in deps} == inlined.node(i).dependencies
        for dep in deps:
            assert i in inlined.dependents[dep]
    got = dask.get(dict(inlined.nodes), outputs)
    want = dask.get(dict(g.nodes), outputs)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)


def test_outputs_and_slices_with_several_consumers_stay() -> None:
    dsk = {
        "x": Task("x", np.arange, 10),
        "s": Task("s", operator.getitem, TaskRef("x"), slice(0, 5)),
        "t": Task("t", operator.getitem, TaskRef("x"), slice(5, 10)),
        "a": Task("a", np.sum, TaskRef("s")),
        "b": Task("b", np.max, TaskRef("s")),
        "c": Task("c", np.sum, TaskRef("t")),
    }
    g = _graph.prepare(dsk, ["a", "b", "c", "t"])
    inlined = inline_getters(g)
    assert "s" in inlined.nodes  # two consumers
    assert "t" in inlined.nodes  # an output
    assert inlined is g
