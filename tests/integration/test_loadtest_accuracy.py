"""Accuracy: against a responder that holds every answer 50 ms, the generator's p50 and p99
are within 5% of the truth, in both models.

The truth is what the responder actually held each answer (its timer may fire a little late:
that is real latency too) plus the loopback round trip, measured separately against the same
responder without a delay. The responder runs in a child process, as a real server would: in
a thread of the test's process, the GIL and garbage collections would add milliseconds of
their own.
"""

from __future__ import annotations

import statistics

import pytest

from tailguard.loadtest import run
from tailguard.loadtest.histogram import Histogram
from tests.unit.loadtest.responders import ResponderProcess

pytestmark = pytest.mark.timeout(60)

DELAY = 0.050  # seconds


def truth_ms(holds: list[float], rtt: float, percentile: float) -> float:
    hist = Histogram()
    for hold in holds:
        hist.record(int((hold + rtt) * 1_000_000))
    return hist.percentile_ms(percentile)


async def round_trip() -> float:
    """The loopback round trip (seconds): the median of a closed run without a delay."""
    with ResponderProcess() as server:
        result = await run(server.url, users=1, duration=0.3, max_requests=500)
    return result.totals.histogram.percentile_ms(50) / 1000


@pytest.mark.parametrize(
    "load", [{"rate": 200.0}, {"users": 10}], ids=["open-200-per-s", "closed-10-users"]
)
async def test_p50_and_p99_within_5_percent_of_the_truth(load: dict[str, float]) -> None:
    # Up to three tries: on a shared machine another process can take the CPU for a few
    # milliseconds, which lands in the tail of 400 samples and is not the generator's error.
    misses: list[tuple[float, float, float]] = []
    for _ in range(3):
        rtt = await round_trip()
        with ResponderProcess(delay=DELAY) as server:
            result = await run(server.url, duration=2.0, **load)  # type: ignore[arg-type]
        holds = server.holds
        assert result.totals.errors == 0
        assert result.totals.requests >= 300
        assert statistics.median(holds) >= DELAY
        misses = []
        for percentile in (50.0, 99.0):
            measured = result.totals.histogram.percentile_ms(percentile)
            truth = truth_ms(holds, rtt, percentile)
            if measured != pytest.approx(truth, rel=0.05):
                misses.append((percentile, measured, truth))
        if not misses:
            return
    pytest.fail(f"(percentile, measured ms, truth ms) off by more than 5%: {misses}")
