"""The guide's capacity plan: Little's law for concurrency, the utilization law for CPU.

``plan(rps, latency_ms, cpu_per_request, memory_mb)`` reproduces the guide's
``capacity_planning()`` exactly (same arithmetic, same keys, same floats)::

    concurrent_requests = rps * latency_s                       # Little's law, L = lambda * W
    required_cpu_cores  = rps * cpu_per_request / 0.8           # 20% headroom
    required_memory_gb  = concurrent_requests * memory_mb / 1024 / 0.8
    instances_needed    = ceil(max(cores / 4, memory_gb / 16))  # 4-core, 16 GB instances

and adds what the guide's checklist asks for beside it: the same plan at twice the load, and the
utilization law's view (busy cores = rps x CPU-seconds per request; cores = busy / target
utilization) with notes saying where the two agree, where they differ and why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from tailguard.errors import ConfigurationError

__all__ = ["CapacityPlan", "Sizing", "UtilizationView", "plan"]

LOAD_FACTOR = 2.0  # the checklist's "plan for 2x expected load"


@dataclass(frozen=True, slots=True)
class Sizing:
    """One load level sized by the guide's formula. ``to_dict()`` is exactly the dict the
    guide's ``capacity_planning()`` returns."""

    rps: float  # requests per second
    concurrent_requests: float  # requests in flight (Little's law)
    required_cpu_cores: float  # cores, headroom included
    required_memory_gb: float  # GiB (MB / 1024), headroom included
    instances_needed: int

    def to_dict(self) -> dict[str, float | int]:
        """The guide's four keys, nothing else."""
        return {
            "concurrent_requests": self.concurrent_requests,
            "required_cpu_cores": self.required_cpu_cores,
            "required_memory_gb": self.required_memory_gb,
            "instances_needed": self.instances_needed,
        }


@dataclass(frozen=True, slots=True)
class UtilizationView:
    """The expected load sized by the utilization law (U = X x S) and Little's law alone."""

    busy_cores: float  # rps x CPU-seconds per request: cores kept busy, at 100% utilization
    target_utilization: float  # 1 - headroom
    required_cpu_cores: float  # busy_cores / target_utilization
    memory_in_flight_gb: float  # concurrent requests x memory per request, no headroom (GiB)
    instances_needed: int  # CPU at the target utilization, memory as it is in flight
    fleet_utilization: float  # CPU utilization of the guide's instances at the expected load
    fleet_utilization_at_2x: float  # ... of the same instances at twice the load

    def to_dict(self) -> dict[str, float | int]:
        return {
            "busy_cores": self.busy_cores,
            "target_utilization": self.target_utilization,
            "required_cpu_cores": self.required_cpu_cores,
            "memory_in_flight_gb": self.memory_in_flight_gb,
            "instances_needed": self.instances_needed,
            "fleet_utilization": self.fleet_utilization,
            "fleet_utilization_at_2x": self.fleet_utilization_at_2x,
        }


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    """A capacity plan: the guide's sizing at the expected load and at twice it, the
    utilization law's view and notes comparing them. The guide's four results are attributes
    too (``plan.instances_needed``)."""

    rps: float  # requests per second expected
    latency_ms: float  # mean response time, milliseconds
    cpu_per_request: float  # CPU-seconds per request
    memory_mb: float  # memory per request in flight, MB
    headroom: float  # fraction of capacity kept free (0.2: size for 80% utilization)
    instance_cores: float
    instance_memory_gb: float
    expected: Sizing
    at_2x: Sizing
    utilization_law: UtilizationView
    notes: tuple[str, ...]

    @property
    def concurrent_requests(self) -> float:
        return self.expected.concurrent_requests

    @property
    def required_cpu_cores(self) -> float:
        return self.expected.required_cpu_cores

    @property
    def required_memory_gb(self) -> float:
        return self.expected.required_memory_gb

    @property
    def instances_needed(self) -> int:
        return self.expected.instances_needed

    def to_dict(self) -> dict[str, Any]:
        """The guide's four keys at the top level, then the inputs, ``at_2x``,
        ``utilization_law`` and ``notes``: JSON-ready."""
        return {
            **self.expected.to_dict(),
            "inputs": {
                "rps": self.rps,
                "latency_ms": self.latency_ms,
                "cpu_per_request": self.cpu_per_request,
                "memory_mb": self.memory_mb,
                "headroom": self.headroom,
                "instance_cores": self.instance_cores,
                "instance_memory_gb": self.instance_memory_gb,
            },
            "at_2x": {"rps": self.at_2x.rps, **self.at_2x.to_dict()},
            "utilization_law": self.utilization_law.to_dict(),
            "notes": list(self.notes),
        }


