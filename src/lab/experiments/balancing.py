"""Load balancing: three recommender replicas, one 10x slower; the dashboard's p99 with
PowerOfTwo (peak EWMA) against round robin."""

from __future__ import annotations

from lab.experiments.concurrency import dashboard
from lab.load import closed
from lab.runner import Experiment, figures
from lab.stack import Lab, Shop


async def one_slow_replica(lab: Lab) -> None:
    await lab.recommenders_behave(latency_median=0.020, latency_p99=0.020)
    await lab.behave(lab.recommenders[0], slow=True, slow_factor=10.0)


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    return figures(await closed(shop, dashboard, users=8, duration=2.5))


EXPERIMENT = Experiment(
    practice="balancing",
    experiment="GET /users/{id}/dashboard, 3 recommender replicas, one 10x slower, 8 users",
    metric="p99_ms",
    unit="ms",
    lower_is_better=True,
    measure=measure,
    prepare=one_slow_replica,
    settings={"recommendation_timeout": 1.0},
)
