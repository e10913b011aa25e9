"""How many tasks go into one work item, and which ones.

Every invocation of an executor costs something beyond the work it carries:
microseconds for a thread hand-off, a millisecond for a process pool, half a
second for a serverless call.  A work item therefore carries ``p`` tasks of
one batch, with ``p`` chosen so that the overhead is small against the work
(``p >= 10 * overhead / task_time``) but never so large that fewer items than
workers remain to run in parallel.  Task times are measured per group as
items come back; until a group has been measured, a cheap engine sends it
one task per item (the first results arrive within microseconds and fix
``p``) and an expensive engine uses the mean task time measured so far in
the compute, or, before any measurement, spreads the batch over its workers.

Then each item is closed over its dependents: the only consumer of a task in
the item joins it when its every input is produced inside the item or is
already in hand.  Chains, and the reductions Dask builds over neighbouring
chunks, then run in one invocation, and their intermediate data never leaves
the worker.  A task with several consumers keeps them out: they may run in
parallel elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any

from daskexec._worker import WorkItem

if TYPE_CHECKING:
    from daskexec._graph import Graph

# The driver's own cost of one work item (building it, handling its result).
DRIVER_ITEM_COST = 5e-5
# Work an item should carry, as a multiple of its invocation overhead.
AMORTIZE = 10.0
# Engines cheaper than this per call are probed with single-task items first.
CHEAP_CALL = 5e-3


def pack_size(
    ntasks: int,
    workers: int,
    overhead: float,
    task_time: float | None,
    typical_time: float | None = None,
) -> int:
    """Tasks per work item for a batch of ``ntasks`` tasks.

    ``task_time`` is the measured time per task of this batch's group;
    ``typical_time`` the mean over every task measured so far in the compute,
    which an expensive engine uses for a group not yet measured (each round
    trip costs it a whole invocation, so a guess beats a probe).
    """
    if ntasks <= 1:
        return 1
    overhead = max(overhead, DRIVER_ITEM_COST)
    spread = math.ceil(ntasks / workers)
    if task_time is None:
        if overhead < CHEAP_CALL:
            return 1
        if typical_time is None:
            return spread
        task_time = typical_time
    amortized = math.ceil(AMORTIZE * overhead / max(task_time, 1e-7))
    if amortized <= spread:
        return amortized
    # Not enough work to both amortize the overhead and use every worker:
    # use as many items as the work pays for, at most one per worker.
    worth = max(1, math.floor(ntasks * task_time / overhead))
    return math.ceil(ntasks / min(worth, workers))


#: The most tasks a family of root tasks may hold (see ``root_families``).
FAMILY_LIMIT = 64


def root_families(
    roots: list[Hashable],
    groups: dict[Hashable, Hashable],
    dependents: dict[Hashable, list[Hashable]],
    dependencies: dict[Hashable, frozenset[Hashable]],
    workers: int,
) -> dict[Hashable, list[Hashable]]:
    """Root tasks whose consumers need nothing else, grouped to run together.

    Two roots belong to one family when a consumer takes both; a family is
    closed when every consumer of its members takes only roots of that
    family.  Run in one work item with its consumers, a closed family's
    results never leave the worker: no store write and read, or round trip
    through the driver.  A rechunk's source chunks and the merge that takes
    them, or the blocks ``x[i, j]`` and ``x[j, i]`` of ``x + x.T``, are such
    families.  Dask's distributed scheduler co-assigns sibling root tasks to
    one worker for the same reason.

    A group's families are used only when they are at least two per worker
    (so that every worker stays busy) and hold at most :data:`FAMILY_LIMIT`
    roots.  Returns each family's first root (in ``roots``' order) mapped to
    the family, in that order.
    """
    group_of = {r: groups.get(r) for r in roots}
    parent = {r: r for r in roots if group_of[r] is not None}

    def find(k: Hashable) -> Hashable:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    open_: set[Hashable] = set()
    for r in parent:
        consumers = dependents[r]
        if not consumers:
            open_.add(r)
        for c in consumers:
            deps = dependencies[c]
            if c not in groups or any(d not in parent or group_of[d] != group_of[r] for d in deps):
                open_.add(r)  # its value leaves anyway: a consumer needs something else
                continue
            for d in deps:
                a, b = find(r), find(d)
                if a != b:
                    parent[b] = a
    members: dict[Hashable, list[Hashable]] = {}
    for r in parent:
        members.setdefault(find(r), []).append(r)
    by_group: dict[Hashable, list[list[Hashable]]] = {}
    for fam in members.values():
        if len(fam) < 2 or len(fam) > FAMILY_LIMIT or any(r in open_ for r in fam):
            continue
        by_group.setdefault(group_of[fam[0]], []).append(fam)
    families: dict[Hashable, list[Hashable]] = {}
    for fams in by_group.values():
        if len(fams) >= 2 * workers:
            families.update((fam[0], fam) for fam in fams)
    return families


def close_over_dependents(
    members: list[Hashable],
    dependents: dict[Hashable, list[Hashable]],
    dependencies: dict[Hashable, frozenset[Hashable]],
    can_join: Callable[[Hashable], bool],
    available: Callable[[Hashable], bool],
    limit: int,
    fan_out: bool = False,
) -> list[Hashable]:
    """Add to ``members`` every sole consumer whose inputs are all inside or available.

    ``can_join(key)`` says whether a task may run remotely and is not yet
    placed; ``available(key)`` whether a key's value is already in hand.
    With ``fan_out``, consumers of tasks that have several join too: for an
    engine whose round trip costs far more than the tasks, one more round
    costs more than the parallelism it would buy.  Returns the tasks added,
    at most ``limit``.
    """
    inside = set(members)
    added: list[Hashable] = []
    frontier: Iterable[Hashable] = members
    while frontier and len(added) < limit:
        nxt: list[Hashable] = []
        for key in frontier:
            consumers = dependents[key]
            if len(consumers) != 1 and not fan_out:
                continue
            for dep in consumers:
                if dep in inside or not can_join(dep):
                    continue
                if all(d in inside or available(d) for d in dependencies[dep]):
                    inside.add(dep)
                    added.append(dep)
                    nxt.append(dep)
                    if len(added) >= limit:
                        return added
        frontier = nxt
    return added


def make_item(
    keys: list[Hashable],
    g: Graph,
    data: dict[Hashable, Any],
    remote: set[Hashable],
    export_all: bool,
) -> WorkItem:
    """The work item running ``keys`` (in that order).

    Inputs from outside come from ``data``: values travel in the item, and the
    keys in ``remote`` (whose data are handles) are listed in ``ref_keys`` for
    the transport to resolve.  Exported: the outputs, what a task outside the
    item consumes, and with ``export_all`` (callbacks want every value)
    everything.  A value used only inside is dropped after its last use.
    """
    inside = set(keys)
    inputs: dict[Hashable, Any] = {}
    ref_keys: dict[Hashable, None] = {}  # ordered set
    for key in keys:
        for dep in g.dependencies[key]:
            if dep in inside or dep in inputs or dep in ref_keys:
                continue
            if dep in remote:
                ref_keys[dep] = None
            else:
                inputs[dep] = data[dep]
    exports: list[Hashable] = []
    last_use: dict[Hashable, int] = {}
    for i, key in enumerate(keys):
        for dep in g.dependencies[key]:
            if dep in inside:
                last_use[dep] = i
        if export_all or key in g.outputs or any(d not in inside for d in g.dependents[key]):
            exports.append(key)
    free_after: list[tuple[Hashable, ...]] = []
    if last_use:
        exported = set(exports)
        frees: list[list[Hashable]] = [[] for _ in keys]
        for dep, i in last_use.items():
            if dep not in exported:
                frees[i].append(dep)
        free_after = [tuple(f) for f in frees]
    return WorkItem(
        tasks=[g.nodes[k] for k in keys],
        inputs=inputs,
        exports=exports,
        free_after=free_after,
        ref_keys=list(ref_keys),
    )
