"""TTL jitter and single flight: 500 product keys written to the cache at the same moment with
a 5 s TTL, then read uniformly by 32 concurrent readers until they have all expired and been
loaded again; the peak of origin (database) loads per second as they expire.

Over HTTP the keys could not be written at one moment (the server loads them one request at
a time), so this experiment runs the shop's own read path (``views.product`` through its
``TieredCache``) in process, on the shop's database, with the shop's settings.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time

from lab.runner import Experiment
from lab.stack import Lab, Shop

PRODUCTS = 500
TTL = 5.0  # seconds: the shop's 10 % jitter then spreads expiries over 0.5 s
SECONDS = 1.3 * TTL  # one expiry of every key
READERS = 32
TICK = 0.1  # seconds per bucket of the loads-per-second series


async def measure(lab: Lab, shop: Shop) -> dict[str, float]:
    from shop.bootstrap import bootstrap
    from shop.config import load_settings
    from shop.service_layer import views
    from tailguard.observe import QueryCounter

    settings = load_settings(
        data_dir=shop.data_dir,
        database_url=shop.settings.get("database_url"),
        redis_url=shop.settings.get("redis_url"),
        namespace=shop.settings.get("namespace", "shop"),
        naive=shop.naive,
        cache_ttl=TTL,
        payments_urls=shop.settings["payments_urls"],
        recommendations_urls=shop.settings["recommendations_urls"],
    )
    ids = list(range(1, PRODUCTS + 1))
    async with bootstrap(settings) as svc:
        with QueryCounter(svc.extras["engine"], on_n_plus_one="ignore") as counter:
            await views.products_by_ids(svc, ids)  # one query, every key set at one moment
            stop = time.monotonic() + SECONDS
            rng = random.Random(5)
            reads = 0

            async def reader() -> None:
                nonlocal reads
                while time.monotonic() < stop:
                    await views.product(svc, rng.choice(ids))
                    reads += 1
                    await asyncio.sleep(0)

            samples: list[int] = []

            async def sampler() -> None:
                while time.monotonic() < stop:
                    samples.append(counter.total)
                    await asyncio.sleep(TICK)

            await asyncio.gather(sampler(), *(reader() for _ in range(READERS)))
    rates = [(b - a) / TICK for a, b in itertools.pairwise(samples)]
    return {
        "peak_loads_per_s": round(max(rates, default=0.0), 1),
        "loads": float(samples[-1] - samples[0]) if samples else 0.0,
        "reads": float(reads),
    }


EXPERIMENT = Experiment(
    practice="jitter",
    experiment="500 keys cached at one moment, TTL 5 s, 32 readers through the expiry (in process)",
    metric="peak_loads_per_s",
    unit="loads/s",
    lower_is_better=True,
    measure=measure,
    rounds=2,
)
