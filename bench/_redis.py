"""Redis helpers shared by the benchmarks: the URL, a loopback-only client, cleanup."""

from __future__ import annotations

import asyncio
import os
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis

__all__ = ["LOOPBACK", "connect", "delete_prefix", "redis_url"]

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})  # benchmarks stay on this machine


def redis_url() -> str:
    return os.environ.get("TAILGUARD_REDIS_URL") or "redis://127.0.0.1:6379/0"


async def connect(url: str) -> tuple[Any | None, str]:
    """A pooled client to a loopback Redis that answers PING, or None and why not."""
    parts = urlsplit(url)
    if parts.scheme != "unix" and parts.hostname not in LOOPBACK:
        return None, f"{parts.hostname} is not a loopback address"
    client = aioredis.Redis.from_url(url)
    try:
        await asyncio.wait_for(client.ping(), 2.0)
    except Exception as exc:
        await client.aclose()
        return None, f"{type(exc).__name__}: {exc}"
    return client, ""


async def delete_prefix(client: Any, prefix: str) -> int:
    """Delete the keys under ``prefix`` (a bounded SCAN); how many there were."""
    deleted = 0
    batch: list[bytes] = []
    async for key in client.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += await client.delete(*batch)
            batch.clear()
        if deleted + len(batch) > 1_000_000:
            break
    if batch:
        deleted += await client.delete(*batch)
    return deleted
