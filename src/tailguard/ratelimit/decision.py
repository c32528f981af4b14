"""``Decision``, the answer to a check, and how the limits of one key combine into one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from tailguard.ratelimit.rate import Rate

__all__ = ["Decision", "Outcome", "combine"]


class Decision(NamedTuple):
    """The answer to one check. Times are seconds; ``retry_after`` is 0 when allowed.

    ``limit`` and ``remaining`` describe the tightest limit (for the RateLimit headers);
    ``reset_after`` is when that limit's quota is fully back.
    """

    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    policy: int = 0  # which of the key's limits decided (its index): the one to report


# One limit's verdict: (allowed, state to keep if admitted, remaining, reset_after,
# retry_after, ttl). A plain tuple: it is built on every check.
Outcome = tuple[bool, Any, int, float, float, float]


# Builds a Decision without NamedTuple's Python-level __new__ (twice as fast: checks are hot).
# Every field must be given, ``policy`` included.
new_decision = tuple.__new__


def combine(rates: Sequence[Rate], outcomes: Sequence[Outcome]) -> Decision:
    """One decision from the outcomes of all the limits of a key."""
    if len(outcomes) == 1:
        o = outcomes[0]
        return new_decision(Decision, (o[0], rates[0].limit, o[2], o[3], o[4], 0))
    if all(o[0] for o in outcomes):
        i = min(range(len(outcomes)), key=lambda j: outcomes[j][2])
        reset = max(o[3] for o in outcomes)
        return new_decision(Decision, (True, rates[i].limit, outcomes[i][2], reset, 0.0, i))
    i = max((j for j, o in enumerate(outcomes) if not o[0]), key=lambda j: outcomes[j][4])
    o = outcomes[i]
    return new_decision(Decision, (False, rates[i].limit, o[2], o[3], o[4], i))
