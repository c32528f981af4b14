"""Bulkhead: concurrency bound, bounded queue, bounded wait, and no slot ever lost."""

from __future__ import annotations

import asyncio

import pytest

from tailguard.errors import BulkheadFullError, ConfigurationError, Rejected
from tailguard.events import CallRejected, HookRegistry
from tailguard.resilience import Bulkhead
from tailguard.testing import RecordingHook


class Gate:
    """Calls that park until released, counting how many run at once."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.running = 0
        self.peak = 0

    async def __call__(self) -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.event.wait()
            return "done"
        finally:
            self.running -= 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_never_runs_more_than_max_concurrent_and_queues_the_rest() -> None:
    bulkhead = Bulkhead(max_concurrent=3, max_queue=10)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call(gate)) for _ in range(10)]
    await settle()
    assert (gate.running, bulkhead.active, bulkhead.queued) == (3, 3, 7)
    gate.event.set()
    assert await asyncio.gather(*tasks) == ["done"] * 10
    assert gate.peak == 3
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


async def test_full_bulkhead_rejects_at_once() -> None:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    bulkhead = Bulkhead(max_concurrent=2, max_queue=1, name="db", hooks=registry)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call(gate)) for _ in range(3)]
    await settle()
    with pytest.raises(BulkheadFullError) as info:
        await bulkhead.call(gate)
    assert isinstance(info.value, Rejected)
    assert "db" in str(info.value)
    assert (info.value.max_concurrent, info.value.max_queue) == (2, 1)
    assert rec.of(CallRejected)[0].policy == "bulkhead"
    gate.event.set()
    await asyncio.gather(*tasks)


async def test_default_has_no_queue() -> None:
    bulkhead = Bulkhead(max_concurrent=1)
    gate = Gate()
    task = asyncio.create_task(bulkhead.call(gate))
    await settle()
    with pytest.raises(BulkheadFullError):
        await bulkhead.call(gate)
    gate.event.set()
    await task


async def test_max_wait_bounds_the_time_in_queue() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=5, max_wait=0.01)
    gate = Gate()
    holder = asyncio.create_task(bulkhead.call(gate))
    await settle()
    with pytest.raises(BulkheadFullError, match="wait exceeded"):
        await bulkhead.call(gate)
    assert bulkhead.queued == 0
    gate.event.set()
    await holder
    assert bulkhead.active == 0


async def test_no_slot_is_lost_when_callers_are_cancelled_mid_wait_and_mid_call() -> None:
    bulkhead = Bulkhead(max_concurrent=3, max_queue=20)
    gate = Gate()
    tasks = [asyncio.create_task(bulkhead.call(gate)) for _ in range(12)]
    await settle()
    # 3 running, 9 waiting: cancel 2 running and 5 waiting
    for t in tasks[:2] + tasks[5:10]:
        t.cancel()
    await settle()
    assert bulkhead.active == 3  # the freed slots went to waiters
    assert gate.running == 3
    gate.event.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
    assert cancelled == 7
    assert results.count("done") == 5
    assert (bulkhead.active, bulkhead.queued) == (0, 0)
    # the bulkhead still admits its full width afterwards
    gate2 = Gate()
    more = [asyncio.create_task(bulkhead.call(gate2)) for _ in range(3)]
    await settle()
    assert gate2.running == 3
    gate2.event.set()
    await asyncio.gather(*more)


async def test_cancel_right_after_the_slot_was_handed_over_passes_it_on() -> None:
    bulkhead = Bulkhead(max_concurrent=1, max_queue=2)
    await bulkhead.acquire()
    gate = Gate()
    gate.event.set()
    second = asyncio.create_task(bulkhead.call(gate))
    third = asyncio.create_task(bulkhead.call(gate))
    await settle()
    assert bulkhead.queued == 2
    bulkhead.release()  # hands the slot to `second`...
    second.cancel()  # ...which is cancelled before it can resume
    assert await third == "done"
    with pytest.raises(asyncio.CancelledError):
        await second
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


async def test_slot_released_on_exception() -> None:
    bulkhead = Bulkhead(max_concurrent=1)

    async def boom() -> None:
        raise RuntimeError("x")

    for _ in range(3):
        with pytest.raises(RuntimeError):
            await bulkhead.call(boom)
    assert bulkhead.active == 0


async def test_context_manager_and_decorator() -> None:
    bulkhead = Bulkhead(max_concurrent=1)
    async with bulkhead:
        assert bulkhead.active == 1
    assert bulkhead.active == 0

    @bulkhead
    async def double(x: int) -> int:
        return 2 * x

    assert await double(21) == 42


@pytest.mark.parametrize(
    ("kw", "setting"),
    [
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_queue": -1}, "max_queue"),
        ({"max_wait": -1.0}, "max_wait"),
    ],
)
def test_bad_config_names_the_setting(kw: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=f"Bulkhead.{setting}"):
        Bulkhead(**kw)  # type: ignore[arg-type]