def plan(
    rps: float,
    latency_ms: float,
    cpu_per_request: float,
    memory_mb: float,
    *,
    headroom: float = 0.2,
    instance_cores: float = 4,
    instance_memory_gb: float = 16,
) -> CapacityPlan:
    """Size a service for ``rps`` requests per second with a mean response time of
    ``latency_ms`` milliseconds, each request using ``cpu_per_request`` CPU-seconds and
    ``memory_mb`` MB while in flight, keeping ``headroom`` (a fraction) of CPU and memory free,
    on instances of ``instance_cores`` cores and ``instance_memory_gb`` GiB.

    With the defaults, ``plan(...).expected.to_dict()`` equals the guide's
    ``capacity_planning(rps, latency_ms, cpu_per_request, memory_mb)``. Raises
    ``ConfigurationError`` (a ``ValueError``) naming the argument when a value is out of range.
    """
    _check("rps", rps, minimum=0.0, inclusive=False)
    _check("latency_ms", latency_ms, minimum=0.0, inclusive=False)
    _check("cpu_per_request", cpu_per_request, minimum=0.0, inclusive=True)
    _check("memory_mb", memory_mb, minimum=0.0, inclusive=True)
    _check("instance_cores", instance_cores, minimum=0.0, inclusive=False)
    _check("instance_memory_gb", instance_memory_gb, minimum=0.0, inclusive=False)
    if not (math.isfinite(headroom) and 0.0 <= headroom < 1.0):
        raise ConfigurationError("headroom", headroom, "a fraction in [0, 1), e.g. 0.2")
    utilization = 1 - headroom  # 1 - 0.2 == 0.8 exactly, so the guide's floats are reproduced
    instance = (instance_cores, instance_memory_gb)
    expected = _size(rps, latency_ms, cpu_per_request, memory_mb, utilization, *instance)
    at_2x = _size(LOAD_FACTOR * rps, latency_ms, cpu_per_request, memory_mb, utilization, *instance)
    busy = rps * cpu_per_request
    in_flight_gb = expected.concurrent_requests * memory_mb / 1024
    fleet_cores = expected.instances_needed * instance_cores
    view = UtilizationView(
        busy_cores=busy,
        target_utilization=utilization,
        required_cpu_cores=busy / utilization,
        memory_in_flight_gb=in_flight_gb,
        instances_needed=math.ceil(
            max(busy / utilization / instance_cores, in_flight_gb / instance_memory_gb)
        ),
        fleet_utilization=busy / fleet_cores if fleet_cores else 0.0,
        fleet_utilization_at_2x=LOAD_FACTOR * busy / fleet_cores if fleet_cores else 0.0,
    )
    result = CapacityPlan(
        rps=rps,
        latency_ms=latency_ms,
        cpu_per_request=cpu_per_request,
        memory_mb=memory_mb,
        headroom=headroom,
        instance_cores=instance_cores,
        instance_memory_gb=instance_memory_gb,
        expected=expected,
        at_2x=at_2x,
        utilization_law=view,
        notes=(),
    )
    return replace(result, notes=_notes(result))


def _size(
    rps: float,
    latency_ms: float,
    cpu_per_request: float,
    memory_mb: float,
    utilization: float,
    instance_cores: float,
    instance_memory_gb: float,
) -> Sizing:
    # The guide's arithmetic, operation for operation, so that the floats are identical.
    concurrent_requests = rps * (latency_ms / 1000)
    cpu_cores = (rps * cpu_per_request) / utilization
    memory_gb = (concurrent_requests * memory_mb) / 1024 / utilization
    instances = max(cpu_cores / instance_cores, memory_gb / instance_memory_gb)
    return Sizing(rps, concurrent_requests, cpu_cores, memory_gb, math.ceil(instances))


def _notes(p: CapacityPlan) -> tuple[str, ...]:
    e, view = p.expected, p.utilization_law
    latency_s = p.latency_ms / 1000
    pct = f"{view.target_utilization:.0%}"
    notes = [
        f"Concurrency is Little's law, L = lambda x W: {p.rps:g} rps x {latency_s:g} s = "
        f"{e.concurrent_requests:g} requests in flight; it sizes memory, not CPU.",
        f"CPU is the utilization law, U = X x S: {p.rps:g} rps x {p.cpu_per_request:g} "
        f"CPU-s = {view.busy_cores:g} busy cores, / {pct} target utilization = "
        f"{view.required_cpu_cores:g} cores; the guide's formula is exactly this.",
    ]
    if p.headroom > 0:
        notes.append(
            f"Memory differs: in flight it is {e.concurrent_requests:g} x {p.memory_mb:g} MB = "
            f"{view.memory_in_flight_gb:.3g} GiB; the guide also divides by {pct} "
            f"({e.required_memory_gb:.3g} GiB) because it keeps headroom on memory too, which "
            "is a safety margin, not a utilization law."
        )
    if view.instances_needed != e.instances_needed:
        notes.append(
            f"Instances differ: {e.instances_needed} by the guide, {view.instances_needed} "
            "with memory sized as in flight: this plan is memory-bound, so the memory "
            "headroom sets the fleet."
        )
    if p.cpu_per_request > latency_s:
        notes.append(
            f"A request uses {p.cpu_per_request:g} CPU-s in {latency_s:g} s: more than one "
            "core at once, or the inputs are inconsistent (CPU-seconds must not exceed the "
            "latency for single-threaded work)."
        )
    elif p.cpu_per_request > 0:
        notes.append(
            f"Each request is on a CPU for {p.cpu_per_request / latency_s:.0%} of its "
            f"{p.latency_ms:g} ms; the rest is waiting (I/O, locks, queues)."
        )
    notes.append(
        f"At 2x load ({p.at_2x.rps:g} rps) the {e.instances_needed} instances would run at "
        f"{view.fleet_utilization_at_2x:.0%} CPU (at 1x: {view.fleet_utilization:.0%}); "
        f"the 2x plan needs {p.at_2x.instances_needed}, assuming latency stays at "
        f"{p.latency_ms:g} ms, which queueing makes optimistic as utilization nears 100%."
    )
    return tuple(notes)


def _check(name: str, value: float, *, minimum: float, inclusive: bool) -> None:
    ok = math.isfinite(value) and (value >= minimum if inclusive else value > minimum)
    if not ok:
        expected = f"a finite number {'>=' if inclusive else '>'} {minimum:g}"
        raise ConfigurationError(name, value, expected)
