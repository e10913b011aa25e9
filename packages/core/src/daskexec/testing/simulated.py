"""A simulated serverless platform or cluster, with a virtual clock.

:class:`SimulatedExecutor` is a ``concurrent.futures.Executor`` that runs
every call for real, in one thread of this process (results are real and
correct), but *when* each call starts and when its future completes follow
a model of a platform with, say, a thousand workers: invocation latency and
cold starts drawn from distributions, a concurrency limit (extra invocations
queue), limits on how fast invocations and new execution environments
start, lost invocations, and stragglers (see :mod:`daskexec.testing._platforms`
for the profiles and the sources of their numbers).  Time is virtual, so a
simulated hour of a thousand workers runs in seconds.

It speaks the same engine protocol as the real adapters
(``__daskexec_engine__``, ``submit_many``, ``__daskexec_shut_down__``,
``__daskexec_compute_done__``), so the daskexec scheduler plans for it as
for Lithops on AWS Lambda or a Ray cluster, and cannot tell it apart.

How time passes
---------------
The virtual clock (:mod:`daskexec.testing._clock`) advances with the
driver's own CPU time, and jumps to the next simulated event whenever the
driver idles.  So the simulated wall time contains the driver's real
dispatch cost, and shows where the driver, not the platform, is the
bottleneck.

Each call goes through these events (all in virtual time)::

    submit ──invoke rate──> request ──invoke latency──> arrival
    arrival ──concurrency slot (FIFO)──> admitted
    admitted ──warm environment, or a new one (scaling limit) + cold start──> start
    start: the call runs for real, its CPU time is measured
    start + run time x speed (x slowdown if a straggler) ──> end (slot freed)
    end ──result latency──> the future completes

A lost invocation (``failure_rate``) ends at a random point of its run and
its future fails with :class:`InvocationLost` (an engine failure: the
scheduler retries the work item); its environment is gone.

The driver is idle when every driver thread has spent no CPU time over a
short real interval, none is running (Linux: ``/proc``), no call was
submitted meanwhile, and every future completed has been looked at
(``result()``/``exception()``) or was completed long enough ago.

Caveats
-------
- A call's run time is its CPU time in the simulator thread: a call that
  sleeps or waits costs no virtual time (use :func:`spend` to give a task a
  simulated cost).  Calls run one at a time, in the order they start.
- A work item times its own run with the call's simulated run time (its
  CPU time at the platform's speed, plus :func:`spend`, times a straggler's
  slowdown), so the scheduler packs work from what it costs on the
  platform; but the items' timestamps (``ComputeStats.items``) and the
  scheduler's own clock (backups, ``item_timeout``) are real time.
- The scheduler's batching ``timeout`` is real time: while the driver waits
  on it, the clock may jump past events the real driver would have waited
  less for.
"""

from __future__ import annotations

import collections
import concurrent.futures
import heapq
import itertools
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from daskexec import _worker
from daskexec.engine import EngineInfo
from daskexec.kit import EagerMap
from daskexec.testing._clock import VirtualClock
from daskexec.testing._platforms import (
    AWS_LAMBDA,
    LITHOPS_LOCALHOST,
    PLATFORMS,
    RAY_CLUSTER,
    Distribution,
    Fixed,
    LogNormal,
    Platform,
    Uniform,
)

__all__ = [
    "AWS_LAMBDA",
    "LITHOPS_LOCALHOST",
    "PLATFORMS",
    "RAY_CLUSTER",
    "Distribution",
    "Fixed",
    "InvocationLost",
    "LogNormal",
    "Platform",
    "SimulatedExecutor",
    "SimulatedRun",
    "Uniform",
    "spend",
]

T = TypeVar("T")

#: Real seconds the driver must stay idle before the clock jumps.
IDLE_POLL = 0.0005
#: Driver CPU seconds over one poll that still count as idle.
IDLE_CPU = 2e-5
#: Real seconds after which a completed future that nobody looked at no
#: longer holds the clock (a caller using ``wait()`` or callbacks only).
UNSEEN_GRACE = 0.02


