"""The quick mode's drivers against loopback responders: closed and open models, the request
cap, errors by kind, segments, and memory that does not grow with requests."""

from __future__ import annotations

import pytest

from tailguard.errors import ConfigurationError
from tailguard.loadtest import Ramp, merge, run
from tailguard.loadtest.results import Result
from tests.unit.loadtest.responders import Responder, free_port

pytestmark = pytest.mark.timeout(30)


async def test_closed_model_stops_at_the_request_cap() -> None:
    with Responder() as server:
        result = await run(server.url, users=4, duration=30, max_requests=2000)
    assert result.totals.requests == 2000 == server.requests
    assert result.totals.ok == 2000
    assert result.model == "closed"
    assert list(result.actions) == ["GET /"]
    assert result.duration_s < 30
    assert sum(s.requests for s in result.timeline) == 2000
    assert result.totals.histogram.total == 2000


async def test_open_model_keeps_its_rate() -> None:
    with Responder() as server:
        result = await run(server.url, rate=500, duration=1.0)
    assert result.totals.requests == 500 == server.requests
    assert result.model == "open"
    assert result.settings["rate"] == 500
    assert result.settings["connections"] == 100


async def test_a_ramp_sends_the_area_under_its_rate() -> None:
    with Responder() as server:
        result = await run(server.url, rate=Ramp([(0.5, 400), (0.5, 400)]))
    assert result.totals.requests == pytest.approx(300, abs=2)  # 100 up the ramp, 200 flat
    assert result.settings["duration_s"] == 1.0


async def test_errors_by_kind() -> None:
    with Responder(status=500) as server:
        errors = await run(server.url, users=2, duration=30, max_requests=100)
    assert errors.totals.errors_by_kind == {"status_500": 100}
    assert errors.totals.histogram.total == 100  # a 500 is an answer: its latency counts
    refused = await run(f"http://127.0.0.1:{free_port()}/", rate=50, duration=0.4)
    assert refused.totals.errors_by_kind == {"connect": 20}
    assert refused.totals.histogram.total == 0  # nothing reached a server: nothing to time
    with Responder(hang=True) as server:
        hung = await run(server.url, rate=20, duration=0.5, timeout=0.2)
    assert hung.totals.errors_by_kind == {"timeout": 10}
    assert hung.totals.histogram.figures(["min"])["min"] >= 200.0


async def test_segments_add_up_to_the_whole_run() -> None:
    with Responder() as server:
        whole = await run(server.url, users=6, duration=30, max_requests=3000)
        parts = [
            await run(server.url, users=6, duration=30, max_requests=3000, segment=f"{i}/2")
            for i in (1, 2)
        ]
    assert [p.settings["users"] for p in parts] == [3, 3]
    merged = merge(parts)
    assert merged.totals.requests == whole.totals.requests == 3000
    assert merged.settings["users"] == 6
    assert merged.settings["segment"] == "1/1"
    merged_hist = parts[0].totals.histogram
    merged_hist.add(parts[1].totals.histogram)
    assert merged.to_dict()["totals"]["latency_ms"] == merged_hist.figures()


async def test_open_segments_split_the_rate() -> None:
    with Responder() as server:
        parts = [
            await run(server.url, rate=400, duration=0.5, segment=f"{i}/4") for i in (1, 2, 3, 4)
        ]
    assert [p.totals.requests for p in parts] == [50, 50, 50, 50]
    assert merge(parts).settings["rate"] == 400


def test_bad_settings_are_refused() -> None:
    import asyncio

    for options, setting in [
        ({}, "users/rate"),
        ({"users": 1, "rate": 1.0}, "users/rate"),
        ({"users": 0}, "users"),
        ({"users": 1, "duration": 0}, "duration"),
        ({"users": 1, "max_requests": 0}, "max_requests"),
        ({"users": 1, "timeout": -1}, "timeout"),
        ({"rate": 10.0, "connections": 0}, "connections"),
    ]:
        with pytest.raises(ConfigurationError) as caught:
            asyncio.run(run("http://127.0.0.1:1/", **options))  # type: ignore[arg-type]
        assert caught.value.setting == setting


def _containers(obj: object, seen: set[int] | None = None) -> list[int]:
    """The sizes of every list, dict, set and tuple reachable from ``obj``."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return []
    seen.add(id(obj))
    sizes: list[int] = []
    children: list[object] = []
    if isinstance(obj, list | tuple | set | frozenset):
        sizes.append(len(obj))
        children = list(obj)
    elif isinstance(obj, dict):
        sizes.append(len(obj))
        children = [*obj.keys(), *obj.values()]
    elif hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
        names = list(getattr(obj, "__dict__", {}))
        for klass in type(obj).__mro__:
            names += list(getattr(klass, "__slots__", ()))
        children = [getattr(obj, name, None) for name in names]
    for child in children:
        if not isinstance(child, str | bytes | int | float | type(None) | type):
            sizes += _containers(child, seen)
    return sizes


async def test_an_open_run_holds_nothing_per_request() -> None:
    """HDR counts, not samples: no container in the result grows with the requests (the
    largest is a histogram's buckets, far fewer than the requests)."""
    with Responder() as server:
        small: Result = await run(server.url, rate=5000, duration=1.0, max_requests=1000)
        large: Result = await run(server.url, rate=5000, duration=1.0, max_requests=4000)
    assert (small.totals.requests, large.totals.requests) == (1000, 4000)
    assert max(_containers(small)) < 1000
    assert max(_containers(large)) < 1000  # four times the requests, no container near them


def test_the_open_model_does_not_spin_between_close_arrivals() -> None:
    # Found by bench/loadgen.py: uvloop runs a timer under 0.5 ms at once, so arrivals 0.5 ms
    # apart kept the loop busy (a whole core at 2,000/s). CPU time, not wall time, is asserted:
    # a spinning loop burns about a CPU-second per second whatever else the machine does.
    import resource

    import uvloop

    from tailguard.loadtest import run
    from tests.unit.loadtest.responders import ResponderProcess

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    with ResponderProcess() as responder:

        async def main() -> tuple[int, float]:
            before = cpu()
            result = await run(responder.url, rate=2000, duration=2.0)
            return result.totals.requests, cpu() - before

        requests, spent = uvloop.run(main())
    assert requests >= 3500
    assert spent < 1.5, f"{spent:.2f} CPU-seconds for 2 s of arrivals: the timer spins"
