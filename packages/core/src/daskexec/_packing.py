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

A large batch is not cut into items all of one size.  An item is at most
the batch's share for two per worker (*factoring*, Hummel, Schonberg and
Flynn, CACM 35(8), 1992): items shrink as the batch drains, down to one
invocation overhead's worth of work, so that the last items are short and
a slow worker, a straggler, delays the end little; the workers that finish
early take the rest.  Before any measurement, on an engine of at least
``HEDGE_WORKERS`` workers, a batch of at least ``HEDGE`` tasks per worker
goes out in items of a quarter of the spread: the first items cover about
half of it, and the rest is packed from what they measured.  With that
many workers some call of a round is almost surely slow (AWS Lambda's 1%
of slow calls: 63% of rounds of 100 calls, all rounds of 1,000), while on
a few workers one item each is the fewest invocations.

Then each item is closed over its dependents: the only consumer of a task in
the item joins it when its every input is produced inside the item or is
already in hand.  Chains, and the reductions Dask builds over neighbouring
chunks, then run in one invocation, and their intermediate data never leaves
the worker.  A task with several consumers keeps them out: they may run in
parallel elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from daskexec._worker import WorkItem

if TYPE_CHECKING:
    from daskexec._graph import Graph

# The driver's own cost of one work item (building it, handling its result).
DRIVER_ITEM_COST = 5e-5
# Work an item should carry, as a multiple of its invocation overhead.
AMORTIZE = 10.0
# Engines cheaper than this per call are probed with single-task items first.
CHEAP_CALL = 5e-3
# Ready tasks one batch takes at most (an item may hold more): a batch is
# encoded whole before its first item goes, so the first items of a huge
# ready set go out after a small part of it was encoded.
BATCH_TASKS = 8192
# Before any measurement, a batch of this many tasks per worker and more is
# sent in smaller items, about half of it at first (see the module docstring).
HEDGE = 8
HEDGE_WORKERS = 100


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
            if spread < HEDGE or workers < HEDGE_WORKERS:
                return spread
            return math.ceil(spread / 4)
        task_time = typical_time
    task_time = max(task_time, 1e-7)
    p = math.ceil(AMORTIZE * overhead / task_time)
    if p > spread:
        # Not enough work to both amortize the overhead and use every worker:
        # use as many items as the work pays for, at most one per worker.
        worth = max(1, math.floor(ntasks * task_time / overhead))
        p = math.ceil(ntasks / min(worth, workers))
    # factoring: at most half the spread, but at least one overhead of work
    return min(p, max(math.ceil(overhead / task_time), math.ceil(spread / 2)))


#: The most tasks a family of root tasks may hold (see ``root_families``).
FAMILY_LIMIT = 64


def root_families(
    roots: list[int],
    group: Sequence[int],
    local: Sequence[int],
    dependents: Sequence[tuple[int, ...]],
    dependencies: Sequence[tuple[int, ...]],
    workers: int,
) -> dict[int, list[int]]:
    """Root tasks whose consumers need nothing else, grouped to run together.

    Two roots belong to one family when a consumer takes both; a family is
    closed when every consumer of its members takes only roots of that
    family.  Run in one work item with its consumers, a closed family's
    results never leave the worker: no store write and read, or round trip
    through the driver.  A rechunk's source chunks and the merge that takes
    them, or the blocks ``x[i, j]`` and ``x[j, i]`` of ``x + x.T``, are such
    families.  Dask's distributed scheduler co-assigns sibling root tasks to
    one worker for the same reason.

    Tasks are numbers; ``group[t]`` is task ``t``'s group and ``local[t]``
    true for a task the driver runs itself.  A group's families are used only
    when they are at least two per worker (so that every worker stays busy)
    and hold at most :data:`FAMILY_LIMIT` roots.  Returns each family's first
    root (in ``roots``' order) mapped to the family, in that order.
    """
    parent = {r: r for r in roots if not local[r]}

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    open_: set[int] = set()
    seen: set[int] = set()  # each consumer once: a wide reduction takes every root
    for r in parent:
        consumers = dependents[r]
        if not consumers:
            open_.add(r)
        for c in consumers:
            if c in seen:
                continue
            seen.add(c)
            deps = dependencies[c]
            g = group[r]
            if local[c] or any(d not in parent or group[d] != g for d in deps):
                # their values leave anyway: a consumer needs something else
                open_.update(d for d in deps if d in parent)
                continue
            x = find(r)
            for d in deps:
                y = find(d)
                if x != y:
                    parent[y] = x
    members: dict[int, list[int]] = {}
    for r in parent:
        members.setdefault(find(r), []).append(r)
    by_group: dict[int, list[list[int]]] = {}
    for fam in members.values():
        if len(fam) < 2 or len(fam) > FAMILY_LIMIT or any(r in open_ for r in fam):
            continue
        by_group.setdefault(group[fam[0]], []).append(fam)
    families: dict[int, list[int]] = {}
    for fams in by_group.values():
        if len(fams) >= 2 * workers:
            families.update((fam[0], fam) for fam in fams)
    return families


