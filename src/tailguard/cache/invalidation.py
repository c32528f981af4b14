"""Cross-instance L1 invalidation over Redis pub/sub.

Every ``TieredCache`` instance keeps its own L1. When one instance sets or deletes a key, it
publishes the key on a channel; every other instance evicts it from its L1. A listener that
loses its connection flushes its whole L1 (invalidations may have been missed: L1 is never
trusted across a gap), reconnects with backoff, and flushes again once subscribed.

Pub/sub works the same whether the client speaks RESP2 or RESP3 (redis-py 8's default): the
listener reads messages with ``get_message``, not through client-side-caching push handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Invalidation", "RedisInvalidation"]

_log = logging.getLogger("tailguard.cache")

Evict = Callable[[str | None], None]  # a key to evict, or None for "flush everything"


class Invalidation(Protocol):
    """Cross-instance invalidation: publish our changes, evict the others' (``evict(None)``:
    flush everything)."""

    async def publish(self, key: str) -> None: ...

    async def start(self, evict: Callable[[str | None], None]) -> None: ...

    async def stop(self) -> None: ...


class RedisInvalidation:
    """Publishes this instance's writes and evicts the other instances' writes from L1.

    ``client`` is a ``redis.asyncio.Redis`` (the listener takes one connection of its own from
    it); ``channel`` scopes a group of caches that share keys. ``reconnect_delay`` (seconds) is
    the first wait after a lost connection, doubled up to ``max_reconnect_delay``.
    """

    def __init__(
        self,
        client: Any,
        *,
        channel: str = "tailguard:invalidate",
        reconnect_delay: float = 0.1,
        max_reconnect_delay: float = 5.0,
    ) -> None:
        self.client = client
        self.channel = channel
        self.reconnect_delay = reconnect_delay
        self.max_reconnect_delay = max_reconnect_delay
        self.instance = uuid.uuid4().hex  # our own messages are skipped
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether the listener is subscribed right now."""
        return self._ready.is_set()

    async def publish(self, key: str) -> None:
        """Tell the other instances that ``key`` changed (raises on a Redis error)."""
        await self.client.publish(self.channel, f"{self.instance}\n{key}")

    async def start(self, evict: Evict, *, wait: float | None = 5.0) -> None:
        """Start listening; ``evict(key)`` for each invalidation, ``evict(None)`` to flush.

        Waits up to ``wait`` seconds for the first subscription (None: do not wait).
        """
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._listen(evict))
        if wait:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), wait)

    async def stop(self) -> None:
        """Stop listening."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._ready.clear()

    async def _listen(self, evict: Evict) -> None:
        delay = self.reconnect_delay
        prefix = self.instance + "\n"
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                evict(None)  # whatever happened while we were not listening is unknown
                self._ready.set()
                delay = self.reconnect_delay
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    data = message["data"]
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    if not text.startswith(prefix):
                        evict(text.split("\n", 1)[-1])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._ready.clear()
                evict(None)  # invalidations may be lost from now on: never trust L1
                _log.warning("cache invalidation listener lost %r: %s", self.channel, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_reconnect_delay)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
