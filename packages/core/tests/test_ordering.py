"""Unit tests of the core's ordering: the linear-time forest order against dask.order."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import dask
from dask._task_spec import convert_legacy_graph
from dask.order import order

from daskexec._graph import forest_order
from daskexec.testing.graphs import tree_sum


def _structure(collection: object) -> tuple[dict, dict, dict]:
    dsk = convert_legacy_graph(dict(collection.__dask_graph__()))  # type: ignore[attr-defined]
    deps = {k: frozenset(v.dependencies) for k, v in dsk.items()}
    dependents: dict[Hashable, list[Hashable]] = {k: [] for k in dsk}
    for k, ds in deps.items():
        for d in ds:
            dependents[d].append(k)
    return dsk, deps, dependents


def _forest_order(deps: Mapping, dependents: Mapping) -> dict[Hashable, int] | None:
    """``forest_order`` by key (it works on task numbers)."""
    keys = list(deps)
    index = {k: i for i, k in enumerate(keys)}
    by_number = forest_order(
        [tuple(index[d] for d in deps[k]) for k in keys],
        [tuple(index[d] for d in dependents[k]) for k in keys],
    )
    return None if by_number is None else {k: by_number[i] for i, k in enumerate(keys)}


def _peak_live(priority: Mapping[Hashable, int], deps: Mapping, dependents: Mapping) -> int:
    """Most results held at once when running tasks one by one in ``priority`` order."""
    left = {k: len(v) for k, v in dependents.items()}
    live: set[Hashable] = set()
    peak = 0
    for key in sorted(priority, key=priority.__getitem__):
        live.add(key)
        peak = max(peak, len(live))
        for d in deps[key]:
            left[d] -= 1
            if left[d] == 0:
                live.discard(d)
    return peak


def test_forest_order_is_topological_and_as_lean_as_dask_order() -> None:
    dsk, deps, dependents = _structure(tree_sum(1000))
    ours = _forest_order(deps, dependents)
    assert ours is not None and set(ours) == set(dsk)
    assert all(ours[d] < ours[k] for k, ds in deps.items() for d in ds)
    theirs = order(dsk)
    assert _peak_live(ours, deps, dependents) <= _peak_live(theirs, deps, dependents)


def test_forest_order_declines_shared_inputs() -> None:
    a = dask.delayed(sum)([1, 2])
    both = dask.delayed(lambda x, y: x + y)(a + 1, a + 2)
    _, deps, dependents = _structure(both)
    assert _forest_order(deps, dependents) is None


def test_a_lambda_made_for_every_task_is_one_kind_of_work() -> None:
    """Tasks group by their function's code, so a fresh lambda per task still packs."""
    import daskexec

    n = 2000
    dsk: dict[object, object] = {("inc", i): (lambda x: x + 1, i) for i in range(n)}
    dsk["total"] = (sum, [("inc", i) for i in range(n)])
    s = daskexec.ExecutorScheduler()
    assert s(dsk, "total") == sum(range(1, n + 1))
    assert s.last_stats is not None
    assert s.last_stats.work_items < n // 10, s.last_stats.summary()
