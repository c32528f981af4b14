"""The guide's capacity plan, reproduced exactly, at 1x and 2x, beside the utilization law."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.capacity import CapacityPlan, plan
from tailguard.errors import ConfigurationError


def capacity_planning(
    expected_rps: float,
    avg_response_time_ms: float,
    cpu_per_request: float,
    memory_per_request_mb: float,
) -> dict[str, Any]:
    """The guide's function, verbatim (the oracle: ``plan`` must give exactly this)."""
    # Little's Law: L = λ * W
    concurrent_requests = expected_rps * (avg_response_time_ms / 1000)
    # CPU cores needed (with 20% headroom)
    cpu_cores = (expected_rps * cpu_per_request) / 0.8
    # Memory needed
    memory_gb = (concurrent_requests * memory_per_request_mb) / 1024 / 0.8
    # Instances needed (assuming 4 cores, 16GB per instance)
    instances = max(cpu_cores / 4, memory_gb / 16)
    return {
        "concurrent_requests": concurrent_requests,
        "required_cpu_cores": cpu_cores,
        "required_memory_gb": memory_gb,
        "instances_needed": math.ceil(instances),
    }


GUIDE_KEYS = ["concurrent_requests", "required_cpu_cores", "required_memory_gb", "instances_needed"]


def test_the_guide_example_is_reproduced_exactly() -> None:
    # The guide: capacity_planning(1000, 200, 0.1, 50) -> 200 concurrent, 125 cores, 12.2 GB,
    # 32 instances. By hand: 1000 x 0.2 = 200; 1000 x 0.1 / 0.8 = 125;
    # 200 x 50 / 1024 / 0.8 = 12.207; max(125 / 4, 12.207 / 16) = max(31.25, 0.76) -> 32.
    result = plan(rps=1000, latency_ms=200, cpu_per_request=0.1, memory_mb=50)
    assert result.expected.to_dict() == capacity_planning(1000, 200, 0.1, 50)
    assert result.expected.to_dict() == {
        "concurrent_requests": 200.0,
        "required_cpu_cores": 125.0,
        "required_memory_gb": 12.20703125,
        "instances_needed": 32,
    }
    assert round(result.required_memory_gb, 1) == 12.2
    assert type(result.instances_needed) is int
    assert (result.concurrent_requests, result.required_cpu_cores) == (200.0, 125.0)


def test_to_dict_starts_with_the_guide_keys_and_is_json() -> None:
    data = plan(1000, 200, 0.1, 50).to_dict()
    assert list(data)[:4] == GUIDE_KEYS
    assert {key: data[key] for key in GUIDE_KEYS} == capacity_planning(1000, 200, 0.1, 50)
    assert set(data) == {*GUIDE_KEYS, "inputs", "at_2x", "utilization_law", "notes"}
    assert json.loads(json.dumps(data)) == data


@given(
    rps=st.floats(min_value=1e-3, max_value=1e7),
    latency_ms=st.floats(min_value=1e-3, max_value=1e6),
    cpu=st.floats(min_value=0, max_value=1e3),
    memory_mb=st.floats(min_value=0, max_value=1e6),
)
def test_plan_is_the_guide_for_any_input(
    rps: float, latency_ms: float, cpu: float, memory_mb: float
) -> None:
    result = plan(rps, latency_ms, cpu, memory_mb)
    assert result.expected.to_dict() == capacity_planning(rps, latency_ms, cpu, memory_mb)
    assert result.at_2x.to_dict() == capacity_planning(2 * rps, latency_ms, cpu, memory_mb)


def test_the_2x_plan_is_the_guide_at_twice_the_load() -> None:
    # The checklist's "plan for 2x expected load": 2000 rps -> 400 in flight, 250 cores,
    # 24.4 GiB, 250 / 4 = 62.5 -> 63 instances.
    at_2x = plan(1000, 200, 0.1, 50).at_2x
    assert at_2x.rps == 2000
    assert at_2x.to_dict() == capacity_planning(2000, 200, 0.1, 50)
    assert at_2x.to_dict() == {
        "concurrent_requests": 400.0,
        "required_cpu_cores": 250.0,
        "required_memory_gb": 24.4140625,
        "instances_needed": 63,
    }


