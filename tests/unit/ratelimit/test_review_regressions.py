"""Regressions for defects found in review of tailguard.ratelimit; each failed before its fix."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from tailguard.errors import ConfigurationError
from tailguard.ratelimit import (
    GCRA,
    ConcurrencyLimit,
    FixedWindow,
    MemoryStorage,
    RateLimitMiddleware,
    RedisStorage,
    SlidingLog,
    client_ip,
    parse_rates,
)


@pytest.mark.parametrize(
    "text", ["100/ms", "10/minutess", "1/second; burst=\u00b2", "1/s; burst=2; burst=3"]
)
def test_unknown_units_and_odd_bursts_are_refused(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_rates(text)


def test_plural_and_short_units_still_parse() -> None:
    assert [r.period for r in parse_rates("1/seconds, 2/mins, 3/hours, 4/days, 5/2 minutes")] == [
        1.0, 60.0, 3600.0, 86400.0, 120.0,
    ]  # fmt: skip


async def test_a_cost_no_limit_can_ever_admit_is_refused_up_front() -> None:
    with pytest.raises(ConfigurationError, match="cost"):
        await GCRA("2/second; burst=4").check("k", cost=5)
    with pytest.raises(ConfigurationError, match="cost"):
        await FixedWindow("3/second").check("k", cost=4)
    assert (await GCRA("2/second; burst=4").check("k", cost=4)).allowed


async def test_sliding_log_reset_after_is_when_the_whole_quota_is_back() -> None:
    limiter = SlidingLog("10/minute")
    for t in range(10):
        last = await limiter.check("k", now=1000.0 + t)
    refused = await limiter.check("k", now=1009.5)
    assert not refused.allowed
    assert refused.reset_after == pytest.approx(1009.0 + 60 - 1009.5, abs=1e-5)
    back = [(await limiter.check("k", now=1009.5 + refused.reset_after)).allowed for _ in range(10)]
    assert back == [True] * 10
    assert last.reset_after == pytest.approx(60.0, abs=1e-5)


def test_forwarded_for_over_several_lines_and_with_ports() -> None:
    import ipaddress

    trusted = [ipaddress.ip_network("10.0.0.0/8")]
    two_lines = {
        "client": ("10.0.0.5", 1),
        "headers": [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-for", b"203.0.113.9")],
    }
    assert client_ip(two_lines, trusted) == "203.0.113.9"  # the last hop, not the client's line
    ported = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"203.0.113.9:5555")]}
    assert client_ip(ported, trusted) == "203.0.113.9"
    v6 = {"client": ("10.0.0.5", 1), "headers": [(b"x-forwarded-for", b"[2001:db8::1]:443")]}
    assert client_ip(v6, trusted) == "2001:db8::1"


async def test_the_policy_header_names_the_limit_that_decided() -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, str]:
        return {}

    app.add_middleware(RateLimitMiddleware, limits={"*": GCRA("10/second, 10/minute")})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        statuses = []
        for _ in range(11):
            r = await c.get("/")
            statuses.append(r.status_code)
    assert statuses[-1] == 429
    assert r.headers["ratelimit-policy"].endswith(";q=10;w=60")


async def test_memory_leases_leave_nothing_behind() -> None:
    storage = MemoryStorage()
    limiter = ConcurrencyLimit(2, storage=storage)
    for i in range(100):
        async with limiter.hold(f"ip{i}"):
            pass
    assert len(storage) == 0


async def test_a_redis_storage_does_not_keep_limiters_alive(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    storage = RedisStorage(client)
    refs: list[weakref.ref[Any]] = []
    try:
        for i in range(20):
            limiter = GCRA("5/minute", storage=storage, prefix=f"tgtest:leak{i}")
            await limiter.check("k")
            refs.append(weakref.ref(limiter))
            del limiter
        gc.collect()
        assert sum(r() is not None for r in refs) == 0
    finally:
        for i in range(20):
            await client.delete(f"tgtest:leak{i}:{{k}}:g:5/60")
        await client.aclose()


async def test_a_trailing_slash_does_not_slip_past_the_limit() -> None:
    app = FastAPI()

    @app.post("/login")
    @app.post("/login/")
    async def login() -> dict[str, str]:
        return {}

    app.add_middleware(RateLimitMiddleware, limits={"/login": GCRA("1/minute")})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.post("/login")).status_code == 200
        assert (await c.post("/login/")).status_code == 429


async def test_websocket_handshakes_are_limited_too() -> None:
    sent: list[dict[str, Any]] = []
    limiter = RateLimitMiddleware(
        lambda s, r, w: _accept(w),
        limits={"*": GCRA("1/minute")},  # type: ignore[arg-type]
    )

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/ws", "headers": [], "client": ("198.51.100.1", 9)}
    await limiter(scope, receive, send)  # type: ignore[arg-type]
    await limiter(scope, receive, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert sent[1]["code"] == 1008


async def _accept(send: Any) -> None:
    await send({"type": "websocket.accept"})


async def test_route_names_in_headers_stay_printable_ascii() -> None:
    app = FastAPI()

    @app.get("/caf\u00e9")
    async def cafe() -> dict[str, str]:
        return {}

    app.add_middleware(RateLimitMiddleware, limits={"/caf\u00e9": GCRA("5/minute")})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/caf%C3%A9")
    assert r.headers["ratelimit-policy"] == '"/caf?";q=5;w=60'


def test_periods_that_differ_beyond_six_digits_keep_separate_state() -> None:
    a = GCRA("1/1.0000001 seconds")
    b = GCRA("1/1.0000002 seconds")
    assert a.key_tails != b.key_tails
    assert GCRA("5/minute").key_tails == ["}:g:5/60"]


class _ReplyInFlight:
    """A slot storage whose grant is decided but not yet delivered (a Redis reply still on
    the wire when the caller is cancelled): an adapter-seam fake around the memory storage."""

    def __init__(self, inner: MemoryStorage) -> None:
        self.inner = inner
        self.granted = asyncio.Event()

    async def acquire_slot(
        self, key: str, limit: int, lease: float, token: str, now: float | None
    ) -> tuple[bool, int, float]:
        result = await self.inner.acquire_slot(key, limit, lease, token, now)
        self.granted.set()
        await asyncio.Event().wait()  # the reply never arrives before the cancellation
        return result

    async def release_slot(self, key: str, token: str) -> None:
        await self.inner.release_slot(key, token)


async def test_cancelling_acquire_after_the_grant_gives_the_slot_back() -> None:
    memory = MemoryStorage()
    slow = _ReplyInFlight(memory)
    task = asyncio.create_task(ConcurrencyLimit(1, storage=slow).acquire("k"))
    await slow.granted.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Without the give-back the one slot stays held for the whole 30 s lease.
    assert await ConcurrencyLimit(1, storage=memory).try_acquire("k") is not None


def test_an_algorithm_that_records_more_than_its_outcome_says_so() -> None:
    # The memory storage skips record() for algorithms that keep the outcome as it is.
    from tailguard.ratelimit.algorithms import Algorithm

    for cls in Algorithm.__subclasses__():
        overrides = cls.record is not Algorithm.record
        assert cls.keeps_outcome is not overrides, cls.__name__
