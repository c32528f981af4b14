"""The event stream between the outbox relay and the event worker: Redis Streams with a consumer
group, or an in-process queue with the same interface (the embedded default).

Delivery is at least once. An entry read by a consumer stays pending until it is acknowledged;
one left pending longer than ``min_idle`` seconds (its consumer died, or its handler failed) is
claimed by another consumer (``XAUTOCLAIM``), which sees how often it was delivered and moves it
to the dead-letter stream after too many tries.

Stream ids are Redis's own, not the outbox ids: outbox ids are assigned at insert and committed
in another order, and Redis refuses an explicit id below the stream's last, so a slow
transaction's event would be refused. The outbox id and the event id travel in the entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from shop.adapters.outbox import Envelope
from tailguard._clock import Clock, MonotonicClock
from tailguard.errors import BackendUnavailable

__all__ = [
    "Delivery",
    "EventStream",
    "MemoryEventStream",
    "RedisEventStream",
    "StreamInfo",
    "stream_name",
]


def stream_name(namespace: str) -> str:
    """The stream of a namespace, ``{namespace}:events``: its dead-letter stream
    (``{namespace}:events:dead``) has the same hash tag, so both are in one Redis Cluster slot
    and a dead-letter move is one transaction there too."""
    return "{" + namespace + "}:events"


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One delivery of a stream entry to a consumer."""

    entry_id: str
    fields: dict[str, str]
    deliveries: int
    """Times the entry was delivered, this one included."""

    def envelope(self) -> Envelope:
        """The event it carries; UnknownEvent for an entry that is not one."""
        return Envelope.from_fields(self.fields)


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """How the stream stands: entries, the group's pending ones, the dead-letter entries, and
    the entries no consumer of the group has read yet."""

    length: int
    pending: int
    dead: int
    unread: int = 0

    @property
    def settled(self) -> bool:
        """True when every entry was read and acknowledged."""
        return self.pending == 0 and self.unread == 0