class InvocationLost(concurrent.futures.BrokenExecutor):
    """The simulated platform lost this invocation (a crashed or timed-out function).

    The daskexec scheduler treats it as an engine failure and sends the work
    item again; the executor keeps taking work.
    """


_task = threading.local()


def spend(seconds: float) -> None:
    """Cost ``seconds`` of simulated time in the calling task.

    Inside a :class:`SimulatedExecutor` call, the invocation's virtual run
    time grows by ``seconds`` and no real time passes; anywhere else this
    sleeps for ``seconds``, so the same task runs on a real executor.
    The work item's own timing (what the scheduler packs from) includes it.
    """
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds!r}")
    extra = getattr(_task, "extra", None)
    if extra is None:
        time.sleep(seconds)
    else:
        _task.extra = extra + seconds


def _call_clock() -> float:
    """Seconds of the running call in simulated time; real time outside a call.

    Installed as the work items' clock (``daskexec._worker.item_clock``).
    """
    extra = getattr(_task, "extra", None)
    if extra is None:
        return time.perf_counter()
    cpu: float = (time.thread_time() - _task.cpu0) * _task.speed
    return (cpu + extra) * _task.slowdown  # type: ignore[no-any-return]


@dataclass
class SimulatedRun:
    """What the simulated platform did between two computes (all times virtual seconds).

    A run starts with the first call submitted after the previous compute
    ended and ends when the scheduler reports the compute done
    (``__daskexec_compute_done__``), or at :meth:`SimulatedExecutor.run_stats`.
    """

    platform: str
    workers: int
    #: virtual time of the first submission and of the last completion
    started: float = 0.0
    ended: float = 0.0
    invocations: int = 0
    cold_starts: int = 0
    failures: int = 0
    stragglers: int = 0
    peak_concurrency: int = 0
    peak_queued: int = 0
    #: seconds the calls ran (slowdowns included), and their measured work alone
    busy_seconds: float = 0.0
    work_seconds: float = 0.0
    #: seconds calls spent between submission and start: waiting for the
    #: invoker, for a slot, for a new environment; invoke latency; cold starts
    waiting_seconds: float = 0.0
    invoke_seconds: float = 0.0
    cold_seconds: float = 0.0
    #: seconds between the end of a call and its future completing
    result_seconds: float = 0.0
    #: the driver threads' CPU time, and the real time, during the run
    driver_cpu: float = 0.0
    real_seconds: float = 0.0
    #: how often, and by how much, the clock jumped while the driver idled
    jumps: int = 0
    jumped: float = 0.0
    _cpu0: float = field(default=0.0, repr=False)
    _real0: float = field(default=0.0, repr=False)
    _jumps0: int = field(default=0, repr=False)
    _jumped0: float = field(default=0.0, repr=False)

    @property
    def virtual_seconds(self) -> float:
        """Virtual wall time from the first submission to the last completion."""
        return max(0.0, self.ended - self.started)

    @property
    def utilisation(self) -> float:
        """Busy worker-seconds over ``workers`` x :attr:`virtual_seconds`."""
        span = self.virtual_seconds
        return self.busy_seconds / (self.workers * span) if span > 0 else 0.0

    def summary(self) -> str:
        """One paragraph for a report."""
        return (
            f"{self.platform}: {self.virtual_seconds:.3f} s virtual ({self.real_seconds:.2f} s "
            f"real), {self.invocations} invocations ({self.cold_starts} cold, "
            f"{self.failures} lost, {self.stragglers} stragglers), peak concurrency "
            f"{self.peak_concurrency}/{self.workers}, utilisation {self.utilisation:.1%}, "
            f"driver CPU {self.driver_cpu:.3f} s"
        )


class _SimFuture(Future[Any]):
    """A future that notes when someone looked at its outcome (the driver reacted)."""

    seen = False

    def result(self, timeout: float | None = None) -> Any:
        self.seen = True
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self.seen = True
        return super().exception(timeout)


