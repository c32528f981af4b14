"""Retry: attempts, backoff and jitter, predicates, retry_after, deadlines, budget, isolation."""

from __future__ import annotations

import asyncio
import random

import pytest

from tailguard.errors import CircuitOpenError, ConfigurationError
from tailguard.events import HookRegistry, RetryGaveUp, RetryScheduled
from tailguard.resilience import Backoff, Retry, RetryBudget, Timeout
from tailguard.testing import ManualClock, RecordingHook, no_backoff


class Flaky:
    """Fails ``failures`` times with ``exc``, then returns ``value``."""

    def __init__(self, failures: int, exc: Exception | None = None, value: object = "ok") -> None:
        self.failures = failures
        self.exc = exc if exc is not None else ConnectionError("reset")
        self.value = value
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return self.value


def retry(clock: ManualClock, **kw: object) -> tuple[Retry, RecordingHook]:
    registry = HookRegistry()
    rec = RecordingHook(registry)
    return Retry(clock=clock, hooks=registry, **kw), rec  # type: ignore[arg-type]


async def test_retries_until_success_with_growing_delays() -> None:
    clock = ManualClock(autojump=True)
    r, rec = retry(clock, attempts=4, delay=1.0, jitter="none")
    fn = Flaky(3)
    assert await r.call(fn) == "ok"
    assert fn.calls == 4
    assert [e.delay for e in rec.of(RetryScheduled)] == [1.0, 2.0, 4.0]
    assert clock.now() == pytest.approx(7.0)
    assert not rec.of(RetryGaveUp)


async def test_gives_up_after_attempts_and_reraises_the_last_error() -> None:
    r, rec = retry(ManualClock(autojump=True), attempts=3)
    fn = Flaky(10)
    with pytest.raises(ConnectionError) as info:
        await r.call(fn)
    assert fn.calls == 3
    assert info.value is fn.exc
    assert any("gave up after 3 attempt(s): attempts" in n for n in info.value.__notes__)
    (gave_up,) = rec.of(RetryGaveUp)
    assert (gave_up.attempts, gave_up.reason, gave_up.error) == (3, "attempts", "ConnectionError")


