"""Turning what Dask hands a get function into a graph the scheduler can run.

Dask passes an expression, a HighLevelGraph, or a plain dict in the current
task spec or the legacy tuple form.  ``prepare`` keeps only what the
requested keys need, checks that every key a task depends on exists and that
there is no cycle, and computes ``dask.order`` priorities (lower runs first)
for the scheduler's choices.

A graph of a million tasks must cost the driver little more than the graph
itself: tasks are numbered, and what the scheduler keeps per task is a few
integers in flat arrays (dependencies and dependents as tuples of numbers).
Nodes are not copied: a task-spec node is the caller's own object, and a
legacy tuple is converted to one (by Dask's own ``convert_legacy_task``)
only when its work item is built, then dropped with the item.  Telling a
legacy task's dependencies needs no conversion in the common form, a
function and arguments that are keys or plain values (kind ``CALL``), and
running one needs no node either: its work item carries it as a *call*, the
plain tuple ``(key, func, args, refs)`` where ``refs`` lists the positions
of the arguments that are keys (``Graph.runnable``).  Callbacks still see
nodes (``Graph.node``, ``Graph.nodes``).
"""

from __future__ import annotations

import types
from array import array
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dask._task_spec import (
    Alias,
    DataNode,
    GraphNode,
    NestedContainer,
    Task,
    TaskRef,
    _execute_subgraph,
    _identity_cast,
    convert_legacy_task,
)
from dask.core import flatten
from dask.order import order
from dask.utils import key_split

from daskexec.errors import GraphCycleError, MissingKeyError

#: What a task is, as the scheduler sees it (``Graph.kinds``).  ``CALL`` is a
#: task given in the legacy form ``(func, *args)`` with arguments that are keys
#: or plain values: a ``TASK`` whose node is built without Dask's conversion.
TASK, DATA, ALIAS, BOOKKEEPING, FINALIZE, CALL = range(6)

#: A legacy task as a work item runs it: key, function, arguments, positions of keys.
Call = tuple[Hashable, Callable[..., Any], tuple[Any, ...], tuple[int, ...]]

#: Argument types of a legacy task that are plain values unless they are keys.
_ATOMS = frozenset({int, float, bool, str, bytes, type(None), complex})
#: Of those, the ones Dask takes for a key when the graph has that key.
_KEYABLE = frozenset({int, float, bool, str})


