"""The runner every experiment shares: two shops (the practice on, its naive twin), the same
load on each, alternated over rounds so that machine noise cannot decide a row.

An experiment is a module of ``lab.experiments`` with an ``EXPERIMENT``: its practice (the
``SHOP_NAIVE`` name), the headline metric, the shops' settings, and ``measure(lab, shop)``
returning one round's figures for one shop (the headline under ``metric``). A new practice is
one new module.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lab.ledger import Row
from lab.stack import Lab, Shop, shops
from tailguard.loadtest import Result

__all__ = ["Experiment", "figures", "run_experiment"]

Measure = Callable[[Lab, Shop], Awaitable[dict[str, float]]]
Prepare = Callable[[Lab], Awaitable[None]]


@dataclass
class Experiment:
    """What one practice's experiment is."""

    practice: str
    experiment: str
    metric: str
    unit: str
    lower_is_better: bool
    measure: Measure
    settings: dict[str, Any] = field(default_factory=dict)
    """Shop settings for both variants."""
    naive_off: str = ""
    """SHOP_NAIVE of the practice-on shop (practices switched off in both, to isolate one)."""
    prepare: Prepare | None = None
    """Sets the simulators up before the shops start (reset to defaults after)."""
    rounds: int = 2


def figures(result: Result, *, prefix: str = "") -> dict[str, float]:
    """The usual figures of a load run: requests/s, p50/p99 (ms), error rate."""
    stats = result.totals
    numbers = stats.histogram.figures()
    requests = max(stats.requests, 1)
    return {
        f"{prefix}rps": round(result.rps, 1),
        f"{prefix}p50_ms": float(numbers.get("p50", 0.0)),
        f"{prefix}p99_ms": float(numbers.get("p99", 0.0)),
        f"{prefix}error_rate": round(stats.errors / requests, 4),
        f"{prefix}requests": float(stats.requests),
    }


async def run_experiment(lab: Lab, experiment: Experiment, *, log: Callable[[str], None]) -> Row:
    """Both variants, ``rounds`` times each, alternating which goes first; medians per figure."""
    started = time.monotonic()
    await lab.reset_simulators()
    if experiment.prepare is not None:
        await experiment.prepare(lab)
    naive_on = experiment.naive_off
    naive_twin = ",".join(p for p in (experiment.naive_off, experiment.practice) if p)
    specs = [
        ("on", naive_on, dict(experiment.settings)),
        ("off", naive_twin, dict(experiment.settings)),
    ]
    samples: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    try:
        async with shops(lab, *specs) as (on, off):
            await asyncio.gather(_warm(lab, on), _warm(lab, off))
            for i in range(experiment.rounds):
                order: Sequence[tuple[str, Shop]] = (
                    [("on", on), ("off", off)] if i % 2 == 0 else [("off", off), ("on", on)]
                )
                for variant, shop in order:
                    samples[variant].append(await experiment.measure(lab, shop))
                    log(
                        f"  {experiment.practice}: round {i + 1}, {variant}: "
                        f"{experiment.metric}={samples[variant][-1].get(experiment.metric)}"
                    )
    finally:
        await lab.reset_simulators()
    on_figures, off_figures = _median(samples["on"]), _median(samples["off"])
    details = {
        "on": on_figures,
        "off": off_figures,
        "rounds": experiment.rounds,
        "seconds": round(time.monotonic() - started, 1),
        "naive": {"on": naive_on, "off": naive_twin},
    }
    return Row.of(
        experiment.practice,
        experiment.experiment,
        experiment.metric,
        experiment.unit,
        on_figures[experiment.metric],
        off_figures[experiment.metric],
        lower_is_better=experiment.lower_is_better,
        details=details,
    )


async def _warm(lab: Lab, shop: Shop) -> None:
    """A few hundred requests before the first round: connections, caches and code paths."""
    assert lab.http is not None
    for i in range(1, 201):
        async with lab.http.get(f"{shop.url}/products/{i}") as response:
            await response.read()


def _median(samples: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for sample in samples for k in sample}
    return {k: round(statistics.median(s[k] for s in samples if k in s), 3) for k in sorted(keys)}