def test_the_utilization_law_agrees_on_cpu_and_not_on_memory() -> None:
    result = plan(1000, 200, 0.1, 50)
    view = result.utilization_law
    assert view.busy_cores == pytest.approx(100)  # U = X x S: 1000/s x 0.1 s
    assert view.target_utilization == 0.8
    assert view.required_cpu_cores == result.required_cpu_cores == 125
    assert view.memory_in_flight_gb == pytest.approx(200 * 50 / 1024)  # no headroom: 9.77
    assert result.required_memory_gb == pytest.approx(view.memory_in_flight_gb / 0.8)
    assert view.instances_needed == 32  # CPU-bound: the memory difference does not matter
    assert view.fleet_utilization == pytest.approx(100 / (32 * 4))  # 78%
    assert view.fleet_utilization_at_2x == pytest.approx(200 / (32 * 4))  # 156%: 2x needs more
    notes = "\n".join(result.notes)
    assert "Little's law" in notes
    assert "utilization law" in notes
    assert "the guide's formula is exactly this" in notes  # CPU
    assert "Memory differs" in notes
    assert "9.77 GiB" in notes
    assert "12.2 GiB" in notes
    assert "156%" in notes
    assert "63" in notes


def test_a_memory_bound_plan_notes_that_the_instance_counts_differ() -> None:
    # 100 rps x 2 s = 200 in flight x 500 MB = 97.7 GiB: 6.1 instances in flight, 7.6 (8) by
    # the guide's memory headroom; CPU needs only 100 x 0.01 / 0.8 / 4 = 0.3.
    result = plan(100, 2000, 0.01, 500)
    assert result.expected.to_dict() == capacity_planning(100, 2000, 0.01, 500)
    assert result.instances_needed == 8
    assert result.utilization_law.instances_needed == 7
    assert any(note.startswith("Instances differ: 8 by the guide, 7") for note in result.notes)


def test_cpu_seconds_above_the_latency_are_flagged() -> None:
    result = plan(10, 100, 0.5, 10)  # 0.5 CPU-s inside 0.1 s
    assert any("more than one core at once" in note for note in result.notes)


def test_headroom_and_instance_size_are_parameters() -> None:
    result = plan(1000, 200, 0.1, 50, headroom=0.5, instance_cores=16, instance_memory_gb=64)
    assert result.required_cpu_cores == pytest.approx(200)
    assert result.required_memory_gb == pytest.approx(200 * 50 / 1024 / 0.5)
    assert result.instances_needed == math.ceil(200 / 16)
    no_headroom = plan(1000, 200, 0.1, 50, headroom=0)
    assert no_headroom.required_cpu_cores == pytest.approx(100)
    assert not any("Memory differs" in note for note in no_headroom.notes)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"rps": 0}, "rps"),
        ({"rps": -5}, "rps"),
        ({"latency_ms": 0}, "latency_ms"),
        ({"latency_ms": math.nan}, "latency_ms"),
        ({"cpu_per_request": -0.1}, "cpu_per_request"),
        ({"memory_mb": math.inf}, "memory_mb"),
        ({"headroom": 1.0}, "headroom"),
        ({"headroom": -0.1}, "headroom"),
        ({"instance_cores": 0}, "instance_cores"),
        ({"instance_memory_gb": -16}, "instance_memory_gb"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs: dict[str, float], name: str) -> None:
    arguments: dict[str, float] = {
        "rps": 1000,
        "latency_ms": 200,
        "cpu_per_request": 0.1,
        "memory_mb": 50,
        **kwargs,
    }
    with pytest.raises(ConfigurationError, match=f"^{name}=") as info:
        plan(**arguments)
    assert isinstance(info.value, ValueError)
    assert info.value.setting == name


def test_the_plan_is_a_frozen_value() -> None:
    result = plan(1000, 200, 0.1, 50)
    assert isinstance(result, CapacityPlan)
    assert result == plan(1000, 200, 0.1, 50)
    with pytest.raises(AttributeError):
        result.rps = 1  # type: ignore[misc]