class EventStream(Protocol):
    """Publish events; consume them in a group, at least once."""

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Append ``envelopes`` in order; BackendUnavailable when the stream is unreachable."""
        ...

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists."""
        ...

    async def read(self, consumer: str, count: int, block: float) -> list[Delivery]:
        """Up to ``count`` entries no consumer of the group has had, waiting up to ``block``
        seconds for the first."""
        ...

    async def claim(self, consumer: str, min_idle: float, count: int) -> list[Delivery]:
        """Up to ``count`` entries pending for ``min_idle`` seconds or more, now ``consumer``'s."""
        ...

    async def ack(self, entry_ids: Sequence[str]) -> None:
        """The entries are done: no consumer gets them again."""
        ...

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Copy the entry to the dead-letter stream with ``reason``, then acknowledge it."""
        ...

    async def info(self) -> StreamInfo:
        """Lengths of the stream, the pending list and the dead-letter stream."""
        ...


async def _redis(awaitable: Awaitable[T]) -> T:
    from redis.exceptions import RedisError

    try:
        return await awaitable
    except (RedisError, OSError) as exc:
        raise BackendUnavailable("redis", str(exc)) from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in (raw or {}).items()}


class RedisEventStream:
    """A Redis Stream ``stream`` read by the consumer group ``group``; entries that failed too
    often go to ``{stream}:dead``. ``maxlen`` caps the stream (approximately, ``MAXLEN ~``):
    entries beyond it are trimmed even if unread, so it must exceed any backlog the worker can
    fall behind by."""

    def __init__(
        self, client: Any, stream: str, *, group: str = "workers", maxlen: int = 1_000_000
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.dead = f"{stream}:dead"
        self.maxlen = maxlen
        self._cursor = "0-0"

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        pipe = self.client.pipeline(transaction=False)
        for envelope in envelopes:
            pipe.xadd(self.stream, envelope.fields(), maxlen=self.maxlen, approximate=True)
        await _redis(pipe.execute())

    async def ensure_group(self) -> None:
        from redis.exceptions import ResponseError

        try:
            await _redis(self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True))
        except BackendUnavailable as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ResponseError) and "BUSYGROUP" in str(cause)):
                raise

    async def read(self, consumer: str, count: int, block: float) -> list[Delivery]:
        from redis.exceptions import ResponseError

        async def once() -> Any:
            return await _redis(
                self.client.xreadgroup(
                    self.group,
                    consumer,
                    {self.stream: ">"},
                    count=count,
                    block=max(1, int(block * 1000)),
                )
            )

        try:
            answer = await once()
        except BackendUnavailable as exc:
            if not (isinstance(exc.__cause__, ResponseError) and "NOGROUP" in str(exc.__cause__)):
                raise
            await self.ensure_group()  # the stream was deleted (or never made): make it again
            answer = await once()
        deliveries = []
        for _stream, entries in answer or []:
            for entry_id, raw in entries:
                deliveries.append(Delivery(_text(entry_id), _fields(raw), 1))
        return deliveries

    async def claim(self, consumer: str, min_idle: float, count: int) -> list[Delivery]:
        answer = await _redis(
            self.client.xautoclaim(
                self.stream,
                self.group,
                consumer,
                min_idle_time=max(0, int(min_idle * 1000)),
                start_id=self._cursor,
                count=count,
            )
        )
        cursor, entries = answer[0], answer[1]
        deleted = answer[2] if len(answer) > 2 else []
        self._cursor = _text(cursor)
        if deleted:  # pending entries the stream trimmed: nothing left to deliver
            await self.ack([_text(d) for d in deleted])
        claimed = [(_text(i), _fields(raw)) for i, raw in entries if raw is not None]
        if not claimed:
            return []
        pending = await _redis(
            self.client.xpending_range(
                self.stream,
                self.group,
                min=claimed[0][0],
                max=claimed[-1][0],
                count=len(claimed) * 2 + 10,
                consumername=consumer,
            )
        )
        times = {_text(p["message_id"]): int(p["times_delivered"]) for p in pending}
        return [Delivery(i, raw, times.get(i, 1)) for i, raw in claimed]

    async def ack(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await _redis(self.client.xack(self.stream, self.group, *entry_ids))

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        fields = {
            **delivery.fields,
            "entry_id": delivery.entry_id,
            "deliveries": str(delivery.deliveries),
            "reason": reason[:500],
        }
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.dead, fields, maxlen=self.maxlen, approximate=True)
        pipe.xack(self.stream, self.group, delivery.entry_id)
        await _redis(pipe.execute())

    async def info(self) -> StreamInfo:
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.xlen(self.dead)
        length, dead = await _redis(pipe.execute())
        groups = await _redis(self.client.xinfo_groups(self.stream)) if length else []
        for group in groups:
            if _text(group.get("name")) == self.group:
                lag = group.get("lag")
                unread = int(lag) if lag is not None else 0
                return StreamInfo(int(length), int(group.get("pending", 0)), int(dead), unread)
        return StreamInfo(int(length), 0, int(dead), int(length))


@dataclass
class _Pending:
    consumer: str
    since: float
    deliveries: int


class MemoryEventStream:
    """The same group semantics in one process: entries, the group's next unread entry, and
    its pending entries with their consumer, delivery time and count."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self.clock = clock or MonotonicClock()
        self.entries: dict[str, dict[str, str]] = {}
        self.dead: list[dict[str, str]] = []
        self._order: list[str] = []
        self._next = 0
        self._pending: dict[str, _Pending] = {}
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            entry_id = f"{next(self._ids)}-0"
            self.entries[entry_id] = envelope.fields()
            self._order.append(entry_id)
        if envelopes:
            self._arrived.set()

    async def ensure_group(self) -> None:
        """The one group always exists."""

    async def read(self, consumer: str, count: int, block: float) -> list[Delivery]:
        if self._next >= len(self._order) and block > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(block):  # not wait_for: see the relay's note
                    await self._arrived.wait()
        taken = self._order[self._next : self._next + count]
        self._next += len(taken)
        now = self.clock.now()
        for entry_id in taken:
            self._pending[entry_id] = _Pending(consumer, now, 1)
        return [Delivery(i, dict(self.entries[i]), 1) for i in taken]

    async def claim(self, consumer: str, min_idle: float, count: int) -> list[Delivery]:
        now = self.clock.now()
        claimed: list[Delivery] = []
        for entry_id, state in list(self._pending.items()):
            if len(claimed) >= count:
                break
            if now - state.since >= min_idle:
                state.consumer, state.since = consumer, now
                state.deliveries += 1
                claimed.append(Delivery(entry_id, dict(self.entries[entry_id]), state.deliveries))
        return claimed

    async def ack(self, entry_ids: Sequence[str]) -> None:
        for entry_id in entry_ids:
            if self._pending.pop(entry_id, None) is not None:
                del self.entries[entry_id]  # done: an embedded stream keeps only what is live
        if self._next > 4096:
            del self._order[: self._next]
            self._next = 0

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.dead.append(
            {
                **delivery.fields,
                "entry_id": delivery.entry_id,
                "deliveries": str(delivery.deliveries),
                "reason": reason[:500],
            }
        )
        await self.ack([delivery.entry_id])

    async def info(self) -> StreamInfo:
        unread = len(self._order) - self._next
        return StreamInfo(len(self.entries), len(self._pending), len(self.dead), unread)
