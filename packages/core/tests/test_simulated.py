"""The simulated platform: real results, virtual time, and the platform's rules kept."""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import replace

import dask
import dask.array as da
import dask.bag as db
import numpy as np
import pytest
from dask import delayed

import daskexec
from daskexec.testing.simulated import (
    AWS_LAMBDA,
    RAY_CLUSTER,
    Fixed,
    InvocationLost,
    LogNormal,
    SimulatedExecutor,
    spend,
)

#: A platform whose every cost is fixed, so virtual times are exact.
EXACT = replace(
    AWS_LAMBDA,
    name="exact",
    invoke=Fixed(0.5),
    cold_start=Fixed(2.0),
    result=Fixed(0.25),
    invoke_rate=None,
    scale_burst=None,
    scale_rate=None,
    failure_rate=0.0,
    straggler_rate=0.0,
    speed=0.0,  # only spend() costs time
)


def inc(x: int) -> int:
    return x + 1


def add(x: int, y: int) -> int:
    return x + y


def slow_inc(x: int, seconds: float) -> int:
    spend(seconds)
    return x + 1


def tree(n: int) -> tuple[dict[object, object], object]:
    """n independent ``inc`` tasks and a pairwise tree sum over them (a legacy dict graph)."""
    dsk: dict[object, object] = {("x", i): (inc, i) for i in range(n)}
    level: list[object] = [("x", i) for i in range(n)]
    k = 0
    while len(level) > 1:
        nxt: list[object] = []
        for a, b in zip(level[::2], level[1::2], strict=False):
            dsk[("s", k)] = (add, a, b)
            nxt.append(("s", k))
            k += 1
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return dsk, level[0]


@pytest.fixture
def lam() -> SimulatedExecutor:
    ex = SimulatedExecutor(seed=3)
    yield ex
    ex.shutdown()


# -- results are real ---------------------------------------------------------------


def test_tree_graph_result(lam: SimulatedExecutor) -> None:
    dsk, out = tree(200)
    s = daskexec.ExecutorScheduler(lam)
    assert s.get(dsk, out) == sum(range(1, 201))
    run = lam.last_run
    assert run is not None
    assert run.invocations >= s.last_stats.work_items
    assert run.virtual_seconds > 0


def test_collections_results(lam: SimulatedExecutor) -> None:
    s = daskexec.ExecutorScheduler(lam)
    x = da.random.random((400, 300), chunks=(100, 100))
    expected = np.sum(x, axis=1).compute(scheduler="sync")
    np.testing.assert_allclose(np.sum(x, axis=1).compute(scheduler=s), expected)
    y = x.rechunk((300, 40)).sum()
    assert np.isclose(y.compute(scheduler=s), y.compute(scheduler="sync"))
    b = db.from_sequence(range(100), npartitions=7).map(lambda v: v * 2).sum()
    assert b.compute(scheduler=s) == 9900
    assert dask.compute(delayed(add)(delayed(inc)(1), 10), scheduler=s) == (12,)


def test_task_errors_come_back(lam: SimulatedExecutor) -> None:
    def boom(x: int) -> int:
        raise ValueError(f"boom {x}")

    with pytest.raises(ValueError, match="boom 4"):
        dask.compute(delayed(boom)(4), scheduler=daskexec.ExecutorScheduler(lam))


def test_engine_description() -> None:
    ex = SimulatedExecutor("aws-lambda", workers=50)
    try:
        info = daskexec.describe(ex)
        assert info.workers == 50
        assert info.out_of_process
        assert info.call_overhead == AWS_LAMBDA.call_overhead
        assert info.max_inflight == 100
        assert info.name == "simulated-aws-lambda"
        assert "result-store" in info.capabilities
    finally:
        ex.shutdown()
    with pytest.raises(ValueError, match="unknown platform"):
        SimulatedExecutor("aws-lambada")


# -- the clock is virtual, and follows the model ------------------------------------------


