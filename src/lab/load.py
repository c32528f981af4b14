"""Load shapes the experiments share, on ``tailguard.loadtest``: closed loops of signed-in users."""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from lab.stack import Shop, token
from tailguard.loadtest import Result, User, constant, run, task

__all__ = ["HEAVY_USERS", "action_figures", "checkout", "closed", "opened", "zipf_products"]

HEAVY_USERS = list(range(1, 21))
"""Seeded users with many orders (the seed's buyers are skewed towards low ids)."""

Action = Callable[[Any, dict[str, str], int], Awaitable[Any]]


def zipf_products(count: int = 500, s: float = 1.1, seed: int = 7) -> Callable[[], int]:
    """A function drawing product ids 1..count with Zipf(s) popularity."""
    rng = random.Random(seed)
    weights = list(itertools.accumulate(1 / (k**s) for k in range(1, count + 1)))
    ids = list(range(1, count + 1))
    return lambda: rng.choices(ids, cum_weights=weights, k=1)[0]


def _signed(shop: Shop, action: Action, user_ids: Sequence[int]) -> type[User]:
    pool = itertools.cycle(user_ids)

    class Signed(User):
        host = shop.url
        wait_time = constant(0)

        async def on_start(self) -> None:
            self.user_id = next(pool)
            self.headers = {"Authorization": f"Bearer {token(self.user_id)}"}

        @task
        async def act(self) -> None:
            await action(self.client, self.headers, self.user_id)

    return Signed


async def opened(
    shop: Shop, action: Action, *, rate: float, duration: float, user_ids: Sequence[int]
) -> Result:
    """``action`` started ``rate`` times a second whatever the shop does (the open model),
    as signed-in users cycling over ``user_ids``."""
    return await run(
        _signed(shop, action, user_ids),
        rate=rate,
        duration=duration,
        connections=1000,
        label=shop.name,
    )


async def closed(
    shop: Shop,
    action: Action,
    *,
    users: int,
    duration: float,
    user_ids: Sequence[int] = HEAVY_USERS,
    timeout: float = 30.0,  # noqa: ASYNC109 - per request, not for the run
) -> Result:
    """``users`` signed-in users (cycling over ``user_ids``), no think time, each calling
    ``await action(client, headers, user_id)`` in a loop for ``duration`` seconds."""
    signed = _signed(shop, action, user_ids)
    return await run(signed, users=users, duration=duration, timeout=timeout, label=shop.name)


async def checkout(client: Any, headers: dict[str, str], user_id: int) -> Any:
    """One product into the cart, then ``POST /orders`` with a fresh Idempotency-Key."""
    await client.post(
        "/cart/items",
        json={"product_id": 1 + user_id % 400},
        headers=headers,
        name="POST /cart/items",
    )
    key = {"Idempotency-Key": uuid.uuid4().hex, **headers}
    return await client.post("/orders", headers=key, name="POST /orders")


def action_figures(result: Result, name: str) -> dict[str, float]:
    """p50/p99 (ms), requests and error rate of one action of ``result``."""
    stats = result.actions.get(name)
    if stats is None:
        return {"p50_ms": 0.0, "p99_ms": 0.0, "requests": 0.0, "error_rate": 0.0}
    numbers = stats.histogram.figures()
    return {
        "p50_ms": float(numbers.get("p50", 0.0)),
        "p99_ms": float(numbers.get("p99", 0.0)),
        "requests": float(stats.requests),
        "error_rate": round(stats.errors / max(stats.requests, 1), 4),
    }