@dataclass(eq=False)
class Graph:
    """A culled, validated, ordered task graph; tasks are numbered ``0..n-1``.

    ``keys[i]`` is task ``i``'s key and ``index`` the reverse.  ``deps[i]`` and
    ``dependents[i]`` are tuples of task numbers, ``priority[i]`` its place in
    ``dask.order``, ``kinds[i]`` one of ``TASK`` (or ``CALL``), ``DATA``,
    ``ALIAS``, ``BOOKKEEPING``, ``FINALIZE``, and ``group[i]`` the number of its group in
    ``group_names``: tasks that do the same work (the same function, or for a
    fused task the same layer) with the same annotations.
    """

    keys: list[Hashable]
    index: dict[Hashable, int]
    deps: list[tuple[int, ...]]
    dependents: list[tuple[int, ...]]
    priority: array[int]
    outputs: list[int]
    annotations: dict[int, dict[str, Any]]
    kinds: bytearray
    group: array[int]
    group_names: list[Hashable]
    source: Mapping[Hashable, Any]
    replaced: dict[int, GraphNode] = field(default_factory=dict)
    output_set: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        self.output_set = frozenset(self.outputs)

    def __len__(self) -> int:
        return len(self.keys)

    def node(self, i: int) -> GraphNode:
        """Task ``i`` as a task-spec node (a legacy task is converted anew: not kept)."""
        found = self.replaced.get(i)
        if found is not None:
            return found
        key = self.keys[i]
        if self.kinds[i] == CALL:
            return _call_node(key, self.source[key], self.source)
        return _as_node(key, self.source[key], self.source)

    def runnable(self, i: int) -> GraphNode | Call:
        """What a work item carries to run task ``i``: a call for a ``CALL`` task, else its node."""
        return self.runnables((i,))[0]

    def runnables(self, tasks: Iterable[int]) -> list[GraphNode | Call]:
        """:meth:`runnable` of each of ``tasks``."""
        kinds, replaced, keys, source, deps = (
            self.kinds,
            self.replaced,
            self.keys,
            self.source,
            self.deps,
        )
        out: list[GraphNode | Call] = []
        for i in tasks:
            if kinds[i] == CALL and i not in replaced:
                key = keys[i]
                out.append(compact_call(key, source[key], source, len(deps[i])))
            else:
                out.append(self.node(i))
        return out

    @property
    def nodes(self) -> NodesView:
        """The graph as Dask's callbacks see it: a mapping of key to node."""
        return NodesView(self)

    def annotation(self, i: int) -> dict[str, Any]:
        return self.annotations.get(i) or {}

    def restricted(self, gone: set[int], fused: dict[int, GraphNode]) -> Graph:
        """This graph without the tasks ``gone``, with ``fused`` nodes replacing their tasks'."""
        keep = [i for i in range(len(self.keys)) if i not in gone]
        renumber = {old: new for new, old in enumerate(keep)}
        keys = [self.keys[i] for i in keep]
        index = {k: n for n, k in enumerate(keys)}
        deps: list[tuple[int, ...]] = []
        replaced: dict[int, GraphNode] = {}
        for old in keep:
            node = fused.get(old) or self.replaced.get(old)
            if node is not None:
                replaced[renumber[old]] = node
            if old in fused:
                deps.append(tuple(index[d] for d in fused[old].dependencies))
            else:
                deps.append(tuple(renumber[d] for d in self.deps[old]))
        return Graph(
            keys=keys,
            index=index,
            deps=deps,
            dependents=dependents_of(deps),
            priority=array("q", (self.priority[i] for i in keep)),
            outputs=[renumber[i] for i in self.outputs],
            annotations={renumber[i]: a for i, a in self.annotations.items() if i in renumber},
            kinds=bytearray(self.kinds[i] for i in keep),
            group=array("q", (self.group[i] for i in keep)),
            group_names=self.group_names,
            source=self.source,
            replaced=replaced,
        )


class NodesView(Mapping[Hashable, GraphNode]):
    """Key to node, converting legacy tasks on access (for callbacks and tests)."""

    def __init__(self, graph: Graph) -> None:
        self._g = graph

    def __getitem__(self, key: Hashable) -> GraphNode:
        return self._g.node(self._g.index[key])

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._g.keys)

    def __len__(self) -> int:
        return len(self._g.keys)

    def __contains__(self, key: object) -> bool:
        return key in self._g.index


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


def kind_of(key: Hashable, node: GraphNode) -> int:
    """The scheduler's view of ``node``: one of ``TASK ... FINALIZE``."""
    if isinstance(node, DataNode):
        return DATA
    if isinstance(node, Alias):
        return ALIAS
    if is_bookkeeping(node):
        return BOOKKEEPING
    if is_finalize(key, node):
        return FINALIZE
    return TASK


def work_of(key: Hashable, func: Any) -> Hashable:
    """What kind of work a task does: its function's code, its function, or its layer."""
    if func is None or func is _execute_subgraph:
        return ("layer", key_split(key))
    if isinstance(func, types.FunctionType):
        # one group per piece of code: a lambda made anew for every task
        # (in a loop or a comprehension) is the same work
        return ("code", func.__code__)
    try:
        hash(func)
    except TypeError:
        return ("func", id(func))
    return ("func", func)


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


def _as_node(key: Hashable, value: Any, source: Mapping[Hashable, Any]) -> GraphNode:
    """``value`` (the graph's entry for ``key``) as a node carrying ``key``."""
    if isinstance(value, GraphNode):
        if value.key != key:
            # a node may carry another key than the graph's (graph_manipulation.clone,
            # hand-built graphs): the graph's key is the one results go by
            value = value.copy()  # type: ignore[no-untyped-call]
            value.key = key
        return value  # type: ignore[no-any-return]
    node = convert_legacy_task(key, value, source)  # type: ignore[arg-type]
    if not isinstance(node, GraphNode):
        return DataNode(key, node)
    return node


