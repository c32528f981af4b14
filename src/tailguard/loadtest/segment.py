"""Execution segments (after k6's): the i-th of n slices of one load, for n generators.

Segment ``i/n`` runs users ``[floor((i-1)*U/n), floor(i*U/n))`` of a closed model of ``U``
users, and every n-th arrival of an open model starting with arrival ``i-1`` (a rate of
``rate/n``, its arrivals interleaved with the other segments'). Together the n segments are the
whole load, exactly. Worker processes are segments too: worker ``w`` of ``W`` inside segment
``i/n`` is segment ``(i-1)*W + w`` of ``n*W``.
"""

from __future__ import annotations

import dataclasses

from tailguard.errors import ConfigurationError
from tailguard.loadtest.profiles import Profile, Strided

__all__ = ["Segment"]


@dataclasses.dataclass(frozen=True, slots=True)
class Segment:
    """Slice ``index`` (1-based) of ``count``."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ConfigurationError("segment", str(self), "i/n with 1 <= i <= n, e.g. 2/4")

    @classmethod
    def parse(cls, text: str) -> Segment:
        """``"2/4"`` -> ``Segment(2, 4)``; ``ConfigurationError`` for anything else."""
        index, sep, count = text.strip().partition("/")
        if not (sep and index.strip().isdigit() and count.strip().isdigit()):
            raise ConfigurationError("segment", text, "i/n with 1 <= i <= n, e.g. 2/4")
        return cls(int(index), int(count))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def whole(self) -> bool:
        return self.count == 1

    def users(self, total: int) -> range:
        """The user numbers (0-based) of this slice of ``total`` users."""
        return range((self.index - 1) * total // self.count, self.index * total // self.count)

    def requests(self, total: int) -> int:
        """This slice's share of a request cap of ``total``: the arrivals it owns among the
        first ``total`` (so the shares add up to ``total``)."""
        return len(range(self.index - 1, total, self.count))

    def profile(self, profile: Profile) -> Profile:
        """This slice's arrivals of ``profile``."""
        if self.whole:
            return profile
        return Strided(profile, self.index - 1, self.count)

    def split(self, workers: int) -> list[Segment]:
        """This slice cut in ``workers`` finer slices, in order."""
        return [
            Segment((self.index - 1) * workers + w, self.count * workers)
            for w in range(1, workers + 1)
        ]
