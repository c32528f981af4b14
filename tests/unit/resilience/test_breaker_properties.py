"""Properties of the breaker state machine, explored by hypothesis."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tailguard.resilience import BreakerConfig, BreakerState


class BreakerMachine(RuleBasedStateMachine):
    """Drive BreakerState with arbitrary permits, outcomes, cancellations and time steps,
    keeping a model of what it may do."""

    @initialize(
        probes=st.integers(1, 4),
        rate=st.one_of(st.none(), st.floats(0.1, 1.0)),
        minimum=st.integers(1, 8),
        window=st.integers(1, 10),
        threshold=st.integers(1, 5),
    )
    def setup(
        self, probes: int, rate: float | None, minimum: int, window: int, threshold: int
    ) -> None:
        self.cfg = BreakerConfig(
            failure_threshold=threshold,
            failure_rate=rate,
            window=window,
            minimum_calls=minimum,
            recovery_time=5.0,
            half_open_probes=probes,
        )
        self.st = BreakerState(self.cfg)
        self.now = 0.0
        self.in_flight: list[int] = []  # generations of admitted, unfinished calls
        self.closed_outcomes = 0  # outcomes recorded since the breaker last closed
        self.consecutive = 0

    @rule()
    def permit(self) -> None:
        before = self.st.state
        admitted = self.st.permit(self.now)
        if before == "closed":
            assert admitted
        if admitted:
            self.in_flight.append(self.st.generation)

    @precondition(lambda self: self.in_flight)
    @rule(failed=st.booleans(), pick=st.integers(0, 100))
    def finish(self, failed: bool, pick: int) -> None:
        gen = self.in_flight.pop(pick % len(self.in_flight))
        state, current = self.st.state, self.st.generation
        self.st.record(gen, self.now, failed, False)
        if gen == current and state == "closed":
            self.closed_outcomes += 1
            self.consecutive = self.consecutive + 1 if failed else 0
            if self.st.state == "open":
                if self.cfg.failure_rate is None:
                    # consecutive mode opens exactly at the threshold
                    assert self.consecutive >= self.cfg.failure_threshold
                else:
                    # rate mode never opens before the minimum number of calls (which a count
                    # window caps at its size: it can never hold more)
                    assert self.closed_outcomes >= min(self.cfg.minimum_calls, self.cfg.window)
            elif self.cfg.failure_rate is None:
                assert self.consecutive < self.cfg.failure_threshold
        if gen != current:
            assert self.st.state == state, "a stale outcome must not move the breaker"
        if self.st.generation != current:
            self.closed_outcomes = 0
            self.consecutive = 0

    @precondition(lambda self: self.in_flight)
    @rule(pick=st.integers(0, 100))
    def cancel(self, pick: int) -> None:
        gen = self.in_flight.pop(pick % len(self.in_flight))
        state = self.st.state
        self.st.release(gen)
        assert self.st.state == state, "a cancellation never moves the breaker"

    @rule(dt=st.floats(0.0, 6.0))
    def tick(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def half_open_never_admits_more_than_the_probes(self) -> None:
        if hasattr(self, "st") and self.st.state == "half_open":
            running = sum(1 for g in self.in_flight if g == self.st.generation)
            assert running + self.st.probes_passed <= self.cfg.half_open_probes
            assert self.st.probes_admitted <= self.cfg.half_open_probes

    @invariant()
    def open_is_never_entered_without_an_outcome(self) -> None:
        if hasattr(self, "st") and self.st.state == "open":
            assert self.st.retry_after(self.now) is not None


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 20), st.floats(0.05, 1.0))
def test_rate_mode_opens_iff_window_rate_reaches_threshold(
    outcomes: list[bool], minimum: int, rate: float
) -> None:
    window = 10
    state = BreakerState(BreakerConfig(failure_rate=rate, window=window, minimum_calls=minimum))
    seen: list[bool] = []
    for failed in outcomes:
        state.record(state.generation, 0.0, failed, False)
        seen.append(failed)
        last = seen[-window:]
        expect_open = len(last) >= min(minimum, window) and sum(last) / len(last) >= rate
        assert (state.state == "open") == expect_open
        if expect_open:
            break
