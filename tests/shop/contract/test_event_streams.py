"""One contract for the event streams: in-process, and Redis Streams (the real server).

Idle times are real on Redis (the server keeps them), so the Redis case waits a few tens of
milliseconds where the in-process one advances a ManualClock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis

from shop.adapters.eventstream import EventStream, MemoryEventStream, RedisEventStream
from shop.adapters.outbox import Envelope, UnknownEvent, envelope_of
from shop.domain.events import OrderConfirmed, OrderCreated, ProfileUpdated
from tailguard.errors import BackendUnavailable
from tailguard.testing import ManualClock
from tests.services import backend_client

IDLE = 0.05
"""Seconds a delivery must stay pending before another consumer may claim it (in the tests)."""


@dataclass
class Case:
    stream: EventStream
    clock: ManualClock | None

    async def idle(self, seconds: float) -> None:
        """Let ``seconds`` pass for pending entries."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            await asyncio.sleep(seconds)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def case(request: pytest.FixtureRequest) -> AsyncIterator[Case]:
    if request.param == "memory":
        clock = ManualClock()
        yield Case(MemoryEventStream(clock=clock), clock)
        return
    # One hash tag: the stream and its dead-letter stream share a cluster slot.
    name = "{" + f"tg{uuid.uuid4().hex[:12]}" + "}:events"
    async with backend_client(request, request.param) as client:
        stream = RedisEventStream(client, name, maxlen=10_000)
        try:
            await stream.ensure_group()
            yield Case(stream, None)
        finally:
            await client.delete(stream.stream)
            await client.delete(stream.dead)


def _envelopes(n: int) -> list[Envelope]:
    return [
        envelope_of(OrderConfirmed(i, 7, 500 * i, f"ch_{i}", ((3, i, 500),)))
        for i in range(1, n + 1)
    ]


async def test_each_entry_goes_to_one_consumer_of_the_group(case: Case) -> None:
    sent = _envelopes(6)
    await case.stream.publish(sent)
    first = await case.stream.read("a", 4, 0.01)
    second = await case.stream.read("b", 4, 0.01)
    assert len(first) == 4
    assert len(second) == 2
    got = [d.envelope() for d in first + second]
    assert [e.event_id for e in got] == [e.event_id for e in sent]
    assert got[0].event() == sent[0].event()
    assert {d.deliveries for d in first + second} == {1}
    assert await case.stream.read("c", 4, 0.01) == []
    info = await case.stream.info()
    assert (info.pending, info.dead) == (6, 0)


async def test_acknowledged_entries_are_not_claimed(case: Case) -> None:
    await case.stream.publish(_envelopes(3))
    taken = await case.stream.read("a", 10, 0.01)
    await case.stream.ack([taken[0].entry_id, taken[1].entry_id])
    await case.idle(IDLE * 2)
    claimed = await case.stream.claim("b", IDLE, 10)
    assert [d.entry_id for d in claimed] == [taken[2].entry_id]
    assert claimed[0].deliveries == 2
    assert (await case.stream.info()).pending == 1


async def test_a_dead_consumers_entries_are_claimed_after_the_idle_time(case: Case) -> None:
    await case.stream.publish(_envelopes(2))
    taken = await case.stream.read("dead", 10, 0.01)
    assert await case.stream.claim("b", 3600.0, 10) == []  # not idle long enough
    await case.idle(IDLE * 2)
    claimed = await case.stream.claim("b", IDLE, 10)
    assert [d.entry_id for d in claimed] == [d.entry_id for d in taken]
    assert [d.envelope().event_id for d in claimed] == [d.envelope().event_id for d in taken]
    await case.idle(IDLE * 2)
    again = await case.stream.claim("c", IDLE, 10)
    assert [d.deliveries for d in again] == [3, 3]
    await case.stream.ack([d.entry_id for d in again])
    await case.idle(IDLE * 2)
    assert await case.stream.claim("d", IDLE, 10) == []


async def test_dead_letter_moves_the_entry_out_of_the_pending_list(case: Case) -> None:
    await case.stream.publish(_envelopes(1))
    (delivery,) = await case.stream.read("a", 1, 0.01)
    await case.stream.dead_letter(delivery, "failed 5 deliveries")
    info = await case.stream.info()
    assert (info.pending, info.dead) == (0, 1)
    await case.idle(IDLE * 2)
    assert await case.stream.claim("b", IDLE, 10) == []


async def test_read_waits_for_the_first_entry_up_to_block(case: Case) -> None:
    async def later() -> None:
        await asyncio.sleep(0.05)
        await case.stream.publish(_envelopes(1))

    task = asyncio.create_task(later())
    got = await case.stream.read("a", 10, 5.0)
    await task
    assert len(got) == 1


async def test_ensure_group_twice_changes_nothing(case: Case) -> None:
    await case.stream.publish(_envelopes(2))
    await case.stream.ensure_group()
    assert len(await case.stream.read("a", 10, 0.01)) == 2


def test_envelopes_round_trip_through_the_stream_fields() -> None:
    event = OrderCreated(41, 9, 1500, ((1, 2, 500), (4, 1, 500)))
    envelope = envelope_of(event)
    uuid.UUID(envelope.event_id)
    back = Envelope.from_fields(envelope.fields())
    assert back.event() == event
    assert back.topic == "order.created"


BAD_LINES = '{"order_id": 1, "user_id": 2, "total_cents": 3, "lines": [["a", 1, 2]]}'


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"id": "x", "topic": "order.created"},
        {"id": "x", "topic": "order.created", "payload": "not json"},
        {"id": "x", "topic": "order.created", "payload": "[1, 2]"},
        {"id": "x", "topic": "order.exploded", "payload": "{}"},
        {"id": "x", "topic": "order.created", "payload": '{"order_id": 1}'},
        {"id": "x", "topic": "order.created", "payload": BAD_LINES},
    ],
)
def test_entries_that_are_not_events_say_what_is_wrong(fields: dict[str, Any]) -> None:
    with pytest.raises(UnknownEvent):
        Envelope.from_fields(fields).event()


def test_only_integration_events_get_an_envelope() -> None:
    with pytest.raises(UnknownEvent, match="ProfileUpdated is not an integration event"):
        envelope_of(ProfileUpdated(1))


async def test_an_unreachable_redis_is_backend_unavailable() -> None:
    client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    stream = RedisEventStream(client, "nowhere")
    try:
        with pytest.raises(BackendUnavailable):
            await stream.publish(_envelopes(1))
        with pytest.raises(BackendUnavailable):
            await stream.read("a", 1, 0.01)
    finally:
        await client.aclose()