class _Call:
    """One invocation, through its events."""

    __slots__ = (
        "cold",
        "delivered",
        "end",
        "extra_wait",
        "fn",
        "future",
        "index",
        "lost",
        "outcome",
        "ran",
        "submitted",
    )

    def __init__(self, future: _SimFuture, fn: Callable[[], Any], submitted: float) -> None:
        self.future = future
        self.fn = fn
        self.submitted = submitted
        self.index = 0
        self.cold = False
        self.lost = False
        self.ran = 0.0
        self.end = 0.0
        self.extra_wait = 0.0
        self.delivered = 0.0
        self.outcome: tuple[bool, Any] = (True, None)


# event kinds, in the order they happen to one call
_ARRIVE, _START, _END, _DELIVER = 0, 1, 2, 3


class SimulatedExecutor(EagerMap, concurrent.futures.Executor):
    """An executor that behaves like a serverless platform or a cluster, on a virtual clock.

    Parameters
    ----------
    platform
        A :class:`Platform` or the name of one in :data:`PLATFORMS`
        (``"aws-lambda"``, ``"lithops-localhost"``, ``"ray-cluster"``).
    seed
        Seed of the random draws (latencies, cold starts, failures,
        stragglers); draws are made per call in submission order.
    workers
        Overrides the platform's ``concurrency``.
    follow_driver
        Whether the driver's CPU time advances the virtual clock (see
        :mod:`daskexec.testing._clock`).  ``False``: the driver is infinitely
        fast and a run with fixed costs is exactly reproducible.
    store
        For an out-of-process platform, whether results stay in a result
        store (daskexec's shared-memory store stands for the platform's
        object storage, as Lithops keeps results in S3) rather than
        travelling back through the driver.
    **overrides
        Any :class:`Platform` field (``failure_rate=0.01``, ``speed=2.0``).

    Notes
    -----
    A call submitted from inside a call (a task computing a graph on this
    executor) runs at once, inside the calling invocation: the calls run
    one at a time, in one thread.
    """

    def __init__(
        self,
        platform: Platform | str = AWS_LAMBDA,
        *,
        seed: int = 0,
        workers: int | None = None,
        follow_driver: bool = True,
        store: bool = True,
        **overrides: Any,
    ) -> None:
        if isinstance(platform, str):
            if platform not in PLATFORMS:
                raise ValueError(f"unknown platform {platform!r}; known: {sorted(PLATFORMS)}")
            platform = PLATFORMS[platform]
        if workers is not None:
            overrides["concurrency"] = workers
        self.platform = replace(platform, **overrides) if overrides else platform
        _worker.item_clock = _call_clock
        self.clock = VirtualClock(follow_driver)
        self.clock.watch()
        self._store = store
        self._rng = random.Random(seed)
        self._lock = threading.Condition()
        self._inbox: collections.deque[_Call] = collections.deque()
        self._closed = False
        self._submitted = 0  # calls submitted so far (the simulator watches it change)
        self._count = itertools.count()
        # simulator state: touched by the simulator thread only
        self._events: list[tuple[float, int, int, _Call]] = []
        self._queue: collections.deque[tuple[float, _Call]] = collections.deque()
        self._running = 0
        self._warm: collections.deque[float] = collections.deque()  # idle since
        self._tokens = float(self.platform.scale_burst or 0)
        self._tokens_at = 0.0
        self._next_invoke = 0.0
        self._unseen: collections.deque[tuple[float, _SimFuture]] = collections.deque()
        self._open = 0  # calls submitted and not delivered
        self._run = self._new_run()
        self._runs: list[SimulatedRun] = []
        self._thread = threading.Thread(
            target=self._simulate, name="daskexec-simulator", daemon=True
        )
        self._thread.start()

    # -- what the scheduler reads ---------------------------------------------------

    def __daskexec_engine__(self) -> EngineInfo:
        """Describe the simulated platform as its real adapter would."""
        p = self.platform
        store = None
        if p.out_of_process and self._store:
            from daskexec._store import SharedMemoryStore

            store = SharedMemoryStore
        return EngineInfo(
            workers=p.concurrency,
            out_of_process=p.out_of_process,
            call_overhead=p.call_overhead,
            max_inflight=2 * p.concurrency,
            # the calls do run in this process, whatever the scheduler is told
            capabilities=frozenset({"shared-memory"}),
            store=store,
            name=f"simulated-{p.name}",
        )

    def __daskexec_shut_down__(self) -> bool:
        """Whether :meth:`shutdown` was called."""
        return self._closed

    def __daskexec_compute_done__(self) -> None:
        """End the current run (see :class:`SimulatedRun`): the scheduler's compute is over."""
        with self._lock:
            self._end_run()

    # -- the virtual clock and what happened ---------------------------------------------

    def now(self) -> float:
        """The virtual time, in seconds (read it before and after a compute)."""
        return self.clock.now()

    @property
    def runs(self) -> list[SimulatedRun]:
        """Every run ended so far, oldest first."""
        return list(self._runs)

    @property
    def last_run(self) -> SimulatedRun | None:
        """The last run ended (the last compute), or ``None``."""
        return self._runs[-1] if self._runs else None

    # -- submitting -----------------------------------------------------------------

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Invoke ``fn(*args, **kwargs)`` on the simulated platform."""
        return self._submit([lambda: fn(*args, **kwargs)])[0]

    def submit_many(self, fn: Callable[[Any], T], payloads: Iterable[Any]) -> list[Future[T]]:
        """Invoke ``fn(payload)`` for every payload, as one job; one future each, in order."""
        return self._submit([_bind(fn, p) for p in payloads])

    def _submit(self, calls: list[Callable[[], Any]]) -> list[Future[Any]]:
        if threading.current_thread() is self._thread:
            return [_run_inline(c) for c in calls]
        if not calls:
            with self._lock:
                self._check()
            return []
        if not self.clock.watching(threading.get_ident()):
            self.clock.watch()
        futures = [_SimFuture() for _ in calls]
        with self._lock:
            self._check()
            t = self.clock.now()
            self._inbox.extend(_Call(f, c, t) for f, c in zip(futures, calls, strict=True))
            self._submitted += len(calls)
            self._open += len(calls)
            self._lock.notify()
        return list(futures)

    def _check(self) -> None:
        if self._closed:
            raise RuntimeError(
                "cannot schedule new futures after shutdown: this SimulatedExecutor has been "
                "shut down; create a new one"
            )

    # -- shutting down --------------------------------------------------------------

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; with ``wait``, return once every call has completed.

        ``cancel_futures`` cancels the calls that have not started.  Safe to
        call several times.
        """
        with self._lock:
            self._closed = True
            if cancel_futures:
                for call in self._inbox:
                    call.future.cancel()
                for _, call in self._queue:
                    call.future.cancel()
                for _, _, kind, call in self._events:
                    if kind <= _START:
                        call.future.cancel()
            self._lock.notify()
        if wait and threading.current_thread() is not self._thread:
            self._thread.join()

    def __repr__(self) -> str:
        state = "shut down" if self._closed else "running"
        return (
            f"<SimulatedExecutor {state}, {self.platform.name}, "
            f"{self.platform.concurrency} workers, t={self.now():.3f}s>"
        )

    # -- runs -------------------------------------------------------------------------

    def _new_run(self) -> SimulatedRun:
        p = self.platform
        run = SimulatedRun(platform=p.name, workers=p.concurrency)
        run.started = run.ended = -1.0
        return run

    def _end_run(self) -> None:
        run = self._run
        if run.started < 0:
            return
        run.driver_cpu = self.clock.driver_cpu() - run._cpu0
        run.real_seconds = time.perf_counter() - run._real0
        run.jumps = self.clock.jumps - run._jumps0
        run.jumped = self.clock.jumped - run._jumped0
        if run.ended < run.started:
            run.ended = run.started
        self._runs.append(run)
        self._run = self._new_run()

    # -- the simulator thread ---------------------------------------------------------

    def _simulate(self) -> None:
        self.clock.simulator_started()
        events = self._events
        clock = self.clock
        idle_cpu = -1.0  # the driver's CPU time when it was found idle; -1: not idle
        while True:
            clock.simulator_tick()
            with self._lock:
                if self._inbox:
                    idle_cpu = -1.0
                while self._inbox:
                    self._arrive(self._inbox.popleft())
                if self._closed and not self._open:
                    return
            now = clock.now()
            if events and events[0][0] <= now:
                t, _, kind, call = heapq.heappop(events)
                self._handle(t, kind, call)
                if kind == _DELIVER:
                    idle_cpu = -1.0  # the driver has something to react to
                continue
            if not events:
                with self._lock:
                    if not self._inbox and not (self._closed and not self._open):
                        self._lock.wait(0.05)
                continue
            # An idle driver stays idle until a future completes, it submits,
            # or it spends CPU time (woken by a timer): until then the
            # platform's own events follow each other at once.
            if idle_cpu >= 0 and clock.driver_cpu() - idle_cpu <= IDLE_CPU:
                clock.jump_to(events[0][0])
                continue
            idle_cpu = -1.0
            if self._driver_idle():
                idle_cpu = clock.driver_cpu()
                clock.jump_to(events[0][0])

    def _driver_idle(self) -> bool:
        """Whether the driver is idle (waiting for a future to complete).

        Idle means: every completed future was looked at (or long ago), and
        over two polls in a row (the simulator holding neither the lock nor
        the GIL), no call was submitted, the driver threads spent no CPU
        time, and none was running.  Two polls, because a driver thread
        waiting for the GIL looks asleep in ``/proc``: given a free GIL
        during the second poll, it runs.  Never returns without having
        released the GIL for a poll, so the driver always gets to run.
        """
        clock = self.clock
        for _ in range(2):
            cpu = clock.driver_cpu()
            submitted = self._submitted
            with self._lock:
                if self._inbox:
                    return False
                self._lock.wait(IDLE_POLL)
            if self._submitted != submitted or self._inbox:
                return False
            if clock.driver_cpu() - cpu > IDLE_CPU or clock.drivers_running():
                return False
            if self._unseen_left():
                return False
        return True

    def _unseen_left(self) -> bool:
        """Whether a future completed lately and nobody has looked at it yet."""
        unseen = self._unseen
        limit = time.perf_counter() - UNSEEN_GRACE
        while unseen and (unseen[0][1].seen or unseen[0][0] < limit):
            unseen.popleft()
        return bool(unseen)

    def _arrive(self, call: _Call) -> None:
        """A submitted call enters the simulation (under the lock): draw its fate."""
        p = self.platform
        rng = self._rng
        run = self._run
        if run.started < 0:
            run.started = call.submitted
            run._cpu0 = self.clock.driver_cpu()
            run._real0 = time.perf_counter()
            run._jumps0, run._jumped0 = self.clock.jumps, self.clock.jumped
        call.index = next(self._count)
        t = call.submitted
        if p.invoke_rate:
            t = max(t, self._next_invoke)
            self._next_invoke = t + 1.0 / p.invoke_rate
        invoke = p.invoke.draw(rng)
        run.invoke_seconds += invoke
        run.waiting_seconds += t - call.submitted
        run.invocations += 1
        heapq.heappush(self._events, (t + invoke, call.index, _ARRIVE, call))

    def _handle(self, t: float, kind: int, call: _Call) -> None:
        if kind == _ARRIVE:
            if self._running < self.platform.concurrency:
                self._admit(t, call)
            else:
                self._queue.append((t, call))
                self._run.peak_queued = max(self._run.peak_queued, len(self._queue))
        elif kind == _START:
            self._start(t, call)
        elif kind == _END:
            self._end(t, call)
        else:
            self._deliver(t, call)

    def _admit(self, t: float, call: _Call) -> None:
        """``call`` takes a concurrency slot at ``t``; it starts on a warm or a new environment."""
        p = self.platform
        run = self._run
        self._running += 1
        run.peak_concurrency = max(run.peak_concurrency, self._running)
        warm = self._warm
        while warm and warm[0] < t - p.keep_alive:
            warm.popleft()  # expired
        if warm:
            warm.pop()  # the most recently used
            heapq.heappush(self._events, (t, call.index, _START, call))
            return
        ready = self._new_environment(t)
        cold = p.cold_start.draw(self._rng)
        call.cold = True
        run.cold_starts += 1
        run.cold_seconds += cold
        run.waiting_seconds += ready - t
        heapq.heappush(self._events, (ready + cold, call.index, _START, call))

    def _new_environment(self, t: float) -> float:
        """When a new execution environment may start, from ``t`` (the scaling limit)."""
        p = self.platform
        if p.scale_rate is None or p.scale_burst is None:
            return t
        at = max(t, self._tokens_at)
        tokens = min(float(p.scale_burst), self._tokens + (at - self._tokens_at) * p.scale_rate)
        if tokens < 1.0:
            at += (1.0 - tokens) / p.scale_rate
            tokens = 1.0
        self._tokens, self._tokens_at = tokens - 1.0, at
        return at

    def _start(self, t: float, call: _Call) -> None:
        p = self.platform
        run = self._run
        if not call.future.set_running_or_notify_cancel():  # cancelled while queued
            self._release(t, call, lost=False)
            with self._lock:
                self._open -= 1
            return
        rng = self._rng
        lost = rng.random() < p.failure_rate
        straggler = rng.random() < p.straggler_rate
        where = rng.random()
        _task.extra = 0.0
        _task.speed = p.speed
        _task.slowdown = p.straggler_slowdown if straggler else 1.0
        cpu = _task.cpu0 = time.thread_time()
        try:
            call.outcome = (True, call.fn())
        except BaseException as exc:  # a BaseException too comes back on the future
            call.outcome = (False, exc)
        finally:
            work = (time.thread_time() - cpu) * p.speed + _task.extra
            _task.extra = None
        call.fn = _done
        ran = work * (p.straggler_slowdown if straggler else 1.0)
        run.stragglers += straggler
        if lost:
            ran *= where
            run.failures += 1
            call.lost = True
        else:
            run.work_seconds += work
        run.busy_seconds += ran
        call.ran = ran
        heapq.heappush(self._events, (t + ran, call.index, _END, call))

    def _end(self, t: float, call: _Call) -> None:
        self._release(t, call, lost=call.lost)
        delay = self.platform.result.draw(self._rng)
        self._run.result_seconds += delay
        heapq.heappush(self._events, (t + delay, call.index, _DELIVER, call))

    def _release(self, t: float, call: _Call, lost: bool) -> None:
        """``call`` frees its slot at ``t``; its environment stays warm unless it was lost."""
        self._running -= 1
        if not lost and self.platform.keep_alive > 0:
            self._warm.append(t)
        if self._queue:
            self._admit(t, self._queue.popleft()[1])

    def _deliver(self, t: float, call: _Call) -> None:
        future = call.future
        ok, value = call.outcome
        call.outcome = (True, None)
        with self._lock:
            self._open -= 1
            run = self._run
            run.ended = max(run.ended, t)
        if future.done():  # cancelled after it started: nothing to tell
            return
        if call.lost:
            future.set_exception(
                InvocationLost(f"the simulated platform lost invocation {call.index}")
            )
        elif ok:
            future.set_result(value)
        else:
            future.set_exception(value)
        self._unseen.append((time.perf_counter(), future))


def _run_inline(call: Callable[[], Any]) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()
    try:
        future.set_result(call())
    except BaseException as exc:
        future.set_exception(exc)
    return future


def _bind(fn: Callable[[Any], T], payload: Any) -> Callable[[], T]:
    return lambda: fn(payload)


def _done() -> None:
    """Stands in for a call's function once it ran (so the call holds no closure)."""
