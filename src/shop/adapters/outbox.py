"""The transactional outbox: an integration event becomes a row in the transaction that made it
happen, so an order and its ``order.created`` are committed together or not at all.

The relay (``shop.service_layer.relay``) reads unsent rows in id order, publishes them and marks
them sent. Publishing is at least once: a crash between the publish and the mark re-publishes,
and the consumers recognise the event by its ``event_id`` (carried in every stream entry).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shop.adapters.orm import outbox
from shop.domain.events import INTEGRATION_EVENTS, Event

__all__ = ["Envelope", "OutboxRepository", "UnknownEvent", "decode", "envelope_of"]


class UnknownEvent(ValueError):
    """A stream entry or outbox row that is not a known integration event."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """An integration event on its way: its identity, topic and JSON-ready payload."""

    event_id: str
    topic: str
    payload: dict[str, Any]
    outbox_id: int | None = None
    """The row's id in the outbox it came from (per database; ``event_id`` is global)."""

    def fields(self) -> dict[str, str]:
        """The stream entry's fields."""
        return {
            "id": self.event_id,
            "topic": self.topic,
            "outbox_id": str(self.outbox_id or ""),
            "payload": json.dumps(self.payload, separators=(",", ":")),
        }

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Envelope:
        """The envelope of a stream entry; UnknownEvent when it is not one of ours."""
        try:
            payload = json.loads(fields["payload"])
            outbox_id = fields.get("outbox_id") or None
            envelope = cls(
                str(fields["id"]),
                str(fields["topic"]),
                payload,
                int(outbox_id) if outbox_id else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnknownEvent(f"not an event entry: {dict(fields)!r} ({exc})") from exc
        if not isinstance(payload, dict):
            raise UnknownEvent(f"the payload of {envelope.event_id} is not an object")
        return envelope

    def event(self) -> Event:
        """The domain event it carries."""
        return decode(self.topic, self.payload)


def envelope_of(event: Event) -> Envelope:
    """A new envelope (a fresh event id) for an integration event."""
    if event.topic is None:
        raise UnknownEvent(f"{type(event).__name__} is not an integration event")
    payload = {f.name: _jsonable(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return Envelope(str(uuid.uuid4()), event.topic, payload)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def decode(topic: str, payload: Mapping[str, Any]) -> Event:
    """The event of ``topic`` from its payload; UnknownEvent when either is wrong."""
    cls = INTEGRATION_EVENTS.get(topic)
    if cls is None:
        raise UnknownEvent(f"unknown topic {topic!r}")
    try:
        values = dict(payload)
        if "lines" in values:
            values["lines"] = tuple(tuple(int(x) for x in line) for line in values["lines"])
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise UnknownEvent(f"bad {topic} payload {dict(payload)!r}: {exc}") from exc


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class OutboxRepository:
    """The outbox rows of one database."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(self, events: Sequence[Event]) -> list[Envelope]:
        """Write ``events`` (integration events only) in the session's transaction."""
        envelopes = [envelope_of(e) for e in events if e.topic is not None]
        if envelopes:
            now = _now()
            await self._session.execute(
                insert(outbox),
                [
                    {
                        "event_id": e.event_id,
                        "topic": e.topic,
                        "payload": e.payload,
                        "created_at": now,
                    }
                    for e in envelopes
                ],
            )
        return envelopes

    async def unsent(self, limit: int) -> list[Envelope]:
        """Up to ``limit`` unsent rows, oldest first, locked for this transaction. On PostgreSQL
        a concurrent relay skips the locked rows and takes the next ones (SKIP LOCKED)."""
        query = (
            select(outbox.c.id, outbox.c.event_id, outbox.c.topic, outbox.c.payload)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = (await self._session.execute(query)).all()
        return [Envelope(r.event_id, r.topic, r.payload, r.id) for r in rows]

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        """Mark rows as published."""
        if outbox_ids:
            await self._session.execute(
                update(outbox).where(outbox.c.id.in_(outbox_ids)).values(sent_at=_now())
            )

    async def backlog(self) -> int:
        """Rows not yet published."""
        query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
        return int((await self._session.execute(query)).scalar_one())

    async def prune(self, older_than: float) -> int:
        """Delete rows published more than ``older_than`` seconds ago; the count deleted."""
        cutoff = _now() - timedelta(seconds=older_than)
        result = await self._session.execute(
            delete(outbox).where(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)