def test_fixed_costs_give_exact_virtual_times() -> None:
    ex = SimulatedExecutor(EXACT, follow_driver=False)
    try:
        t0 = ex.now()
        assert ex.submit(slow_inc, 1, 10.0).result() == 2  # cold: 0.5 + 2 + 10 + 0.25
        assert ex.now() - t0 == pytest.approx(12.75)
        t1 = ex.now()
        assert ex.submit(slow_inc, 1, 10.0).result() == 2  # warm: 0.5 + 10 + 0.25
        assert ex.now() - t1 == pytest.approx(10.75)
    finally:
        ex.shutdown()


def test_concurrency_limit_is_kept() -> None:
    ex = SimulatedExecutor(EXACT, workers=10, follow_driver=False)
    try:
        futures = [ex.submit(slow_inc, i, 1.0) for i in range(100)]
        assert [f.result() for f in futures] == list(range(1, 101))
        ex.__daskexec_compute_done__()
        run = ex.last_run
        assert run is not None
        assert run.peak_concurrency == 10, run
        assert run.peak_queued == 90, run
        # ten rounds of 1 s each, after the first round's cold start
        assert run.virtual_seconds == pytest.approx(0.5 + 2.0 + 10 * 1.0 + 0.25)
        assert run.cold_starts == 10
    finally:
        ex.shutdown()


def test_scaling_rate_limits_new_environments() -> None:
    platform = replace(EXACT, scale_burst=5, scale_rate=1.0)
    ex = SimulatedExecutor(platform, workers=20, follow_driver=False)
    try:
        futures = [ex.submit(slow_inc, i, 100.0) for i in range(10)]
        concurrent.futures.wait(futures)
        ex.__daskexec_compute_done__()
        run = ex.last_run
        assert run is not None
        # five environments at once, then one per second: the last starts 5 s late
        assert run.virtual_seconds == pytest.approx(0.5 + 5.0 + 2.0 + 100.0 + 0.25)
    finally:
        ex.shutdown()


def test_same_seed_same_run() -> None:
    platform = replace(
        EXACT,
        invoke=LogNormal(0.2, 1.0),
        cold_start=LogNormal(1.0, 3.0),
        failure_rate=0.05,
        straggler_rate=0.1,
        straggler_slowdown=3.0,
    )

    def one(seed: int) -> tuple[float, int, int, int, int]:
        ex = SimulatedExecutor(platform, seed=seed, workers=20, follow_driver=False)
        try:
            s = daskexec.ExecutorScheduler(ex, pack_size=2, timeout=0)
            tasks = [delayed(slow_inc, pure=True)(i, 1.0 + i % 3) for i in range(60)]
            assert dask.compute(*tasks, scheduler=s) == tuple(range(1, 61))
            run = ex.last_run
            assert run is not None
            return (
                round(run.virtual_seconds, 9),
                run.invocations,
                run.cold_starts,
                run.failures,
                run.stragglers,
            )
        finally:
            ex.shutdown()

    first = one(7)
    assert one(7) == first
    assert one(8) != first


def test_lost_invocations_are_retried() -> None:
    ex = SimulatedExecutor(replace(EXACT, failure_rate=0.3), seed=1, workers=8)
    try:
        s = daskexec.ExecutorScheduler(ex, pack_size=1, retries=20)
        assert dask.compute(*[delayed(inc)(i) for i in range(40)], scheduler=s) == tuple(
            range(1, 41)
        )
        run = ex.last_run
        assert run is not None
        assert run.failures > 0
        assert s.last_stats.retries == run.failures
        assert run.invocations == 40 + run.failures
    finally:
        ex.shutdown()
    lost = SimulatedExecutor(replace(EXACT, failure_rate=0.999), follow_driver=False)
    try:
        with pytest.raises(InvocationLost):
            lost.submit(inc, 1).result()
        assert issubclass(InvocationLost, concurrent.futures.BrokenExecutor)
    finally:
        lost.shutdown()


