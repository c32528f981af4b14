"""Coordinated omission: a server that stalls every answer for 0.5 s once every 2 s (the
issue's 1 s every 5 s, scaled down for the suite), loaded at a constant rate.

The open model measures each request from its intended start, so the requests that met the
stall show it: p99 is close to the stall itself. A closed loop (each user waits for its answer
before sending the next) sends almost nothing during the stall, so the stall is one slow
request per user among thousands of fast ones and its p99 hides it: coordinated omission.
"""

from __future__ import annotations

import pytest

from tailguard.loadtest import run
from tests.unit.loadtest.responders import Responder

pytestmark = pytest.mark.timeout(60)

PERIOD, STALL = 2.0, 0.5  # seconds: the last 0.5 s of every 2 s, answers are held


async def test_open_model_sees_the_stall_that_a_closed_loop_hides() -> None:
    with Responder(stall=(PERIOD, STALL)) as server:
        open_model = await run(server.url, rate=200, duration=3.0)
    with Responder(stall=(PERIOD, STALL)) as server:
        closed_loop = await run(server.url, users=10, duration=3.0, max_requests=200_000)
    open_p99 = open_model.totals.histogram.percentile_ms(99)
    closed_p99 = closed_loop.totals.histogram.percentile_ms(99)
    assert open_model.totals.requests == 600
    assert open_model.totals.errors == closed_loop.totals.errors == 0
    assert open_p99 >= 0.9 * STALL * 1000
    assert closed_loop.totals.histogram.percentile_ms(100) >= 0.9 * STALL * 1000  # it saw them
    assert closed_p99 < 0.1 * open_p99, (open_p99, closed_p99)
    print(f"open model p99 {open_p99:.1f} ms; closed loop p99 {closed_p99:.1f} ms")
