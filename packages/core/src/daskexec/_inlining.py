"""Slicing tasks run inside their consumer when reading a whole input costs nothing.

Dask expresses a rechunk, a slice or a shuffle of array blocks as ``getitem``
tasks: each takes a piece of one block, and usually only one task consumes
that piece.  Run on its own, such a task reads its block, copies the piece
and writes it to the result store, where its consumer reads it again.  When
the store maps values into the reader's memory (the shared-memory store of
the process pools), reading the whole block costs nothing, so the consumer
can slice it itself: the piece is never written, and one work item and one
store object fewer exist per piece.  Dask's own low-level optimizations did
the same (``inline_functions`` with ``getter`` as a fast function).

Not done where an input is transferred to be read (object storage, another
node's object store, the pickled path): there the piece is what should move.
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Callable, Hashable
from typing import Any

from dask._task_spec import GraphNode, Task

from daskexec._graph import CALL, TASK, Graph, work_of


def _getters() -> frozenset[Callable[..., Any]]:
    found: set[Callable[..., Any]] = {operator.getitem}
    # a graph holding dask.array's slices has imported it: never import it
    # here (a second of NumPy, pandas and xarray for a graph without arrays)
    chunk = sys.modules.get("dask.array.chunk")
    if chunk is not None:
        found.add(chunk.getitem)
    return frozenset(found)


def inline_getters(g: Graph) -> Graph:
    """``g`` with each slicing task that has one consumer fused into that consumer.

    Outputs, annotated tasks, and slices of slices stay as they are; the
    consumer keeps its key, its group and its priority.
    """
    getters = _getters()
    works: set[Hashable] = {work_of(None, f) for f in getters}
    slicing = {n for n, name in enumerate(g.group_names) if name in works}
    if not slicing:
        return g
    absorbed: dict[int, list[int]] = {}
    for t, grp in enumerate(g.group):
        if (
            grp not in slicing
            or g.kinds[t] not in (TASK, CALL)
            or t in g.output_set
            or t in g.annotations
            or len(g.dependents[t]) != 1
        ):
            continue
        node = g.node(t)
        if not isinstance(node, Task) or node.func not in getters:
            continue
        consumer = g.dependents[t][0]
        if g.kinds[consumer] not in (TASK, CALL) or consumer in g.annotations:
            continue
        absorbed.setdefault(consumer, []).append(t)
    # a slice that is itself a consumer of slices stays a task of its own
    slices = {k for ks in absorbed.values() for k in ks}
    for consumer in [c for c in absorbed if c in slices]:
        del absorbed[consumer]
    gone = {k for ks in absorbed.values() for k in ks}
    if not gone:
        return g
    fused: dict[int, GraphNode] = {
        consumer: GraphNode.fuse(*(g.node(k) for k in ks), g.node(consumer))
        for consumer, ks in absorbed.items()
    }
    return g.restricted(gone, fused)
