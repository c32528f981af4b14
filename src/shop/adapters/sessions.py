"""Cart sessions: instances keep no state, the cart lives in a session store.

A session is a random 256-bit id (:func:`new_session_id`), scoped to its user: the store's key
holds both, so a stolen cookie gives nothing to another signed-in user. ``RedisSessionStore``
keeps a hash per session (product id to quantity) whose TTL slides on every use;
``MemorySessionStore`` is the embedded default for one process.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Protocol

from shop.domain.model import Cart
from tailguard.errors import BackendUnavailable

__all__ = [
    "MemorySessionStore",
    "RedisSessionStore",
    "SessionStore",
    "is_session_id",
    "new_session_id",
]

_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_session_id() -> str:
    """A fresh session id: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def is_session_id(value: str) -> bool:
    """True when ``value`` has the shape of an id from :func:`new_session_id`."""
    return bool(_SESSION_ID.match(value))


class SessionStore(Protocol):
    """Where carts live. Every method slides the session's TTL."""

    shared: bool
    """True when every instance sees the same sessions (False: this process only)."""

    async def load(self, user_id: int, session_id: str) -> Cart: ...

    async def set_line(self, user_id: int, session_id: str, product_id: int, qty: int) -> None: ...

    async def remove_line(self, user_id: int, session_id: str, product_id: int) -> bool: ...

    async def clear(self, user_id: int, session_id: str) -> None: ...

    async def ping(self) -> None: ...

    async def aclose(self) -> None: ...


class MemorySessionStore:
    """Sessions in this process's memory, each expiring ``ttl`` seconds after its last use."""

    shared = False

    def __init__(
        self,
        *,
        ttl: float = 1800.0,
        max_sessions: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_sessions = max_sessions
        self._clock = clock
        self._data: dict[tuple[int, str], tuple[float, dict[int, int]]] = {}

    def _lines(self, user_id: int, session_id: str, *, create: bool) -> dict[int, int] | None:
        now = self._clock()
        key = (user_id, session_id)
        found = self._data.get(key)
        if found is not None and found[0] <= now:
            del self._data[key]
            found = None
        if found is None:
            if not create:
                return None
            if len(self._data) >= self.max_sessions:
                self._evict(now)
            found = (0.0, {})
        self._data[key] = (now + self.ttl, found[1])
        return found[1]

    def _evict(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._data.items() if expires <= now]:
            del self._data[key]
        while len(self._data) >= self.max_sessions:  # still full: the oldest insertion goes
            del self._data[next(iter(self._data))]

    async def load(self, user_id: int, session_id: str) -> Cart:
        """The session's cart (empty for an unknown or expired session)."""
        return Cart(self._lines(user_id, session_id, create=False) or {})

    async def set_line(self, user_id: int, session_id: str, product_id: int, qty: int) -> None:
        """Set one line's quantity."""
        lines = self._lines(user_id, session_id, create=True)
        assert lines is not None
        lines[product_id] = qty

    async def remove_line(self, user_id: int, session_id: str, product_id: int) -> bool:
        """Drop one line; False when it was not there."""
        lines = self._lines(user_id, session_id, create=False)
        return lines is not None and lines.pop(product_id, None) is not None

    async def clear(self, user_id: int, session_id: str) -> None:
        """Empty the cart."""
        self._data.pop((user_id, session_id), None)

    async def ping(self) -> None:
        """Always reachable."""

    async def aclose(self) -> None:
        """Nothing to release."""


class RedisSessionStore:
    """A Redis hash per session, ``shop:cart:{user}:{session}``, with a sliding TTL.

    Every Redis error comes out as ``BackendUnavailable("redis")`` (raised from it), which the
    app answers with 503 and Retry-After.
    """

    shared = True

    def __init__(self, client: Any, *, ttl: float = 1800.0, prefix: str = "shop:cart") -> None:
        self.client = client
        self.ttl_ms = max(1, int(ttl * 1000))
        self.prefix = prefix

    def _key(self, user_id: int, session_id: str) -> str:
        return f"{self.prefix}:{user_id}:{session_id}"

    async def _run(self, build: Callable[[Any], Any]) -> list[Any]:
        from redis.exceptions import RedisError

        try:
            async with self.client.pipeline(transaction=True) as pipe:
                build(pipe)
                result: list[Any] = await pipe.execute()
                return result
        except RedisError as exc:
            raise BackendUnavailable("redis", str(exc)) from exc
        except OSError as exc:
            raise BackendUnavailable("redis", str(exc)) from exc

    async def load(self, user_id: int, session_id: str) -> Cart:
        """The session's cart (empty for an unknown or expired session)."""
        key = self._key(user_id, session_id)
        raw, _ = await self._run(lambda p: p.hgetall(key).pexpire(key, self.ttl_ms))
        return Cart({int(k): int(v) for k, v in raw.items()})

    async def set_line(self, user_id: int, session_id: str, product_id: int, qty: int) -> None:
        """Set one line's quantity (one field: concurrent adds of other products survive)."""
        key = self._key(user_id, session_id)
        await self._run(lambda p: p.hset(key, str(product_id), qty).pexpire(key, self.ttl_ms))

    async def remove_line(self, user_id: int, session_id: str, product_id: int) -> bool:
        """Drop one line; False when it was not there."""
        key = self._key(user_id, session_id)
        removed, _ = await self._run(
            lambda p: p.hdel(key, str(product_id)).pexpire(key, self.ttl_ms)
        )
        return bool(removed)

    async def clear(self, user_id: int, session_id: str) -> None:
        """Empty the cart."""
        key = self._key(user_id, session_id)
        await self._run(lambda p: p.delete(key))

    async def ping(self) -> None:
        """Raise BackendUnavailable unless Redis answers."""
        await self._run(lambda p: p.ping())

    async def aclose(self) -> None:
        """The client belongs to the caller: nothing to close here."""
