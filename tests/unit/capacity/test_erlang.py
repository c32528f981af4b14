"""M/M/c (Erlang C) sizing, checked against textbook values, tables and an exact oracle."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.capacity import erlang_c, mean_wait, servers_for
from tailguard.capacity.erlang import erlang_b, service_level
from tailguard.errors import ConfigurationError


def erlang_c_exact(c: int, a: Fraction) -> Fraction:
    """The textbook closed form, in exact rationals (e.g. Kleinrock, *Queueing Systems* vol. 1,
    1975, the M/M/m queue: the probability of queueing)::

        C(c, a) = (a^c / c!) (c / (c - a)) / (sum_{k<c} a^k / k! + (a^c / c!) (c / (c - a)))
    """
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


def test_two_erlangs_on_three_servers_wait_with_probability_four_ninths() -> None:
    # By hand: sum_{k<3} 2^k/k! = 1 + 2 + 2 = 5; (2^3/3!) (3/(3-2)) = 4; C = 4 / (5 + 4) = 4/9.
    assert erlang_c(3, 2) == pytest.approx(4 / 9, rel=1e-12)
    assert erlang_c_exact(3, Fraction(2)) == Fraction(4, 9)


def test_ten_erlangs_on_eleven_servers() -> None:
    assert erlang_c(11, 10) == pytest.approx(0.6821, abs=5e-5)
    assert erlang_c(11, 10) == pytest.approx(float(erlang_c_exact(11, Fraction(10))), rel=1e-12)


def test_the_call_centre_worked_example() -> None:
    # Call Centre Helper, "Erlang C Formula - Made Simple with an Easy Worked Example": 100 calls
    # in 30 minutes, 180 s average handling time (10 Erlangs), target: 80% of calls answered in
    # 20 s. With 11 agents: P(wait) = 68.2%, 39.0% answered within 20 s, average speed of answer
    # 122.8 s; the fewest agents meeting the target are 14 (88.8%, occupancy 71.4%).
    rate, service_time, target = 100 / 1800, 180.0, 20.0  # calls/s, s, s
    assert rate * service_time == pytest.approx(10)
    assert erlang_c(11, rate * service_time) == pytest.approx(0.682, abs=5e-4)
    assert service_level(11, rate, service_time, target) == pytest.approx(0.390, abs=5e-4)
    assert mean_wait(11, rate, service_time) == pytest.approx(122.8, abs=0.05)
    assert service_level(13, rate, service_time, target) < 0.80  # 79.6%: one agent short
    assert servers_for(rate, service_time, target, percentile=0.80) == 14
    assert service_level(14, rate, service_time, target) == pytest.approx(0.888, abs=5e-4)
    assert rate * service_time / 14 == pytest.approx(0.714, abs=5e-4)


@pytest.mark.parametrize(
    ("servers", "load"),
    # Erlang B tables (e.g. ITU-D, *Teletraffic Engineering Handbook*, Iversen, Erlang's B
    # table): the traffic in Erlangs that N circuits carry at 1% blocking.
    [(1, 0.0101), (5, 1.361), (10, 4.461), (20, 12.031), (50, 37.901), (100, 84.064)],
)
def test_erlang_b_matches_the_one_percent_blocking_table(servers: int, load: float) -> None:
    assert erlang_b(servers, load) == pytest.approx(0.01, abs=1e-5)


@given(c=st.integers(1, 40), ratio=st.fractions(min_value=0, max_value=1, max_denominator=50))
def test_the_recursion_equals_the_exact_closed_form(c: int, ratio: Fraction) -> None:
    a = ratio * c * Fraction(99, 100)  # 0 <= a < c
    assert erlang_c(c, float(a)) == pytest.approx(float(erlang_c_exact(c, a)), rel=1e-10, abs=0)


def _erlang_c_log(c: int, a: float) -> float:
    """An independent evaluation in log space (lgamma + log-sum-exp) for large ``c``."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    top = c * math.log(a) - math.lgamma(c + 1) + math.log(c / (c - a))
    peak = max(*logs, top)
    total = sum(math.exp(v - peak) for v in logs) + math.exp(top - peak)
    return math.exp(top - peak) / total


