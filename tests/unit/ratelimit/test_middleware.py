"""RateLimitMiddleware over a FastAPI app: identities, templates, headers, storage failures."""

from __future__ import annotations

import math
import socket
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from tailguard.errors import ConfigurationError
from tailguard.ratelimit import GCRA, RateLimitMiddleware, RedisStorage, client_ip


def app_with(**kw: Any) -> httpx.AsyncClient:
    app = FastAPI()

    @app.get("/products/{pid}")
    async def product(pid: int) -> dict[str, int]:
        return {"id": pid}

    @app.post("/login")
    async def login() -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"ok": "yes"}

    app.add_middleware(RateLimitMiddleware, **kw)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 1234))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_429_with_retry_after_and_ietf_headers_per_route_template() -> None:
    limits = {"/products/{pid}": GCRA("2/minute"), "/login": GCRA("1/minute")}
    async with app_with(limits=limits) as c:
        ok = await c.get("/products/1")
        assert ok.status_code == 200
        assert ok.headers["ratelimit-policy"] == '"/products/{pid}";q=2;w=60'
        assert ok.headers["ratelimit"].startswith('"/products/{pid}";r=1;t=')
        assert (await c.get("/products/2")).status_code == 200  # same template, same budget
        refused = await c.get("/products/3")
        assert refused.status_code == 429
        assert refused.json()["detail"] == "rate limit exceeded"
        assert 1 <= int(refused.headers["retry-after"]) <= 30
        assert refused.headers["ratelimit"].startswith('"/products/{pid}";r=0;t=')
        assert (await c.post("/login")).status_code == 200  # its own limit
        assert (await c.post("/login")).status_code == 429
        assert (await c.get("/health")).status_code == 200  # not limited: no default
        assert "ratelimit" not in (await c.get("/health")).headers


async def test_identity_by_api_key_and_by_function() -> None:
    async with app_with(limits={"*": GCRA("1/minute")}, identify="api_key") as c:
        assert (await c.get("/health", headers={"x-api-key": "a"})).status_code == 200
        assert (await c.get("/health", headers={"x-api-key": "a"})).status_code == 429
        assert (await c.get("/health", headers={"x-api-key": "b"})).status_code == 200
        assert (await c.get("/health")).status_code == 200  # no key: not limited

    def user(scope: dict[str, Any]) -> str | None:
        return dict(scope["headers"]).get(b"x-user", b"").decode() or None

    async with app_with(limits={"*": GCRA("1/minute")}, identify=user) as c:
        assert (await c.get("/health", headers={"x-user": "u1"})).status_code == 200
        assert (await c.get("/health", headers={"x-user": "u1"})).status_code == 429


def test_client_ip_believes_forwarded_for_only_from_trusted_proxies() -> None:
    import ipaddress

    trusted = [ipaddress.ip_network("10.0.0.0/8")]
    direct = {"client": ("198.51.100.7", 1), "headers": [(b"x-forwarded-for", b"1.2.3.4")]}
    assert client_ip(direct, trusted) == "198.51.100.7"  # a spoofed header from a client
    via = {"client": ("10.0.0.2", 1), "headers": [(b"x-forwarded-for", b"1.2.3.4, 10.0.0.5")]}
    assert client_ip(via, trusted) == "1.2.3.4"
    assert client_ip(via) == "10.0.0.2"  # no trusted proxies: the peer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("fail_open", "status"), [(True, 200), (False, 503)])
async def test_a_dead_storage_fails_open_or_closed_after_one_fast_failure(
    fail_open: bool, status: int
) -> None:
    client = aioredis.Redis(host="127.0.0.1", port=closed_port())
    limiter = GCRA("100/minute", storage=RedisStorage(client))
    try:
        async with app_with(limits={"*": limiter}, fail_open=fail_open) as c:
            statuses = [(await c.get("/health")).status_code for _ in range(5)]
    finally:
        await client.aclose()
    assert statuses == [status] * 5


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="limits"):
        RateLimitMiddleware(lambda s, r, w: None, limits={})  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        RateLimitMiddleware(
            lambda s, r, w: None,  # type: ignore[arg-type,return-value]
            limits={"*": GCRA("1/second")},
            trusted_proxies=["not-a-network"],
        )


async def test_rate_limit_headers_match_the_middleware_for_a_check_done_elsewhere() -> None:
    from tailguard.ratelimit import GCRA, rate_limit_headers

    limiter = GCRA("2/minute")
    first = await limiter.check("user:1", now=0.0)
    assert dict(rate_limit_headers("cart", limiter, first)) == {
        "ratelimit-policy": '"cart";q=2;w=60',
        "ratelimit": f'"cart";r=1;t={math.ceil(first.reset_after)}',
    }
    await limiter.check("user:1", now=0.0)
    refused = await limiter.check("user:1", now=0.0)
    headers = dict(rate_limit_headers("cart", limiter, refused))
    assert not refused.allowed
    assert headers["retry-after"] == str(math.ceil(refused.retry_after))
    assert headers["ratelimit"].startswith('"cart";r=0;')
