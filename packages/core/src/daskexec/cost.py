"""What a compute costs on an engine that bills by the second: list prices and the bill.

Every compute counts worker-seconds (``ComputeStats.worker_seconds``).  An
engine that bills by memory and CPU time declares a :class:`Billing` in its
:class:`~daskexec.EngineInfo`: the list price and the memory and vCPUs each
invocation is billed for.  The scheduler then adds the GB-seconds and the
price of each compute to its stats, as the provider computes them: every
invocation's duration rounded up to the billing granularity, times memory and
vCPUs, plus a price per request.  Free tiers, discounts, storage and data
transfer are left out: this is the list price of the compute itself.

:data:`PRICES` holds the list prices of the serverless backends Lithops
supports, each with where and when it was read; pass your own :class:`Price`
where yours differ (a region, an architecture, a negotiated rate).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["PRICES", "Billing", "Price", "bill"]


@dataclass(frozen=True)
class Price:
    """A list price per invocation, in US dollars.

    Parameters
    ----------
    name
        What is priced, for reports ("AWS Lambda, x86, us-east-1").
    per_gb_second
        Per GB (or GiB, as the provider bills) of configured memory per second.
    per_vcpu_second
        Per vCPU per second (0 where CPU comes with the memory, as on Lambda).
    per_request
        Per invocation.
    round_to
        Seconds each invocation's duration is rounded up to.
    source
        Where the price was read, and when.
    """

    name: str
    per_gb_second: float
    per_vcpu_second: float = 0.0
    per_request: float = 0.0
    round_to: float = 0.001
    source: str = ""

    def __post_init__(self) -> None:
        for field in ("per_gb_second", "per_vcpu_second", "per_request"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"Price.{field} must be a finite number >= 0, not {value!r}")
        if not (isinstance(self.round_to, (int, float)) and self.round_to > 0):
            raise ValueError(f"Price.round_to must be a positive number, not {self.round_to!r}")


@dataclass(frozen=True)
class Billing:
    """How an engine bills one invocation: its price, memory and vCPUs."""

    price: Price
    memory_gb: float
    vcpus: float = 0.0

    def __post_init__(self) -> None:
        if not (self.memory_gb > 0 and math.isfinite(self.memory_gb)):
            raise ValueError(f"Billing.memory_gb must be positive, not {self.memory_gb!r}")
        if not (self.vcpus >= 0 and math.isfinite(self.vcpus)):
            raise ValueError(f"Billing.vcpus must be >= 0, not {self.vcpus!r}")


def bill(billing: Billing, durations: Iterable[float]) -> tuple[float, float]:
    """GB-seconds and dollars for invocations that ran ``durations`` seconds each."""
    p = billing.price
    seconds = 0.0
    n = 0
    for d in durations:
        seconds += math.ceil(max(d, 0.0) / p.round_to - 1e-9) * p.round_to
        n += 1
    gb_seconds = seconds * billing.memory_gb
    dollars = (
        gb_seconds * p.per_gb_second
        + seconds * billing.vcpus * p.per_vcpu_second
        + n * p.per_request
    )
    return gb_seconds, dollars


#: List prices of the Lithops serverless compute backends (by Lithops' backend
#: name).  Override them with your own ``Price`` where yours differ.
PRICES: dict[str, Price] = {
    "aws_lambda": Price(
        "AWS Lambda (x86, us-east-1, first 6 billion GB-s a month)",
        per_gb_second=0.0000166667,
        per_request=0.20 / 1e6,
        round_to=0.001,
        source="aws.amazon.com/lambda/pricing, read 2025",
    ),
    "gcp_cloudrun": Price(
        "Google Cloud Run (request-based billing, tier 1 regions)",
        per_gb_second=0.0000025,
        per_vcpu_second=0.000024,
        per_request=0.40 / 1e6,
        round_to=0.1,
        source="cloud.google.com/run/pricing, read 2025",
    ),
    "code_engine": Price(
        "IBM Cloud Code Engine",
        per_gb_second=0.00000356,
        per_vcpu_second=0.00003431,
        per_request=0.538 / 1e6,
        round_to=1.0,
        source="cloud.ibm.com/docs/codeengine pricing, as of 2024 (not re-checked since)",
    ),
}
