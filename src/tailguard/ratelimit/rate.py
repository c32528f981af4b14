"""Limits as text: ``"100/minute"``, ``"10/second; burst=20"``, ``"5/10 seconds, 1000/day"``.

A limit is ``N/PERIOD`` where PERIOD is a unit (``second``, ``minute``, ``hour``, ``day``, or
``s``/``m``/``h``/``d``, plural allowed) with an optional count (``10 seconds``). Options follow
a ``;`` and belong to the limit before them (``burst=20``). Several limits are separated by
``,``: a request must fit all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tailguard.errors import ConfigurationError

__all__ = ["Rate", "parse_rates"]

_UNITS = {
    "s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
}  # fmt: skip
_LIMIT = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    """``limit`` requests per ``period`` seconds; ``burst`` (default: ``limit``) is how many
    may arrive at once, for the algorithms that have a notion of burst (GCRA)."""

    limit: int
    period: float
    burst: int | None = None
    #: The most requests admitted at once (``burst``, else ``limit``).
    capacity: int = field(init=False, repr=False, compare=False)
    #: Seconds between two requests at the steady rate.
    interval: float = field(init=False, repr=False, compare=False)
    #: ``capacity`` x ``interval``: how far ahead of now a GCRA's arrival time may run.
    span: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ConfigurationError("Rate.limit", self.limit, "an int >= 1")
        if not self.period > 0:
            raise ConfigurationError("Rate.period", self.period, "seconds > 0")
        if self.burst is not None and self.burst < 1:
            raise ConfigurationError("Rate.burst", self.burst, "an int >= 1")
        # Computed once: the rules read them on every check.
        object.__setattr__(self, "capacity", self.burst if self.burst is not None else self.limit)
        object.__setattr__(self, "interval", self.period / self.limit)
        object.__setattr__(self, "span", self.capacity * self.interval)

    def __str__(self) -> str:
        for name, seconds in (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0)):
            if self.period == seconds:
                text = f"{self.limit}/{name}"
                break
        else:
            text = (
                f"{self.limit}/{self.period:g} seconds"
                if self.period != 1
                else f"{self.limit}/second"
            )
        return text if self.burst is None else f"{text}; burst={self.burst}"


def parse_rates(text: str | Rate | list[Rate]) -> list[Rate]:
    """Parse ``text`` into its limits (a ``Rate`` or a list of them passes through)."""
    if isinstance(text, Rate):
        return [text]
    if isinstance(text, list):
        if not text or not all(isinstance(r, Rate) for r in text):
            raise ConfigurationError("rate", text, "a non-empty list of Rate")
        return list(text)
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("rate", text, 'text such as "100/minute"')
    rates = []
    for part in text.split(","):
        limit_text, *options = part.split(";")
        match = _LIMIT.match(limit_text.lower())
        unit = match.group(3) if match else ""
        if match is None or unit not in _UNITS:
            raise ConfigurationError(
                "rate", part.strip(), '"N/unit" with unit second, minute, hour or day'
            )
        count = float(match.group(2)) if match.group(2) else 1.0
        burst = None
        for option in options:
            name, _, value = option.partition("=")
            value = value.strip()
            if name.strip() != "burst" or not (value.isascii() and value.isdigit()):
                raise ConfigurationError("rate option", option.strip(), '"burst=N"')
            if burst is not None:
                raise ConfigurationError("rate option", option.strip(), "one burst per limit")
            burst = int(value)
        rates.append(Rate(int(match.group(1)), count * _UNITS[unit], burst))
    return rates
