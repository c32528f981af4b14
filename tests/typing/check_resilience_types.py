"""Checked by mypy (``make typecheck``), never run: decorators keep the wrapped signature."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from tailguard.resilience import (
    Bulkhead,
    CircuitBreaker,
    Fallback,
    Hedge,
    Pipeline,
    Retry,
    RetryBudget,
    Timeout,
)

guard = Pipeline(
    Timeout(1.0), Retry(attempts=3, budget=RetryBudget()), CircuitBreaker(), Bulkhead()
)


@guard
async def fetch_profile(user_id: int, *, fields: str = "all") -> dict[str, str]:
    return {"id": str(user_id), "fields": fields}


@Retry(attempts=2)
async def ping(host: str) -> float:
    return 0.1


@Fallback[list[str]]([])
async def recommendations(user_id: int) -> list[str]:
    return []


@Hedge(0.05)
async def search(q: str, limit: int = 10) -> list[int]:
    return []


@Fallback("anonymous")
async def display_name(user_id: int) -> str:
    return "x"


@Fallback(None)
async def maybe_avatar(user_id: int) -> bytes:
    return b""


async def main() -> None:
    coro = fetch_profile(1)
    _ = assert_type(coro, Coroutine[Any, Any, dict[str, str]])
    coro.close()
    assert_type(await display_name(1), str)
    assert_type(await maybe_avatar(1), bytes | None)
    assert_type(await fetch_profile(1, fields="name"), dict[str, str])
    assert_type(await ping("db"), float)
    assert_type(await recommendations(3), list[str])
    assert_type(await search("shoes", limit=3), list[int])
    assert_type(await guard.call(fetch_profile, 1), dict[str, str])
    assert_type(await CircuitBreaker().call(ping, "cache"), float)
    assert_type(await Timeout(1.0).call(search, "x"), list[int])

    _ = fetch_profile("not an int")  # type: ignore[arg-type]
    _ = fetch_profile(1, color="red")  # type: ignore[call-arg]
    await guard.call(ping, 3)  # type: ignore[arg-type]
    async with Bulkhead() as bulkhead:
        assert_type(bulkhead, Bulkhead)
