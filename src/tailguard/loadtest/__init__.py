"""Load testing: scenarios as plain Python, closed and open models, HDR latencies, SLOs.

::

    from tailguard.loadtest import User, between, run, task

    class RealisticLoadTest(User):
        wait_time = between(1, 5)            # think time, seconds

        @task(6)
        async def browse(self) -> None:
            await self.client.get("/products")

    result = await run(RealisticLoadTest, users=50, duration=60, host="http://127.0.0.1:8000")
    result = await run("http://127.0.0.1:8000/", rate=200, duration=10)    # open model

Scenarios (``scenario.py``): :class:`User`, :func:`task`, :func:`between`, :func:`constant`,
:func:`load_scenario`. Open-model schedules (``profiles.py``): :class:`ArrivalRate`,
:class:`Ramp`; latencies run from each request's intended start. The engine (``engine.py``):
:func:`run`; several processes (``workers.py``): :func:`run_processes`; slices of one load for
several machines: :class:`Segment`. Results (``results.py``): :class:`Result` (the result JSON,
``docs/design/loadtest-result.md``) and :func:`merge`; HDR histograms: :class:`Histogram`;
thresholds (``slo.py``): :func:`parse_slo`; the HTTP client: :class:`Client`, :class:`Response`.
The CLI is ``tailguard loadtest``.

``import tailguard.loadtest`` stays light: the engine, the client and the workers (asyncio
machinery, uvloop) load on first access to their names; hdrh only when a histogram is encoded
or decoded, rich only for live progress on a terminal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tailguard.loadtest.histogram import Histogram
from tailguard.loadtest.profiles import ArrivalRate, Profile, Ramp
from tailguard.loadtest.results import Result, merge
from tailguard.loadtest.scenario import User, between, constant, load_scenario, task
from tailguard.loadtest.segment import Segment
from tailguard.loadtest.slo import SLO, SloOutcome, parse_slo

if TYPE_CHECKING:
    from tailguard.loadtest.client import Client, Response
    from tailguard.loadtest.engine import run
    from tailguard.loadtest.workers import run_processes

__all__ = [
    "SLO",
    "ArrivalRate",
    "Client",
    "Histogram",
    "Profile",
    "Ramp",
    "Response",
    "Result",
    "Segment",
    "SloOutcome",
    "User",
    "between",
    "constant",
    "load_scenario",
    "merge",
    "parse_slo",
    "run",
    "run_processes",
    "task",
]

_LAZY = {
    "Client": "tailguard.loadtest.client",
    "Response": "tailguard.loadtest.client",
    "run": "tailguard.loadtest.engine",
    "run_processes": "tailguard.loadtest.workers",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tailguard.loadtest' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