async def test_only_matching_exceptions_are_retried() -> None:
    r, _ = retry(ManualClock(autojump=True), attempts=5, on=(ConnectionError, TimeoutError))
    fn = Flaky(2, exc=ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        await r.call(fn)
    assert fn.calls == 1


async def test_predicate_on_the_exception() -> None:
    r, _ = retry(ManualClock(autojump=True), attempts=5, on=lambda e: "temporary" in str(e))
    assert await r.call(Flaky(2, exc=OSError("temporary glitch"))) == "ok"
    fn = Flaky(2, exc=OSError("disk on fire"))
    with pytest.raises(OSError, match="fire"):
        await r.call(fn)
    assert fn.calls == 1


async def test_retry_on_result_returns_the_last_result_when_exhausted() -> None:
    r, rec = retry(ManualClock(autojump=True), attempts=3, on_result=lambda v: v is None)
    answers = iter([None, None, "late", "never"])

    async def poll() -> str | None:
        return next(answers)

    assert await r.call(poll) == "late"
    answers = iter([None, None, None, "never"])
    assert await r.call(poll) is None
    assert rec.of(RetryGaveUp)[-1].error == "result"


async def test_honours_retry_after_carried_by_the_exception() -> None:
    class TooMany(Exception):
        retry_after = 5.0

    clock = ManualClock(autojump=True)
    r, rec = retry(clock, attempts=2, delay=0.1)
    assert await r.call(Flaky(1, exc=TooMany())) == "ok"
    assert rec.of(RetryScheduled)[0].delay == 5.0
    assert clock.now() == pytest.approx(5.0)


async def test_does_not_retry_into_an_open_breaker_by_default() -> None:
    r, _ = retry(ManualClock(autojump=True), attempts=3)
    fn = Flaky(5, exc=CircuitOpenError("dep", retry_after=30.0))
    with pytest.raises(CircuitOpenError):
        await r.call(fn)
    assert fn.calls == 1


async def test_cancelled_error_is_never_retried() -> None:
    r, _ = retry(ManualClock(autojump=True), attempts=5, on=BaseException)
    calls = 0

    async def cancelled() -> None:
        nonlocal calls
        calls += 1
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await r.call(cancelled)
    assert calls == 1


async def test_cancelling_during_backoff_stops_the_retries() -> None:
    clock = ManualClock()
    r, _ = retry(clock, attempts=5, delay=10.0)
    fn = Flaky(10)
    task = asyncio.create_task(r.call(fn))
    for _ in range(3):
        await asyncio.sleep(0)
    assert clock.sleepers == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    clock.advance(100.0)
    await asyncio.sleep(0)
    assert fn.calls == 1


async def test_stops_when_the_deadline_cannot_fit_another_attempt() -> None:
    clock = ManualClock()
    r, rec = retry(clock, attempts=10, delay=2.0, jitter="none")
    fn = Flaky(100)
    task = asyncio.create_task(Timeout(5.0, clock=clock).call(r.call, fn))
    for _ in range(5):
        await asyncio.sleep(0)
    assert fn.calls == 1
    clock.advance(2.0)  # the first backoff
    # waiting 4 more would end at 6 > 5: it stops after the second attempt, without waiting
    with pytest.raises(ConnectionError):
        await task
    assert fn.calls == 2
    assert rec.of(RetryGaveUp)[0].reason == "deadline"


async def test_budget_stops_retries_and_says_so() -> None:
    clock = ManualClock(autojump=True)
    budget = RetryBudget(ratio=0.0, min_per_second=0.2, window=10.0, clock=clock)  # 2 retries
    r, rec = retry(clock, attempts=5, budget=budget, delay=0.0)
    fn = Flaky(100)
    with pytest.raises(ConnectionError) as info:
        await r.call(fn)
    assert fn.calls == 3
    assert rec.of(RetryGaveUp)[0].reason == "budget"
    assert any("budget" in n for n in info.value.__notes__)


async def test_concurrent_calls_never_share_attempt_counters() -> None:
    r = Retry(attempts=3, delay=0.001)
    flakies = [Flaky(2) for _ in range(50)]
    results = await asyncio.gather(*(r.call(f) for f in flakies))
    assert results == ["ok"] * 50
    assert all(f.calls == 3 for f in flakies)


async def test_no_backoff_switch_skips_the_waits() -> None:
    r = Retry(attempts=3, delay=30.0, max_delay=60.0)  # the real clock: a minute of waits
    fn = Flaky(2)
    with no_backoff():
        assert await asyncio.wait_for(r.call(fn), timeout=5.0) == "ok"
    assert fn.calls == 3


async def test_decorator_keeps_arguments() -> None:
    r, _ = retry(ManualClock(autojump=True), attempts=2)
    seen: list[tuple[int, str]] = []

    @r
    async def fetch(user_id: int, *, fields: str) -> str:
        seen.append((user_id, fields))
        if len(seen) == 1:
            raise ConnectionError
        return f"{user_id}/{fields}"

    assert await fetch(3, fields="name") == "3/name"
    assert seen == [(3, "name"), (3, "name")]
    assert fetch.__name__ == "fetch"


@pytest.mark.parametrize("jitter", ["full", "equal", "decorrelated", "none"])
def test_backoff_delays_stay_within_their_bounds(jitter: str) -> None:
    backoff = Backoff(initial=0.5, maximum=8.0, multiplier=2.0, jitter=jitter)  # type: ignore[arg-type]
    rng = random.Random(7)
    previous = 0.5
    for attempt in range(1, 40):
        d = backoff.delay(attempt, previous, rng.random)
        cap = min(8.0, 0.5 * 2 ** (attempt - 1))
        if jitter == "full":
            assert 0 <= d <= cap
        elif jitter == "equal":
            assert cap / 2 <= d <= cap
        elif jitter == "none":
            assert d == cap
        else:
            assert 0.5 <= d <= min(8.0, max(0.5, previous * 3))
        previous = d
    assert backoff.delay(1000, 8.0, rng.random) <= 8.0


@pytest.mark.parametrize(
    ("kw", "setting"),
    [
        ({"attempts": 0}, "attempts"),
        ({"delay": -1}, "delay"),
        ({"max_delay": 0.01, "delay": 1.0}, "max_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"jitter": "lots"}, "jitter"),
        ({"on": "ConnectionError"}, "Retry.on"),
    ],
)
def test_bad_config_names_the_setting(kw: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        Retry(**kw)  # type: ignore[arg-type]
