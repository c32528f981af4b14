"""ByMonth: one shard per UTC month, naive datetimes refused, ranges covered half-open."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.errors import ConfigurationError
from tailguard.shard import ByMonth

EVENTS = ByMonth("events")
PARIS_WINTER = timezone(timedelta(hours=1))


def utc(*args: int) -> datetime:
    return datetime(*args).replace(tzinfo=UTC)  # type: ignore[arg-type]


def test_a_shard_is_named_by_the_utc_month() -> None:
    assert EVENTS.shard(utc(2024, 1, 15, 9, 30)) == "events_2024_01"
    assert EVENTS.shard(utc(2024, 12, 31, 23, 59, 59)) == "events_2024_12"
    assert EVENTS.shard(date(2024, 2, 29)) == "events_2024_02"
    assert EVENTS.month(utc(999, 3, 1)) == (999, 3)
    assert EVENTS.shard(utc(999, 3, 1)) == "events_0999_03"


def test_aware_times_are_converted_to_utc_first() -> None:
    just_after_midnight_in_paris = datetime(2024, 2, 1, 0, 30, tzinfo=PARIS_WINTER)
    assert EVENTS.shard(just_after_midnight_in_paris) == "events_2024_01"


def test_naive_datetimes_are_refused_unless_declared_utc() -> None:
    with pytest.raises(ValueError, match=r"naive datetime 2024-01-31T23:00:00.*naive='utc'"):
        EVENTS.shard(datetime(2024, 1, 31, 23))
    assert ByMonth("events", naive="utc").shard(datetime(2024, 1, 31, 23)) == "events_2024_01"
    with pytest.raises(ValueError, match="naive"):
        EVENTS.covering(datetime(2024, 1, 1), utc(2024, 2, 1))


@pytest.mark.parametrize("when", ["2024-01-01", 1704067200, None])
def test_only_dates_and_datetimes_are_keys(when: object) -> None:
    with pytest.raises(TypeError, match="ByMonth shards by datetime or date"):
        EVENTS.shard(when)  # type: ignore[arg-type]


def test_covering_is_half_open() -> None:
    assert EVENTS.covering(utc(2024, 1, 15), utc(2024, 3, 1)) == [
        "events_2024_01",
        "events_2024_02",
    ]
    assert EVENTS.covering(utc(2024, 1, 15), utc(2024, 3, 1, 0, 0, 0, 1))[-1] == "events_2024_03"
    assert EVENTS.covering(date(2023, 11, 30), date(2024, 2, 2)) == [
        "events_2023_11",
        "events_2023_12",
        "events_2024_01",
        "events_2024_02",
    ]
    assert EVENTS.covering(utc(2024, 5, 5), utc(2024, 5, 5)) == []
    with pytest.raises(ValueError, match="before start"):
        EVENTS.covering(utc(2024, 5, 5), utc(2024, 5, 4))


@given(
    start=st.datetimes(datetime(2000, 1, 1), datetime(2030, 1, 1), timezones=st.just(UTC)),
    length=st.timedeltas(timedelta(microseconds=1), timedelta(days=800)),
)
def test_covering_holds_exactly_the_months_of_the_range(start: datetime, length: timedelta) -> None:
    names = EVENTS.covering(start, start + length)
    assert names[0] == EVENTS.shard(start)
    assert names[-1] == EVENTS.shard(start + length - timedelta(microseconds=1))
    assert len(names) == len(set(names))
    assert names == sorted(names)
    for name in names:  # consecutive months: each range starts where the last one ended
        low, high = EVENTS.bounds(name)
        assert EVENTS.shard(low) == name
        assert EVENTS.shard(high - timedelta(microseconds=1)) == name
    assert all(EVENTS.bounds(a)[1] == EVENTS.bounds(b)[0] for a, b in itertools.pairwise(names))


def test_bounds_of_a_shard() -> None:
    assert EVENTS.bounds("events_2024_12") == (utc(2024, 12, 1), utc(2025, 1, 1))
    for bad in ("events_2024_13", "logs_2024_01", "events_24_01", "events_2024_1", "events"):
        with pytest.raises(ValueError, match="is not a shard name"):
            EVENTS.bounds(bad)


@pytest.mark.parametrize("prefix", ["", "2events", "events-x", "events x", "a" * 56, 7])
def test_the_prefix_must_make_plain_sql_names(prefix: object) -> None:
    with pytest.raises(ConfigurationError, match="prefix="):
        ByMonth(prefix)  # type: ignore[arg-type]


def test_naive_option_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="naive="):
        ByMonth("events", naive="local")  # type: ignore[arg-type]