def close_over_dependents(
    members: list[int],
    dependents: Sequence[tuple[int, ...]],
    can_join: Callable[[int], bool],
    missing: Sequence[int],
    limit: int,
    fan_out: bool = False,
) -> list[int]:
    """Add to ``members`` every sole consumer whose inputs are all inside or available.

    ``can_join(task)`` says whether a task may run remotely and is not yet
    placed; ``missing[task]`` counts its inputs not yet in hand, so a
    consumer may join once that many of its inputs are inside (a reduction
    over thousands of inputs is not scanned again for every item).  With
    ``fan_out``, consumers of tasks that have several join too: for an engine
    whose round trip costs far more than the tasks, one more round costs more
    than the parallelism it would buy.  Returns the tasks added, at most
    ``limit``.
    """
    inside = set(members)
    count: dict[int, int] = {}  # consumer -> its inputs inside
    asked: set[int] = set()  # consumers a sole-consumed input (or fan_out) lets join
    added: list[int] = []
    frontier: Iterable[int] = members
    while frontier:
        nxt: list[int] = []
        for key in frontier:
            consumers = dependents[key]
            sole = fan_out or len(consumers) == 1
            for dep in consumers:
                if dep in inside or not can_join(dep):
                    continue
                n = count[dep] = count.get(dep, 0) + 1
                if sole:
                    asked.add(dep)
                if n == missing[dep] and dep in asked:
                    inside.add(dep)
                    added.append(dep)
                    nxt.append(dep)
                    if len(added) >= limit:
                        return added
        frontier = nxt
    return added


class Built(NamedTuple):
    """A work item and, by task number, what it runs, exports and reads by reference."""

    item: WorkItem
    tasks: list[int]
    keys: list[Hashable]
    exports: list[int]
    refs: list[int]


def make_item(
    tasks: list[int],
    g: Graph,
    data: dict[int, Any],
    remote: set[int],
    export_all: bool,
) -> Built:
    """The work item running ``tasks`` (in that order).

    Inputs from outside come from ``data``: values travel in the item, and the
    tasks in ``remote`` (whose data are handles) are listed in ``ref_keys`` for
    the transport to resolve.  Exported: the outputs, what a task outside the
    item consumes, and with ``export_all`` (callbacks want every value)
    everything.  A value used only inside is dropped after its last use.  The
    worker knows tasks by their keys; a legacy ``CALL`` task travels as a call,
    not a node (``Graph.runnables``).
    """
    keys = g.keys
    deps_of = g.deps
    dependents = g.dependents
    outputs = g.output_set
    inside = set(tasks)
    inputs: dict[Hashable, Any] = {}
    refs: dict[int, None] = {}  # ordered set
    for t in tasks:
        for dep in deps_of[t]:
            if dep in inside or dep in refs:
                continue
            if dep in remote:
                refs[dep] = None
            else:
                inputs[keys[dep]] = data[dep]
    exports: list[int] = []
    last_use: dict[int, int] = {}
    for i, t in enumerate(tasks):
        for dep in deps_of[t]:
            if dep in inside:
                last_use[dep] = i
        if export_all or t in outputs or any(d not in inside for d in dependents[t]):
            exports.append(t)
    free_after: list[tuple[Hashable, ...]] = []
    if last_use:
        exported = set(exports)
        frees: list[list[Hashable]] = [[] for _ in tasks]
        for dep, i in last_use.items():
            if dep not in exported:
                frees[i].append(keys[dep])
        free_after = [tuple(f) for f in frees]
    item = WorkItem(
        tasks=g.runnables(tasks),
        inputs=inputs,
        exports=[keys[t] for t in exports],
        free_after=free_after,
        ref_keys=[keys[r] for r in refs],
    )
    return Built(item, tasks, [keys[t] for t in tasks], exports, list(refs))
