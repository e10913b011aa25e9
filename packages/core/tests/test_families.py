"""Root tasks whose consumers need nothing else run together (``_packing.root_families``)."""

from __future__ import annotations

from collections.abc import Hashable

import dask
import dask.array as da
import numpy as np
from dask.utils import key_split

from daskexec import _graph, _packing
from daskexec.testing.graphs import transpose_sum


def families_of(y: da.Array, workers: int) -> tuple[_graph.Graph, dict[Hashable, list[Hashable]]]:
    """The families of ``y``'s graph, by key (its groups are its layers)."""
    (opt,) = dask.optimize(y)
    g = _graph.prepare(opt.__dask_graph__(), opt.__dask_keys__())
    roots = sorted((i for i, d in enumerate(g.deps) if not d), key=g.priority.__getitem__)
    layers = {name: n for n, name in enumerate({key_split(k) for k in g.keys})}
    group = [layers[key_split(k)] for k in g.keys]
    local = bytes(len(g.keys))
    found = _packing.root_families(roots, group, local, g.dependents, g.deps, workers)
    return g, {g.keys[r]: [g.keys[m] for m in fam] for r, fam in found.items()}


def test_blocks_and_their_transposes_are_families() -> None:
    g, families = families_of(transpose_sum(), workers=2)
    # x[i, j] and x[j, i] for i < j; the diagonal's blocks have one consumer each
    assert len(families) == 8 * 7 // 2
    for fam in families.values():
        assert len(fam) == 2
        (i, j), (k, m) = fam[0][1:], fam[1][1:]
        assert (i, j) == (m, k)
        members = {g.index[k] for k in fam}
        consumers = {c for r in members for c in g.dependents[r]}
        assert all(set(g.deps[c]) == members for c in consumers)


def test_a_root_with_a_consumer_that_needs_more_is_no_family() -> None:
    x = da.random.default_rng(0).random((320, 320), chunks=(40, 40))
    y = da.from_array(np.ones((320, 320)), chunks=(40, 40))  # slices of data in hand
    _, families = families_of((x + x.T + y).sum(), workers=2)
    assert families == {}


def test_too_few_families_to_keep_the_workers_busy() -> None:
    _, families = families_of(transpose_sum(3), workers=2)  # 3 families < 2 per worker
    assert families == {}
    _, families = families_of(transpose_sum(3), workers=1)
    assert len(families) == 3
