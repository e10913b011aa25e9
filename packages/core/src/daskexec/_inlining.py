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
from collections.abc import Callable, Hashable
from typing import Any

from dask._task_spec import GraphNode, Task

from daskexec._graph import Graph, dependents_of


def _getters() -> frozenset[Callable[..., Any]]:
    found: set[Callable[..., Any]] = {operator.getitem}
    try:
        from dask.array import chunk
    except ImportError:  # dask without its array extra
        pass
    else:
        found.add(chunk.getitem)
    return frozenset(found)


def inline_getters(g: Graph) -> Graph:
    """``g`` with each slicing task that has one consumer fused into that consumer.

    Outputs, annotated tasks, and slices of slices stay as they are; the
    consumer keeps its key and its priority.
    """
    getters = _getters()
    absorbed: dict[Hashable, list[Hashable]] = {}
    for key, node in g.nodes.items():
        if (
            key in g.outputs
            or key in g.annotations
            or not isinstance(node, Task)
            or node.func not in getters
            or len(g.dependents[key]) != 1
        ):
            continue
        consumer = g.dependents[key][0]
        target = g.nodes[consumer]
        if not isinstance(target, Task) or consumer in g.annotations:
            continue
        absorbed.setdefault(consumer, []).append(key)
    # a slice that is itself a consumer of slices stays a task of its own
    slices = {k for ks in absorbed.values() for k in ks}
    for consumer in [c for c in absorbed if c in slices]:
        del absorbed[consumer]
    gone = {k for ks in absorbed.values() for k in ks}
    if not gone:
        return g
    nodes = {k: n for k, n in g.nodes.items() if k not in gone}
    dependencies = {k: d for k, d in g.dependencies.items() if k not in gone}
    for consumer, keys in absorbed.items():
        fused: GraphNode = GraphNode.fuse(*(g.nodes[k] for k in keys), g.nodes[consumer])
        nodes[consumer] = fused
        dependencies[consumer] = frozenset(fused.dependencies)
    return Graph(
        nodes=nodes,
        dependencies=dependencies,
        dependents=dependents_of(dependencies),
        priority={k: p for k, p in g.priority.items() if k not in gone},
        outputs=g.outputs,
        annotations=g.annotations,
    )
