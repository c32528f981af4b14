"""A refused check emits RateLimited (name and limit, never the key); an admitted one nothing."""

from __future__ import annotations

from tailguard.events import HookRegistry, RateLimited, hooks
from tailguard.ratelimit import GCRA, FixedWindow
from tailguard.testing import RecordingHook


async def test_a_refusal_emits_rate_limited_with_the_deciding_limit() -> None:
    recorder = RecordingHook(hooks, RateLimited)
    try:
        limiter = FixedWindow("5/minute, 1/second", name="login")
        assert (await limiter.check("ip-1", now=100.0)).allowed
        assert not (await limiter.check("ip-1", now=100.1)).allowed
    finally:
        recorder.close()
    assert len(recorder.events) == 1
    event = recorder.events[0]
    assert isinstance(event, RateLimited)
    assert (event.name, event.limit) == ("login", "1/second")
    assert 0 < event.retry_after <= 1.0
    assert "ip-1" not in repr(event)


async def test_the_default_name_says_algorithm_and_limits() -> None:
    assert GCRA("10/second; burst=20").name == "GCRA 10/second; burst=20"


async def test_no_event_without_a_subscriber_or_on_admission() -> None:
    registry = HookRegistry()
    recorder = RecordingHook(registry, RateLimited)
    limiter = GCRA("1/minute", name="x")
    await limiter.check("k")
    await limiter.check("k")  # refused, but on the global hooks, not this registry
    assert recorder.events == []
