"""Concurrency: the dashboard's three branches at once against one after another, with the
recommender at a constant 100 ms."""

from __future__ import annotations

from typing import Any

from lab.load import closed
from lab.runner import Experiment, figures
from lab.stack import Lab, Shop


async def dashboard(client: Any, headers: dict[str, str], user_id: int) -> None:
    await client.get(
        f"/users/{user_id}/dashboard", headers=headers, name="GET /users/{id}/dashboard"
    )


async def slow_recommender(lab: Lab) -> None:
    await lab.recommenders_behave(latency_median=0.100, latency_p99=0.100)


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    return figures(await closed(shop, dashboard, users=4, duration=2.0))


EXPERIMENT = Experiment(
    practice="concurrency",
    experiment="GET /users/{id}/dashboard, recommender 100 ms, 4 users",
    metric="p50_ms",
    unit="ms",
    lower_is_better=True,
    measure=measure,
    prepare=slow_recommender,
    settings={"recommendation_timeout": 1.0},
)