def _simple_call(value: Any, source: Mapping[Hashable, Any]) -> tuple[Hashable, ...] | None:
    """The dependencies of a legacy ``(func, *args)`` whose arguments are keys or
    plain values (what Dask's conversion makes a ``Task`` of), else None."""
    if type(value) is not tuple or not value or not callable(value[0]):
        return None
    found: list[Hashable] = []
    for a in value[1:]:
        t = type(a)
        if t is tuple:
            try:
                if a in source:
                    found.append(a)
                    continue
            except TypeError:
                pass
            return None  # a nested task or a tuple of values: Dask's conversion decides
        if t not in _ATOMS:
            return None
        if t in _KEYABLE and a in source:
            found.append(a)
    if len(found) > 1:
        return tuple(dict.fromkeys(found))
    return tuple(found)


def _call_node(key: Hashable, value: tuple[Any, ...], source: Mapping[Hashable, Any]) -> Task:
    """The node of a legacy task that ``_simple_call`` accepted: what Dask's conversion
    makes of it, with references to keys as ``TaskRef``."""
    args = [
        TaskRef(a) if (type(a) is tuple or type(a) in _KEYABLE) and a in source else a
        for a in value[1:]
    ]
    return Task(key, value[0], *args)


def compact_call(
    key: Hashable, value: tuple[Any, ...], source: Mapping[Hashable, Any], ndeps: int
) -> Call:
    """The call ``(key, func, args, refs)`` running a legacy task that ``_simple_call``
    accepted, with ``ndeps`` dependencies: ``refs`` are the positions in ``args`` of
    keys (what ``_call_node`` makes ``TaskRef`` of), to be replaced by their values."""
    args = value[1:]
    if not ndeps:
        refs: tuple[int, ...] = ()
    elif ndeps == len(args):  # as many distinct keys as arguments: every one is a key
        refs = _every(ndeps)
    else:
        refs = tuple(
            j
            for j, a in enumerate(args)
            if (type(a) is tuple or type(a) in _KEYABLE) and a in source
        )
    return (key, value[0], args, refs)


_EVERY = [tuple(range(n)) for n in range(8)]


def _every(n: int) -> tuple[int, ...]:
    return _EVERY[n] if n < len(_EVERY) else tuple(range(n))


def prepare(dsk: Any, keys: Any) -> Graph:
    """Cull, number, validate and order ``dsk`` for computing ``keys``."""
    by_key = _annotations(dsk)
    if not isinstance(dsk, Mapping):
        dsk = dsk.__dask_graph__()
    if not isinstance(dsk, dict):
        dsk = dict(dsk)
    source: dict[Hashable, Any] = dsk
    wanted = list(dict.fromkeys(flatten(keys) if isinstance(keys, list) else [keys]))  # type: ignore[no-untyped-call]
    for key in wanted:
        if not _present(key, source):
            raise MissingKeyError(f"requested key {key!r} is not in the graph")

    order_keys: list[Hashable] = []
    index: dict[Hashable, int] = {}
    deps: list[tuple[int, ...]] = []
    kinds = bytearray()
    group = array("q")
    group_names: list[Hashable] = []
    group_ids: dict[Hashable, int] = {}
    replaced: dict[int, GraphNode] = {}

    def number(key: Hashable) -> int:
        i = len(order_keys)
        index[key] = i
        order_keys.append(key)
        return i

    for key in wanted:
        if key not in index:
            number(key)
    i = 0
    while i < len(order_keys):  # breadth-first from the outputs: numbers as found
        key = order_keys[i]
        value = source[key]
        found = _simple_call(value, source)
        if found is not None:
            kind, work = CALL, work_of(key, value[0])
        else:
            node = _as_node(key, value, source)
            if node is not value and isinstance(value, GraphNode):
                replaced[i] = node
            found = tuple(node.dependencies)
            kind = kind_of(key, node)
            work = (
                work_of(key, node.func)
                if isinstance(node, Task) and kind == TASK
                else work_of(key, None)
            )
        ids: list[int] = []
        for dep in found:
            j = index.get(dep)
            if j is None:
                if not _present(dep, source):
                    raise MissingKeyError(
                        f"task {key!r} depends on key {dep!r}, which is not in the graph"
                    )
                j = number(dep)
            ids.append(j)
        deps.append(tuple(ids))
        kinds.append(kind)
        ann = by_key.get(key)
        name: Hashable = (work, repr(sorted(ann.items()))) if ann else work
        g = group_ids.get(name)
        if g is None:
            g = group_ids[name] = len(group_names)
            group_names.append(name)
        group.append(g)
        i += 1

    dependents = dependents_of(deps)
    _check_acyclic(order_keys, deps, dependents)
    priority = forest_order(deps, dependents)
    graph = Graph(
        keys=order_keys,
        index=index,
        deps=deps,
        dependents=dependents,
        priority=priority if priority is not None else array("q"),
        outputs=[index[k] for k in wanted],
        annotations={index[k]: v for k, v in by_key.items() if k in index},
        kinds=kinds,
        group=group,
        group_names=group_names,
        source=source,
        replaced=replaced,
    )
    if priority is None:
        nodes = {k: graph.node(n) for n, k in enumerate(order_keys)}
        by_order: dict[Any, int] = order(nodes)  # type: ignore[arg-type]
        graph.priority = array("q", (by_order[k] for k in order_keys))
    return graph


