"""Turning what Dask hands a get function into a graph the scheduler can run.

Dask passes an expression, a HighLevelGraph, or a plain dict in the current
task spec or the legacy tuple form.  ``prepare`` converts it to task-spec
nodes, keeps only what the requested keys need, checks that every key a task
depends on exists and that there is no cycle, and computes ``dask.order``
priorities (lower runs first) for the scheduler's choices.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from dask._task_spec import (
    Alias,
    DataNode,
    GraphNode,
    NestedContainer,
    Task,
    _identity_cast,
    convert_legacy_graph,
)
from dask.core import flatten
from dask.order import order

from daskexec.errors import GraphCycleError, MissingKeyError


@dataclass
class Graph:
    """A culled, validated, ordered task graph."""

    nodes: dict[Hashable, GraphNode]
    dependencies: dict[Hashable, frozenset[Hashable]]
    dependents: dict[Hashable, list[Hashable]]
    priority: dict[Hashable, int]
    outputs: set[Hashable]
    annotations: dict[Hashable, dict[str, Any]]


def is_finalize(key: Hashable, node: GraphNode) -> bool:
    """Whether ``node`` is the task Dask adds to assemble a collection's result.

    Its inputs are the collection's partitions and its output goes to the
    caller: when results come back to the driver anyway, running it there
    saves a round trip of all the data (and, on a serverless engine, a whole
    invocation).  Recognised exactly, as Dask builds it: a ``finalize-`` key,
    a function of Dask's own (the collection's ``__dask_postcompute__``) and
    the collection's keys as its first argument.  A user's function that
    happens to be called ``finalize`` is a task like any other.
    """
    if not (isinstance(key, str) and key.startswith("finalize-")):
        return False
    if not isinstance(node, Task) or isinstance(node, NestedContainer):
        return False
    module = getattr(node.func, "__module__", None) or ""
    if not (module == "dask" or module.startswith("dask.")):
        return False
    args = node.args
    return bool(args) and isinstance(args[0], NestedContainer) and is_bookkeeping(args[0])


def is_bookkeeping(node: GraphNode) -> bool:
    """Whether ``node`` only rearranges data (literal, alias, container of references).

    A container holding a task (``{"b": [(work, 1), (work, 2)]}``) is real
    work, not bookkeeping.
    """
    if isinstance(node, (DataNode, Alias)):
        return True
    if isinstance(node, NestedContainer) or (
        isinstance(node, Task) and node.func is _identity_cast
    ):
        return not any(_holds_work(a) for a in node.args) and not any(
            _holds_work(v) for v in node.kwargs.values()
        )
    return False


def _holds_work(arg: Any) -> bool:
    if isinstance(arg, (NestedContainer,)) or (
        isinstance(arg, Task) and arg.func is _identity_cast
    ):
        return not is_bookkeeping(arg)
    return isinstance(arg, Task)


def _annotations(dsk: Any) -> dict[Hashable, dict[str, Any]]:
    get = getattr(dsk, "__dask_annotations__", None)
    if get is None or isinstance(dsk, Mapping):
        return {}
    try:
        by_name = get()
    except Exception:  # an expression that cannot report annotations has none
        return {}
    per_key: dict[Hashable, dict[str, Any]] = {}
    for name, values in (by_name or {}).items():
        if not isinstance(values, Mapping):
            continue
        for key, value in values.items():
            per_key.setdefault(key, {})[name] = value
    return per_key


def prepare(dsk: Any, keys: Any) -> Graph:
    """Convert, cull, validate and order ``dsk`` for computing ``keys``."""
    annotations = _annotations(dsk)
    if not isinstance(dsk, Mapping):
        dsk = dsk.__dask_graph__()
    full: dict[Hashable, GraphNode] = convert_legacy_graph(dsk)
    for key, node in full.items():
        if node.key != key:
            # a node may carry another key than the graph's (graph_manipulation.clone,
            # hand-built graphs): the graph's key is the one results go by
            node = node.copy()  # type: ignore[no-untyped-call]
            node.key = key
            full[key] = node
    outputs = set(flatten(keys)) if isinstance(keys, list) else {keys}  # type: ignore[no-untyped-call]
    for key in outputs:
        if key not in full:
            raise MissingKeyError(f"requested key {key!r} is not in the graph")

    nodes: dict[Hashable, GraphNode] = {}
    dependencies: dict[Hashable, frozenset[Hashable]] = {}
    stack = list(outputs)
    while stack:
        key = stack.pop()
        if key in nodes:
            continue
        node = full[key]
        nodes[key] = node
        deps = node.dependencies
        dependencies[key] = deps
        for dep in deps:
            if dep not in nodes:
                if dep not in full:
                    raise MissingKeyError(
                        f"task {key!r} depends on key {dep!r}, which is not in the graph"
                    )
                stack.append(dep)

    dependents = dependents_of(dependencies)
    _check_acyclic(dependencies, dependents)
    priority = forest_order(dependencies, dependents)
    if priority is None:
        priority = order(nodes, dependencies=dependencies)  # type: ignore[arg-type,assignment]
    return Graph(
        nodes=nodes,
        dependencies=dependencies,
        dependents=dependents,
        priority=priority,  # type: ignore[arg-type]
        outputs=outputs,
        annotations={k: v for k, v in annotations.items() if k in nodes},
    )


def dependents_of(
    dependencies: Mapping[Hashable, frozenset[Hashable]],
) -> dict[Hashable, list[Hashable]]:
    """Each key's consumers, from every key's dependencies."""
    dependents: dict[Hashable, list[Hashable]] = {key: [] for key in dependencies}
    for key, deps in dependencies.items():
        for dep in deps:
            dependents[dep].append(key)
    return dependents


def forest_order(
    dependencies: Mapping[Hashable, frozenset[Hashable]],
    dependents: Mapping[Hashable, list[Hashable]],
) -> dict[Hashable, int] | None:
    """Depth-first priorities for a graph where every task feeds at most one other.

    On such a graph (independent tasks, chains, the tree reductions of
    ``delayed`` code and bags) ``dask.order`` finishes one subtree before it
    starts the next, and it costs more than running thousands of small
    tasks.  A post-order walk gives the same memory-bounded order in linear
    time: from each final task, inputs are visited largest subtree first,
    ties in the graph's own order.  Returns None for any other graph, which
    then gets ``dask.order``.
    """
    for consumers in dependents.values():
        if len(consumers) > 1:
            return None
    size: dict[Hashable, int] = {}
    walk: list[Hashable] = [k for k, c in dependents.items() if not c]
    post: list[Hashable] = []
    while walk:  # children before parents, to size every subtree
        key = walk.pop()
        post.append(key)
        walk.extend(dependencies[key])
    for key in reversed(post):
        size[key] = 1 + sum(size[d] for d in dependencies[key])
    priority: dict[Hashable, int] = {}
    sinks = [k for k, c in dependents.items() if not c]
    stack: list[tuple[Hashable, bool]] = [(k, False) for k in reversed(sinks)]
    while stack:
        key, expanded = stack.pop()
        if expanded:
            priority[key] = len(priority)
            continue
        stack.append((key, True))
        deps = dependencies[key]
        if deps:
            ordered = sorted(deps, key=size.__getitem__)  # smallest pushed first, runs last
            stack.extend((d, False) for d in ordered)
    return priority


def _check_acyclic(
    dependencies: dict[Hashable, frozenset[Hashable]],
    dependents: dict[Hashable, list[Hashable]],
) -> None:
    remaining = {key: len(deps) for key, deps in dependencies.items()}
    stack = [key for key, n in remaining.items() if n == 0]
    seen = 0
    while stack:
        key = stack.pop()
        seen += 1
        for dep in dependents[key]:
            remaining[dep] -= 1
            if remaining[dep] == 0:
                stack.append(dep)
    if seen != len(dependencies):
        stuck = sorted((k for k, n in remaining.items() if n > 0), key=str)
        raise GraphCycleError(
            f"the graph has a dependency cycle; {len(stuck)} tasks can never run, "
            f"e.g. {', '.join(map(repr, stuck[:5]))}"
        )
