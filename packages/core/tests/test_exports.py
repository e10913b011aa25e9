"""The public surface of daskexec, pinned: a change here is a deliberate API change."""

from __future__ import annotations

import daskexec


def test_public_names() -> None:
    assert sorted(daskexec.__all__) == sorted(
        [
            "BackgroundDeleter",
            "CAPABILITIES",
            "Checkpoint",
            "CheckpointError",
            "CheckpointStorage",
            "ComputeStats",
            "DirectoryStorage",
            "EngineFailure",
            "EngineInfo",
            "ExecutorScheduler",
            "GraphCycleError",
            "ItemTimeoutError",
            "MissingKeyError",
            "ReferenceEngine",
            "RemoteError",
            "RemoteTraceback",
            "ResultStore",
            "SerializationError",
            "SharedMemoryStore",
            "StoreClient",
            "__version__",
            "available_backends",
            "collect_stats",
            "create_executor",
            "describe",
            "executor_scheduler",
        ]
    )
    for name in daskexec.__all__:
        assert hasattr(daskexec, name), name


def test_errors_subclass_the_stdlib() -> None:
    import concurrent.futures

    assert issubclass(daskexec.EngineFailure, concurrent.futures.BrokenExecutor)
    assert issubclass(daskexec.MissingKeyError, KeyError)
    assert issubclass(daskexec.MissingKeyError, ValueError)
    assert issubclass(daskexec.SerializationError, TypeError)
    assert issubclass(daskexec.GraphCycleError, ValueError)
    assert issubclass(daskexec.CheckpointError, OSError)
    assert issubclass(daskexec.ItemTimeoutError, daskexec.EngineFailure)


def test_threads_backend_is_built_in() -> None:
    assert "threads" in daskexec.available_backends()
