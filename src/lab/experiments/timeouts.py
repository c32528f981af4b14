"""Timeout and fallback: the recommender slow (2 s); the dashboard's p99 and the share of
dashboards that fell back (to the user's last recommendations or to popular products)."""

from __future__ import annotations

from typing import Any

from lab.load import closed
from lab.runner import Experiment, figures
from lab.stack import Lab, Shop

_fallbacks: dict[str, int] = {}


async def slow_recommender(lab: Lab) -> None:
    await lab.recommenders_behave(latency_median=2.0, latency_p99=2.0)


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    counts = {"fallback": 0, "answers": 0}

    async def dashboard(client: Any, headers: dict[str, str], user_id: int) -> None:
        response = await client.get(
            f"/users/{user_id}/dashboard", headers=headers, name="GET /users/{id}/dashboard"
        )
        if response.status == 200:
            counts["answers"] += 1
            if b'"recommendations_source":"live"' not in response.content:
                counts["fallback"] += 1

    found = figures(await closed(shop, dashboard, users=8, duration=2.5))
    found["fallback_share"] = round(counts["fallback"] / max(counts["answers"], 1), 3)
    return found


EXPERIMENT = Experiment(
    practice="timeouts",
    experiment="GET /users/{id}/dashboard, recommender 2 s, 8 users",
    metric="p99_ms",
    unit="ms",
    lower_is_better=True,
    measure=measure,
    prepare=slow_recommender,
    settings={"recommendation_timeout": 0.25},
)
