"""Platform profiles for :mod:`daskexec.testing.simulated`, and where each number comes from.

A :class:`Platform` is what a serverless service or a cluster looks like
from the driver: how long an invocation takes to start (warm, or cold on a
new execution environment), how many run at once, how fast new environments
and new invocations can be started, how long the driver takes to learn that
an invocation finished, how often one is lost, and how often one straggles.
Times are drawn from the distributions below with the simulator's seeded
random generator.

Every number names its source.  Where no published figure was found, the
comment says *assumption* and why the value is plausible; change it with
:func:`dataclasses.replace` (``replace(AWS_LAMBDA, failure_rate=0.01)``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "AWS_LAMBDA",
    "LITHOPS_LOCALHOST",
    "PLATFORMS",
    "RAY_CLUSTER",
    "Distribution",
    "Fixed",
    "LogNormal",
    "Platform",
    "Uniform",
]


class Distribution(Protocol):
    """A distribution of seconds."""

    def draw(self, rng: random.Random) -> float:
        """One value, drawn with ``rng``."""
        ...

    @property
    def mean(self) -> float:
        """The expected value (for bounds and reports)."""
        ...


@dataclass(frozen=True)
class Fixed:
    """Always ``seconds``."""

    seconds: float

    def draw(self, rng: random.Random) -> float:
        return self.seconds

    @property
    def mean(self) -> float:
        return self.seconds


@dataclass(frozen=True)
class Uniform:
    """Uniform between ``low`` and ``high`` seconds (a polling delay)."""

    low: float
    high: float

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True)
class LogNormal:
    """Log-normal with the given ``median`` and 99th percentile ``p99`` (seconds).

    Latencies are skewed to the right (a long tail of slow calls): the
    usual model for network and start-up times.
    """

    median: float
    p99: float

    def __post_init__(self) -> None:
        if not 0 < self.median <= self.p99:
            raise ValueError(f"need 0 < median <= p99, got {self.median!r}, {self.p99!r}")

    @property
    def sigma(self) -> float:
        return math.log(self.p99 / self.median) / 2.3263  # z of the 99th percentile

    def draw(self, rng: random.Random) -> float:
        return rng.lognormvariate(math.log(self.median), self.sigma)

    @property
    def mean(self) -> float:
        return self.median * math.exp(self.sigma**2 / 2)


@dataclass(frozen=True)
class Platform:
    """What a serverless platform or a cluster looks like from the driver.

    Parameters
    ----------
    name
        Label for reports (``EngineInfo.name`` is ``"simulated-" + name``).
    concurrency
        Invocations that run at once; more wait in a FIFO queue (a
        serverless platform throttles them and the client retries; a
        cluster queues them).
    invoke
        Seconds from the driver's submission to the start of the function on
        a warm environment (the invoke request, the payload fetch).
    cold_start
        Extra seconds when no warm environment is free and a new one starts.
    result
        Seconds from the end of the function to the driver learning it (the
        result write, the client's polling).
    invoke_rate
        Invocations per second the client can start (``None``: unlimited).
    scale_burst, scale_rate
        New execution environments: at most ``scale_burst`` at once, refilled
        at ``scale_rate`` per second (``None``: unlimited).
    keep_alive
        Seconds an idle environment stays warm; ``0``: an environment serves
        one call only (every call is a cold start).
    failure_rate
        Probability that an invocation is lost (its future raises
        :class:`~daskexec.testing.simulated.InvocationLost` at a random point
        of its run; the scheduler retries the work item).
    straggler_rate, straggler_slowdown
        Probability that an invocation runs ``straggler_slowdown`` times slower.
    speed
        Platform seconds per second of work measured on this machine (a
        Lambda vCPU against this machine's core).
    call_overhead
        Seconds per invocation that the engine reports to the scheduler
        (``EngineInfo.call_overhead``): what a real adapter would say.
    out_of_process
        Whether the scheduler serializes work items for it (it would for
        any remote engine).
    """

    name: str
    concurrency: int
    invoke: Distribution
    cold_start: Distribution
    result: Distribution
    invoke_rate: float | None = None
    scale_burst: int | None = None
    scale_rate: float | None = None
    keep_alive: float = 600.0
    failure_rate: float = 0.0
    straggler_rate: float = 0.0
    straggler_slowdown: float = 1.0
    speed: float = 1.0
    call_overhead: float = 1.0
    out_of_process: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency!r}")
        for name in ("failure_rate", "straggler_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if self.straggler_slowdown < 1.0 or self.speed < 0.0:
            raise ValueError("straggler_slowdown must be >= 1 and speed >= 0")


# -- AWS Lambda, driven by Lithops ------------------------------------------------
#
# concurrency = 1,000: the default "Concurrent executions" quota per Region,
#   AWS Lambda Developer Guide, "Lambda quotas"
#   (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html).
#   Lithops' aws_lambda backend defaults to max_workers = 1000 too
#   (lithops/serverless/backends/aws_lambda/config.py, DEFAULT_CONFIG_KEYS).
# scale_burst = 1,000, scale_rate = 100/s: "for each function, your concurrency
#   scaling rate is 1,000 execution environment instances every 10 seconds",
#   refilled continuously ("Lambda makes a best attempt to refill your
#   concurrency scaling rate continuously"), AWS Lambda Developer Guide,
#   "Lambda scaling behavior"
#   (https://docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html).
# invoke_rate = 640/s: Lithops invokes from a pool of invoke_pool_threads = 64
#   threads (aws_lambda DEFAULT_CONFIG_KEYS above), one Invoke request each;
#   at ~0.1 s per request (assumption: an HTTPS round trip to the Lambda API
#   from outside AWS) that is 640 invocations per second.
# invoke = log-normal, median 0.15 s, p99 0.6 s: assumption; the Invoke round
#   trip above plus the worker fetching its payload from S3 (Lithops' worker
#   downloads the job's function and data from storage).
# cold_start = log-normal, median 1.0 s, p99 3.0 s: assumption.  AWS describes a
#   cold start as downloading the code and creating the environment before the
#   init code runs ("Operating Lambda: Performance optimization - Part 1", AWS
#   Compute Blog, 2021); Python runtimes with NumPy and pandas are reported at
#   0.8-1.5 s (community measurements, e.g. minhle.xyz "Lambda Cold Starts:
#   Math, Mitigation, When Not to Care"); Lithops' default runtime carries
#   numpy, cloudpickle, redis, pika, ... (aws_lambda DEFAULT_REQUIREMENTS).
# result = uniform 0-0.4 s: Lithops' storage monitor polls the job's status
#   objects every monitoring_interval = 2 s, and every 2/5 = 0.4 s while calls
#   keep finishing (lithops/constants.py LITHOPS_DEFAULT_CONFIG_KEYS and
#   lithops/monitoring/backends/storage/storage.py, run()); a busy job sees
#   its results 0-0.4 s after they are written.
# keep_alive = 600 s: assumption; AWS says only that it keeps an environment
#   "for a non-deterministic period of time" (Operating Lambda, above);
#   community measurements put it at 5-45 minutes.
# failure_rate = 0.001, straggler_rate = 0.01 x 4: assumptions (no published
#   figure for lost Lambda invocations or slow ones under Lithops); they are
#   here so that the retry path and the tail show in the benchmark.
# speed = 1.0: assumption; a Lambda function with 1,769 MB gets one vCPU
#   (AWS Lambda Developer Guide, "Configure Lambda function memory"), taken
#   as fast as one core of this machine.
# call_overhead = 1.0 s: what daskexec_lithops reports for a cloud backend
#   (daskexec_lithops._config.CLOUD_CALL_OVERHEAD).
AWS_LAMBDA = Platform(
    name="aws-lambda",
    concurrency=1000,
    invoke=LogNormal(median=0.15, p99=0.6),
    cold_start=LogNormal(median=1.0, p99=3.0),
    result=Uniform(0.0, 0.4),
    invoke_rate=640.0,
    scale_burst=1000,
    scale_rate=100.0,
    keep_alive=600.0,
    failure_rate=0.001,
    straggler_rate=0.01,
    straggler_slowdown=4.0,
    speed=1.0,
    call_overhead=1.0,
)

# -- Lithops on localhost, measured on this machine -------------------------------
#
# Measured on this repository's 2-core machine (shared, load average ~1),
# 2026-11-28, with daskexec_lithops.LithopsExecutor() and daskexec's item
# records, one single-task call at a time, 12 calls after a warm-up
# (benchmarks/scale_calibrate.py): a call took 0.91 s from submission to
# the driver holding its result (median; 0.90-1.01 s), of which 0.83 s
# (median, p90 0.89 s) from submission to the task starting (a fresh Python
# process that imports Lithops and reads the job from local storage: every
# call is cold on localhost, so it is all counted as a cold start) and
# 0.10 s (0.05-0.18 s) from the task's end to the driver seeing it (the
# storage monitor's polls).  Ten calls on two workers at once took about
# 1.0 s each.
# concurrency = 2: Lithops' localhost backend runs one process per CPU.
# call_overhead = 0.5 s: what daskexec_lithops reports on localhost
#   (daskexec_lithops._config.LOCALHOST_CALL_OVERHEAD).
# The start-up is a cold start (keep_alive = 0: a process per call), so it
# holds one of the two slots: twenty calls at once on two workers take about
# 10 x 0.95 s here.  Measured, the same twenty calls took 10.2-15.4 s on the
# loaded machine (the two call processes and the driver share two cores),
# the simulation 8.4-8.8 s: the model leaves that contention out.
# No scaling limit, no failures or stragglers.
LITHOPS_LOCALHOST = Platform(
    name="lithops-localhost",
    concurrency=2,
    invoke=Fixed(0.0),
    cold_start=LogNormal(median=0.83, p99=0.95),
    result=Uniform(0.05, 0.18),
    keep_alive=0.0,
    call_overhead=0.5,
)

# -- A Ray cluster of 1,000 worker processes ----------------------------------------
#
# invoke = log-normal, median 1 ms, p99 5 ms: Ray's paper reports sub-millisecond
#   local task latency and millions of tasks per second across a cluster
#   (Moritz et al., "Ray: A Distributed Framework for Emerging AI
#   Applications", OSDI 2018); a remote task through the owner and a raylet
#   takes about a millisecond (assumption, from that order of magnitude).
# result = 1 ms: the same round trip back (assumption).
# No cold starts (the workers are running), no rate limits, no failures.
# call_overhead = 1 ms, as daskexec_ray would report for a remote cluster
#   (assumption).
RAY_CLUSTER = Platform(
    name="ray-cluster",
    concurrency=1000,
    invoke=LogNormal(median=0.001, p99=0.005),
    cold_start=Fixed(0.0),
    result=Fixed(0.001),
    call_overhead=0.001,
)

#: The profiles by name.
PLATFORMS: dict[str, Platform] = {p.name: p for p in (AWS_LAMBDA, LITHOPS_LOCALHOST, RAY_CLUSTER)}