@pytest.mark.parametrize(("servers", "load"), [(1000, 950.0), (5000, 4900.0), (20_000, 19_800.0)])
def test_thousands_of_servers_stay_accurate(servers: int, load: float) -> None:
    assert 0 < erlang_c(servers, load) < 1
    assert erlang_c(servers, load) == pytest.approx(_erlang_c_log(servers, load), rel=1e-9)


def test_m_m_1_is_the_textbook_single_server_queue() -> None:
    # M/M/1 (Kleinrock vol. 1, section 3.2): P(wait) = rho, mean wait in queue
    # W = rho / (mu (1 - rho)). rate 0.5/s, service 1 s: rho = 0.5, W = 1 s.
    assert erlang_c(1, 0.5) == pytest.approx(0.5)
    assert mean_wait(1, 0.5, 1.0) == pytest.approx(1.0)
    assert mean_wait(1, 0.9, 1.0) == pytest.approx(0.9 / (1 - 0.9))


def test_no_traffic_never_waits() -> None:
    assert erlang_c(1, 0.0) == 0.0
    assert erlang_b(3, 0.0) == 0.0


@given(
    rate=st.floats(min_value=0.01, max_value=500),
    service_time=st.floats(min_value=0.001, max_value=2),
    wait_target=st.floats(min_value=0, max_value=1),
    percentile=st.floats(min_value=0.5, max_value=0.999),
)
def test_servers_for_is_the_fewest_that_meet_the_target(
    rate: float, service_time: float, wait_target: float, percentile: float
) -> None:
    c = servers_for(rate, service_time, wait_target, percentile)
    assert c > rate * service_time
    assert service_level(c, rate, service_time, wait_target) >= percentile
    if c - 1 > rate * service_time:
        assert service_level(c - 1, rate, service_time, wait_target) < percentile


def test_a_zero_wait_target_asks_that_the_percentile_never_waits() -> None:
    c = servers_for(10, 0.5, 0.0, percentile=0.9)  # 5 Erlangs
    assert 1 - erlang_c(c, 5.0) >= 0.9
    assert 1 - erlang_c(c - 1, 5.0) < 0.9


def test_the_probability_of_waiting_falls_as_servers_are_added() -> None:
    values = [erlang_c(c, 10.0) for c in range(11, 30)]
    assert values == sorted(values, reverse=True)


@pytest.mark.parametrize(("servers", "load"), [(2, 2.0), (2, 3.5), (10, 10.0)])
def test_an_unstable_queue_raises(servers: int, load: float) -> None:
    with pytest.raises(ValueError, match=r"^servers=.*grows without bound"):
        erlang_c(servers, load)
    with pytest.raises(ValueError, match=r"^servers="):
        mean_wait(servers, load, 1.0)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: erlang_c(0, 0.5), "servers"),
        (lambda: erlang_c(2.5, 0.5), "servers"),  # type: ignore[arg-type]
        (lambda: erlang_c(True, 0.5), "servers"),
        (lambda: erlang_c(3, -1.0), "offered_load"),
        (lambda: erlang_c(3, math.nan), "offered_load"),
        (lambda: servers_for(0, 1, 1), "rate"),
        (lambda: servers_for(1, -1, 1), "service_time"),
        (lambda: servers_for(1, 1, -1), "wait_target"),
        (lambda: servers_for(1, 1, 1, percentile=95), "percentile"),
        (lambda: servers_for(1, 1, 1, percentile=1.0), "percentile"),
        (lambda: mean_wait(3, math.inf, 1), "rate"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(call: object, name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{name}=") as info:
        call()  # type: ignore[operator]
    assert isinstance(info.value, ValueError)