def _present(key: Hashable, source: Mapping[Hashable, Any]) -> bool:
    """Whether ``key`` is a task of ``source`` (Dask drops a key aliased to itself)."""
    try:
        value = source[key]
    except (KeyError, TypeError):
        return False
    # the type first: comparing a large array with a key would compare every element
    if type(value) is not type(key):
        return True
    try:
        return bool(value != key)
    except Exception:  # an object whose comparison raises is data
        return True


def dependents_of(deps: Sequence[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Each task's consumers, from every task's dependencies."""
    lists: list[list[int]] = [[] for _ in deps]
    for key, ds in enumerate(deps):
        for d in ds:
            lists[d].append(key)
    empty: tuple[int, ...] = ()
    return [tuple(c) if c else empty for c in lists]


def forest_order(
    deps: Sequence[tuple[int, ...]], dependents: Sequence[tuple[int, ...]]
) -> array[int] | None:
    """Depth-first priorities for a graph where every task feeds at most one other.

    On such a graph (independent tasks, chains, the tree reductions of
    ``delayed`` code and bags) ``dask.order`` finishes one subtree before it
    starts the next, and it costs more than running thousands of small
    tasks.  A post-order walk gives the same memory-bounded order in linear
    time: from each final task, inputs are visited largest subtree first,
    ties in the graph's own order.  Returns None for any other graph, which
    then gets ``dask.order``.
    """
    n = len(deps)
    for consumers in dependents:
        if len(consumers) > 1:
            return None
    sinks = [k for k in range(n) if not dependents[k]]
    size = array("q", bytes(8 * n))
    post: list[int] = []
    walk = list(sinks)
    while walk:  # parents before children; reversed, children before parents
        key = walk.pop()
        post.append(key)
        walk.extend(deps[key])
    for key in reversed(post):
        s = 1
        for d in deps[key]:
            s += size[d]
        size[key] = s
    del post
    priority = array("q", bytes(8 * n))
    done = 0
    stack: list[int] = [~k for k in reversed(sinks)]  # ~k: visit k; k: number it
    while stack:
        key = stack.pop()
        if key >= 0:
            priority[key] = done
            done += 1
            continue
        key = ~key
        stack.append(key)
        ds = deps[key]
        if ds:
            if len(ds) > 1:
                ds = tuple(sorted(ds, key=size.__getitem__))  # smallest pushed first, runs last
            stack.extend(~d for d in ds)
    return priority


def _check_acyclic(
    keys: list[Hashable], deps: list[tuple[int, ...]], dependents: list[tuple[int, ...]]
) -> None:
    remaining = array("q", (len(d) for d in deps))
    stack = [k for k, d in enumerate(deps) if not d]
    seen = 0
    while stack:
        key = stack.pop()
        seen += 1
        for dep in dependents[key]:
            remaining[dep] -= 1
            if remaining[dep] == 0:
                stack.append(dep)
    if seen != len(deps):
        stuck = sorted((keys[k] for k, n in enumerate(remaining) if n > 0), key=str)
        raise GraphCycleError(
            f"the graph has a dependency cycle; {len(stuck)} tasks can never run, "
            f"e.g. {', '.join(map(repr, stuck[:5]))}"
        )
