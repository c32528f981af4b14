"""``RedisTier``: a cache level in Redis (L2) or in a Redis Cluster (L3), through redis-py.

Values are stored as one string per key: a 22-byte header (format, ``expires_at`` and
``stale_until`` as wall-clock seconds, ``delta`` seconds, flags) and the codec's bytes. Keeping
the expiry in the value lets a hit be promoted to L1 with the time it has left, from one
``GET``, without a ``PTTL``. Redis expires the key itself (``SET ... PX``) at ``stale_until``.

Give it a ``redis.asyncio.Redis`` or a ``redis.asyncio.RedisCluster``; a pooled client is
shared by every tier and every request. Errors reach the caller as
:class:`~tailguard.errors.BackendUnavailable` raised from the redis-py error; ``TieredCache``
puts the tier behind a circuit breaker.
"""

from __future__ import annotations

import math
import struct
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from tailguard.cache.codec import Codec, MsgpackCodec
from tailguard.cache.tiers.base import Entry
from tailguard.errors import BackendSaturated, BackendUnavailable, ValueTooLarge

__all__ = ["RedisTier"]

_HEADER = struct.Struct("<BddfB")  # format version, expires_at, stale_until, delta, flags
_FORMAT = 2
_NEGATIVE = 1
LEASE_PREFIX = "tailguard:lease:"  # leases live apart from cache keys, so they cannot collide
_EMPTY = "-"  # a lease's value once its holder loaded nothing to cache (tokens are hex)
_ACQUIRE = (  # free, or only marked empty: take it
    "local held = redis.call('get', KEYS[1]) "
    "if held and held ~= '-' then return 0 end "
    "redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) return 1"
)
_RELEASE = (  # still ours: delete it, or (ARGV[2] ms > 0) mark it empty for that long
    "if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end "
    "if ARGV[2] == '0' then return redis.call('del', KEYS[1]) end "
    "redis.call('set', KEYS[1], '-', 'px', ARGV[2]) return 1"
)
MAX_VALUE_BYTES = 8 * 1024 * 1024  # bytes: larger values belong in object storage, not a cache


class RedisTier:
    """A Redis-backed tier over ``client`` (``Redis`` or ``RedisCluster``, redis.asyncio).

    ``name`` defaults to ``"redis"``, or ``"redis-cluster"`` for a cluster client.
    ``codec`` encodes values (msgspec MessagePack by default); ``value_type`` is the type
    ``decode`` produces (None: plain msgpack types). Values over ``max_value_bytes`` are
    refused with :class:`~tailguard.errors.ValueTooLarge`.
    """

    local = False

    def __init__(
        self,
        client: Any,
        *,
        name: str | None = None,
        codec: Codec | None = None,
        value_type: Any = None,
        max_value_bytes: int = MAX_VALUE_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self._cluster = hasattr(client, "get_nodes")  # RedisCluster: MGET must not cross slots
        self.name = name if name is not None else ("redis-cluster" if self._cluster else "redis")
        self.codec: Codec = codec if codec is not None else MsgpackCodec()
        self.value_type = value_type
        self.max_value_bytes = max_value_bytes
        self._now = clock

    def _pack(self, key: str, entry: Entry) -> bytes:
        payload = self.codec.encode(entry.value)
        if len(payload) > self.max_value_bytes:
            raise ValueTooLarge(key, len(payload), self.max_value_bytes)
        flags = _NEGATIVE if entry.negative else 0
        header = _HEADER.pack(_FORMAT, entry.expires_at, entry.stale_until, entry.delta, flags)
        return header + payload

    def _unpack(self, data: bytes | None, now: float) -> Entry | None:
        if data is None or len(data) < _HEADER.size:
            return None
        fmt, expires_at, stale_until, delta, flags = _HEADER.unpack_from(data)
        if fmt != _FORMAT:
            return None  # written by another format: treat as a miss, it will be rewritten
        if stale_until <= now:
            return None
        try:
            value = self.codec.decode(data[_HEADER.size :], self.value_type)
        except Exception:
            return None  # undecodable (another type, another codec): a miss, never a crash
        return Entry(value, expires_at, delta, bool(flags & _NEGATIVE), stale_until)

    def _fail(self, exc: Exception) -> BackendUnavailable:
        kind = BackendSaturated if type(exc).__name__ == "MaxConnectionsError" else None
        return (kind or BackendUnavailable)(self.name, f"{type(exc).__name__}: {exc}")

    async def get(self, key: str) -> Entry | None:
        try:
            data = await self.client.get(key)
        except Exception as exc:
            raise self._fail(exc) from exc
        return self._unpack(data, self._now())

    async def get_many(self, keys: Sequence[str]) -> list[Entry | None]:
        if not keys:
            return []
        try:
            if self._cluster:
                values = await self.client.mget_nonatomic(list(keys))
            else:
                values = await self.client.mget(list(keys))
        except Exception as exc:
            raise self._fail(exc) from exc
        now = self._now()
        return [self._unpack(v, now) for v in values]

    async def set(self, key: str, entry: Entry) -> None:
        data = self._pack(key, entry)
        # Redis keeps it until stale_until: stale-while-revalidate may still want it.
        px = max(1, math.ceil((entry.stale_until - self._now()) * 1000))
        try:
            await self.client.set(key, data, px=px)
        except Exception as exc:
            raise self._fail(exc) from exc

    # -- leases: one loader across instances ---------------------------------------------------

    async def acquire_lease(self, key: str, ttl: float) -> str:
        """Try to become the one instance that loads ``key`` for the next ``ttl`` seconds.

        Returns a token to release with, or "" when another instance holds the lease.
        """
        token = uuid.uuid4().hex
        px = max(1, math.ceil(ttl * 1000))
        try:
            won = await self.client.eval(_ACQUIRE, 1, LEASE_PREFIX + key, token, px)
        except Exception as exc:
            raise self._fail(exc) from exc
        return token if won else ""

    async def release_lease(self, key: str, token: str, empty_for: float = 0.0) -> None:
        """Give the lease back, if it is still ours (it may have expired meanwhile).

        ``empty_for`` > 0 (seconds): the load found nothing to cache; the lease is replaced by
        a marker saying so (``lease_empty``) for that long, for the instances waiting on it.
        """
        px = max(1, math.ceil(empty_for * 1000)) if empty_for > 0 else 0
        try:
            await self.client.eval(_RELEASE, 1, LEASE_PREFIX + key, token, px)
        except Exception as exc:
            raise self._fail(exc) from exc

    async def lease_empty(self, key: str) -> bool:
        """Did the last holder of the lease on ``key`` load nothing to cache?"""
        try:
            held = await self.client.get(LEASE_PREFIX + key)
        except Exception as exc:
            raise self._fail(exc) from exc
        return held in (_EMPTY, _EMPTY.encode())  # as bytes, or str (decode_responses)

    async def delete(self, key: str) -> None:
        try:
            await self.client.delete(key)
        except Exception as exc:
            raise self._fail(exc) from exc

    def __repr__(self) -> str:
        kind = "cluster" if self._cluster else "redis"
        return f"RedisTier(name={self.name!r}, {kind})"
