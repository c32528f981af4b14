"""``ByMonth``: time-based sharding, one shard (a table, a partition or a database) per
calendar month in UTC, for logs, events and analytics.

::

    from datetime import UTC, datetime
    from tailguard.shard import ByMonth

    events = ByMonth("events")
    events.shard(datetime(2024, 1, 15, 9, 30, tzinfo=UTC))   # 'events_2024_01'
    events.covering(datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    # ['events_2024_01', 'events_2024_02']: a query over that range reads these two

Times are read in UTC. An aware ``datetime`` is converted to UTC first (so 00:30 on the 1st
in Paris is still last month). A naive ``datetime`` is refused by default: it is the classic
way to shard by a server's local time without noticing; ``ByMonth(..., naive="utc")`` reads
naive values as UTC, for columns stored as UTC without a zone. A ``date`` is that calendar day
(midnight UTC). Unlike the hash strategies there is no fixed number of shards: a new month
makes a new shard, and old months can be archived or dropped whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from tailguard.errors import ConfigurationError

__all__ = ["ByMonth"]

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MAX_PREFIX = 55  # PostgreSQL names are at most 63 bytes; "_YYYY_MM" takes 8
_CACHED_NAMES = 4096  # months whose names a ByMonth keeps (340 years)


@dataclass(frozen=True, slots=True)
class ByMonth:
    """One shard per UTC calendar month, named ``{prefix}_{YYYY}_{MM}`` (``events_2024_01``).

    ``prefix`` must be a plain SQL identifier (letters, digits, ``_``; at most 55 characters),
    so every shard name can be used unquoted as a table or database name. ``naive`` says what
    a naive ``datetime`` means: ``"error"`` (refuse it, the default) or ``"utc"``.
    """

    prefix: str
    naive: Literal["error", "utc"] = "error"
    # year * 12 + month -> name: formatting a name costs more than the rest of a lookup
    _names: dict[int, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or not _PREFIX.match(self.prefix):
            raise ConfigurationError(
                "prefix", self.prefix, "an SQL identifier: letters, digits and _, not first a digit"
            )
        if len(self.prefix) > _MAX_PREFIX:
            raise ConfigurationError(
                "prefix", self.prefix, f"at most {_MAX_PREFIX} characters (a name is <= 63)"
            )
        if self.naive not in ("error", "utc"):
            raise ConfigurationError("naive", self.naive, "'error' or 'utc'")

    def month(self, when: datetime | date) -> tuple[int, int]:
        """``(year, month)`` of ``when`` in UTC."""
        if isinstance(when, datetime):
            tz = when.tzinfo
            if tz is None:
                if self.naive == "error":
                    raise ValueError(
                        f"naive datetime {when.isoformat()}: give it a tzinfo (e.g. UTC), or "
                        "use ByMonth(..., naive='utc') if naive values are UTC"
                    )
            elif tz is not UTC:
                when = when.astimezone(UTC)
            return when.year, when.month
        if isinstance(when, date):
            return when.year, when.month
        raise TypeError(f"ByMonth shards by datetime or date, not {type(when).__name__} {when!r}")

    def name(self, year: int, month: int) -> str:
        """The shard name of ``month`` (1..12) in ``year``: ``events_2024_01``."""
        return f"{self.prefix}_{year:04d}_{month:02d}"

    def shard(self, when: datetime | date) -> str:
        """The name of the shard holding ``when``."""
        if type(when) is datetime and when.tzinfo is UTC:
            index = when.year * 12 + when.month
        else:
            year, month = self.month(when)
            index = year * 12 + month
        name = self._names.get(index)
        if name is None:
            year, month = divmod(index - 1, 12)
            name = self.name(year, month + 1)
            if len(self._names) < _CACHED_NAMES:
                self._names[index] = name
        return name

    def covering(self, start: datetime | date, end: datetime | date) -> list[str]:
        """The shards holding any instant of ``[start, end)``, oldest first.

        Half-open, as in ``created_at >= start AND created_at < end``: an ``end`` at midnight
        on the 1st does not bring in that month. An empty range covers nothing.
        """
        begin, stop = _instant(start, self), _instant(end, self)
        if stop < begin:
            raise ValueError(f"covering: end {end!r} is before start {start!r}")
        if stop == begin:
            return []
        year, month = begin.year, begin.month
        last_year, last_month = (stop - _TICK).year, (stop - _TICK).month
        names = []
        while (year, month) <= (last_year, last_month):
            names.append(self.name(year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return names

    def bounds(self, name: str) -> tuple[datetime, datetime]:
        """``[first instant, first instant of the next month)`` of shard ``name``, in UTC:
        the range for a partition's ``FOR VALUES FROM .. TO ..`` or a ``CHECK``."""
        head, _, tail = name.rpartition("_")
        prefix, _, year_text = head.rpartition("_")
        if prefix != self.prefix or not (year_text.isdigit() and tail.isdigit()):
            raise ValueError(f"{name!r} is not a shard name of ByMonth({self.prefix!r})")
        year, month = int(year_text), int(tail)
        if not 1 <= month <= 12 or len(tail) != 2 or len(year_text) != 4:
            raise ValueError(f"{name!r} is not a shard name of ByMonth({self.prefix!r})")
        after = (year + 1, 1) if month == 12 else (year, month + 1)
        return datetime(year, month, 1, tzinfo=UTC), datetime(after[0], after[1], 1, tzinfo=UTC)


_TICK = datetime.resolution  # 1 us: the last instant before a half-open range's end


def _instant(when: datetime | date, by: ByMonth) -> datetime:
    """``when`` as an aware UTC datetime (a ``date`` is its midnight UTC)."""
    if isinstance(when, datetime):
        by.month(when)  # the same checks (naive, type) as ``shard``
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if isinstance(when, date):
        return datetime(when.year, when.month, when.day, tzinfo=UTC)
    raise TypeError(f"ByMonth shards by datetime or date, not {type(when).__name__} {when!r}")
