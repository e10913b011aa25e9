"""Checkpoint internals: stored names of keys, nondeterministic keys, what a plan culls."""

from __future__ import annotations

from pathlib import Path

import pytest

from daskexec import _checkpoint, _graph, _store
from daskexec._checkpoint import key_of, name_of, nondeterministic


@pytest.mark.parametrize(
    "key",
    ["x", "a b/c,d@e%", ("x-1f2e", 0), ("x", 3, -4), ("rechunk-merge-abc", 10, 20, 0)],
)
def test_names_round_trip_and_are_safe(key: object) -> None:
    name = name_of(key)  # type: ignore[arg-type]
    assert name is not None and key_of(name) == key
    assert not name.startswith(".") and "/" not in name and "@" not in name


@pytest.mark.parametrize(
    "key",
    [
        "f-21d56543-31e7-4de0-96e1-500621d6f6f8",  # delayed(f)(x): pure=False
        ("f-21d56543-31e7-4de0-96e1-500621d6f6f8", 0),
        "sum-aggregate-finalize-hlgfinalizecompute-e16082ad56de4bf9b6163aef1c23c491",
        ("x", 1.5),  # not a key type we name
        ("x", ("nested",)),
        "x" * 300,  # too long for a file name
        3,
    ],
)
def test_keys_never_checkpointed(key: object) -> None:
    assert name_of(key) is None  # type: ignore[arg-type]


def test_md5_tokens_are_deterministic() -> None:
    assert not nondeterministic("f-e607845b0a330d5b41c0fa3e55657cdf")
    assert nondeterministic(("f-21d56543-31e7-4de0-96e1-500621d6f6f8", 1))


def _inc(x: int) -> int:
    return x + 1


def test_plan_loads_the_frontier_and_culls_behind_it(tmp_path: Path) -> None:
    # a -> b -> c (output), d -> c;  b is stored: a is culled, d runs
    dsk = {"a": (_inc, 1), "b": (_inc, "a"), "d": (_inc, 5), "c": (sum, ["b", "d"])}
    ckpt = _checkpoint.Checkpoint(tmp_path)
    chunks, _ = _store.encode_value(3)
    ckpt.storage.put(name_of("b"), chunks)  # type: ignore[arg-type]
    ckpt.storage.put(name_of("a"), chunks)  # type: ignore[arg-type]
    plan = _checkpoint.plan(_graph.prepare(dsk, "c"), ckpt)
    assert sorted(plan.graph.keys) == ["b", "c", "d"]
    assert plan.loaded == {"b"}
    assert plan.graph.deps[plan.graph.index["b"]] == ()


def test_plan_never_loads_what_a_nondeterministic_key_feeds(tmp_path: Path) -> None:
    u = "f-21d56543-31e7-4de0-96e1-500621d6f6f8"
    dsk = {u: (_inc, 1), "s": (_inc, u)}
    ckpt = _checkpoint.Checkpoint(tmp_path)
    chunks, _ = _store.encode_value(3)
    ckpt.storage.put(name_of("s"), chunks)  # type: ignore[arg-type]
    plan = _checkpoint.plan(_graph.prepare(dsk, "s"), ckpt)
    assert not plan.loaded and plan.tainted == {u, "s"}


def test_directory_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    storage = _checkpoint.DirectoryStorage(str(tmp_path))
    storage.put("sx", [memoryview(b"abc")])
    assert storage.entries() == {"sx": str(tmp_path / "sx")}
    assert storage.temporary() == []
    # a writer that died half-way (pid 2**22 + 1 is not running) is swept
    dead = tmp_path / f".tmp-{_checkpoint._HOST}-{2**22 + 1}-abc"
    dead.write_bytes(b"half")
    assert "sx" in storage.entries() and len(storage.entries()) == 1
    storage.sweep()
    assert not dead.exists()