def test_a_simulated_hour_takes_seconds() -> None:
    # 1,000 workers, 4,000 tasks of 15 simulated minutes each: an hour of work
    ex = SimulatedExecutor(replace(EXACT, concurrency=1000))
    try:
        s = daskexec.ExecutorScheduler(ex, pack_size=1)
        start = time.perf_counter()
        total = dask.compute(*[delayed(slow_inc)(i, 900.0) for i in range(4000)], scheduler=s)
        real = time.perf_counter() - start
        assert sum(total) == sum(range(1, 4001))
        run = ex.last_run
        assert run is not None
        assert run.virtual_seconds >= 3600
        assert run.utilisation > 0.9, run.summary()
        # the clock is virtual: far less real time passed than simulated time
        assert real * 100 < run.virtual_seconds, (real, run.summary())
    finally:
        ex.shutdown()


def test_lower_bounds_hold() -> None:
    # a chain of 8 tasks of 5 s (the critical path) beside 200 tasks of 2 s on 20 workers
    ex = SimulatedExecutor(EXACT, workers=20)
    try:
        s = daskexec.ExecutorScheduler(ex)
        chain = delayed(slow_inc)(0, 5.0)
        for _ in range(7):
            chain = delayed(slow_inc)(chain, 5.0)
        wide = [delayed(slow_inc)(i, 2.0) for i in range(200)]
        t0 = ex.now()
        out = dask.compute(chain, *wide, scheduler=s)
        wall = ex.now() - t0
        assert out[0] == 8
        run = ex.last_run
        assert run is not None
        critical = 8 * 5.0 + 0.5 + 2.0 + 0.25  # one invocation's latency at least
        work = (8 * 5.0 + 200 * 2.0) / 20
        assert run.work_seconds == pytest.approx(8 * 5.0 + 200 * 2.0)
        assert wall >= run.virtual_seconds >= max(critical, work)
    finally:
        ex.shutdown()


def test_driver_cpu_counts_as_virtual_time() -> None:
    ex = SimulatedExecutor(RAY_CLUSTER)
    try:
        t0 = ex.now()
        spin_until = time.thread_time() + 0.2
        while time.thread_time() < spin_until:
            pass
        assert ex.now() - t0 >= 0.2
    finally:
        ex.shutdown()
    frozen = SimulatedExecutor(RAY_CLUSTER, follow_driver=False)
    try:
        t0 = frozen.now()
        sum(range(10**6))
        assert frozen.now() == t0
    finally:
        frozen.shutdown()


# -- the executor contract ------------------------------------------------------------


def test_executor_contract() -> None:
    ex = SimulatedExecutor(EXACT, workers=2)
    assert list(ex.map(inc, range(5))) == [1, 2, 3, 4, 5]
    with pytest.raises(ZeroDivisionError):
        ex.submit(lambda: 1 / 0).result()
    futures = [ex.submit(slow_inc, i, 1.0) for i in range(50)]
    ex.shutdown(wait=True, cancel_futures=True)
    assert all(f.done() for f in futures)
    assert any(f.cancelled() for f in futures)
    assert ex.__daskexec_shut_down__()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(inc, 1)
    ex.shutdown()  # again: nothing happens


def test_spend_sleeps_outside_the_simulator() -> None:
    start = time.perf_counter()
    spend(0.05)
    assert time.perf_counter() - start >= 0.05
    with pytest.raises(ValueError):
        spend(-1)


def test_clock_reaches_every_jump_target() -> None:
    # sums of floats round: the clock must still reach each target exactly
    from daskexec.testing._clock import VirtualClock

    for follow in (True, False):
        clock = VirtualClock(follow_driver=follow)
        clock.watch()
        t = 0.0
        for step in (0.1, 0.2, 1e-9, 0.30000000000000004, 7.7, 1e-12) * 50:
            t += step
            clock.jump_to(t)
            assert clock.now() >= t, (follow, t, clock.now())
