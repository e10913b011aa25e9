"""The Lithops config an executor runs with, and what it says about capacity."""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import lithops.config

from daskexec.cost import PRICES, Billing, Price

__all__ = [
    "CLOUD_CALL_OVERHEAD",
    "LOCALHOST_CALL_OVERHEAD",
    "capacity",
    "module_names",
    "resolve_config",
]

#: Seconds one call costs on the localhost backend beyond its work: a fresh
#: Python process that imports Lithops, plus storage round trips (measured:
#: about 0.5 s on an idle machine).
LOCALHOST_CALL_OVERHEAD = 0.5
#: The same for a cloud backend: an invocation plus storage round trips.
CLOUD_CALL_OVERHEAD = 1.0


def module_names(value: Sequence[str] | None, what: str) -> list[str] | None:
    """``value`` as a list of module names (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{what} must be a list of module names, got {value!r}")
    return list(value)


def resolve_config(
    config: Mapping[str, Any] | None,
    backend: str | None,
    storage: str | None,
    workers: int | None,
    options: dict[str, Any],
) -> tuple[dict[str, Any], str | None]:
    """The Lithops config to build the executor from, and its compute backend.

    No config at all (none given, no config file, no ``LITHOPS_CONFIG``) is
    Lithops' own fallback: localhost compute with localhost storage.
    """
    config_file = options.pop("config_file", None)
    if config:
        cfg: dict[str, Any] = copy.deepcopy(dict(config))
    else:
        cfg = lithops.config.load_config(config_file, log=False)
    section = cfg.get("lithops") or {}
    cfg["lithops"] = section
    if backend is not None:
        section["backend"] = backend
    if storage is not None:
        section["storage"] = storage
    name = section.get("backend")
    if name is None and section.get("mode") == "localhost":
        name = "localhost"
    if name == "localhost":
        local = cfg.get("localhost") or {}
        cfg["localhost"] = local
        if "runtime" not in local and "runtime" not in options:
            local["runtime"] = sys.executable
        if workers is not None:
            options["worker_processes"] = workers
    elif workers is not None:
        options["max_workers"] = workers
    # Lithops refuses a job whose payloads add up to more than 4 MiB unless
    # told otherwise; the scheduler sizes its payloads itself.
    section.setdefault("data_limit", False)
    if "log_level" not in options:
        # Lithops logs every job at INFO on stdout unless told otherwise;
        # only a config that sets a log level gets its logs.
        options["log_level"] = False if "log_level" in section else None
    return cfg, name


def capacity(resolved: Mapping[str, Any]) -> tuple[str, int, float]:
    """The backend of a resolved config, how many calls run at once, the default call cost.

    Localhost: its worker processes; a cloud backend: ``max_workers`` times
    ``worker_processes``.
    """
    backend: str = resolved["lithops"]["backend"]
    section = resolved.get(backend) or {}
    processes = int(section.get("worker_processes") or 1)
    if backend == "localhost":
        return backend, processes, LOCALHOST_CALL_OVERHEAD
    return backend, int(section.get("max_workers") or 1) * processes, CLOUD_CALL_OVERHEAD


def billing(resolved: Mapping[str, Any], price: Price | None) -> Billing | None:
    """How the config's backend bills a call: a price for the runtime's memory and vCPUs.

    ``price`` defaults to daskexec's list price for the backend.
    ``None`` where there is no price (localhost, a backend with no list price
    in :data:`daskexec.cost.PRICES` and none given) or no runtime memory.
    """
    backend: str = resolved["lithops"]["backend"]
    price = price or PRICES.get(backend)
    section = resolved.get(backend) or {}
    memory = section.get("runtime_memory")
    if price is None or not memory:
        return None
    return Billing(
        price, memory_gb=float(memory) / 1024, vcpus=float(section.get("runtime_cpu") or 0)
    )
