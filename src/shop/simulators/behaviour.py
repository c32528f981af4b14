"""How a simulated dependency misbehaves: latency, failures, hangs, a slow replica. Sans-IO.

``Behaviour.sample(rng)`` draws one request's fate; the apps act on it. Latency is lognormal,
fitted to a median and a p99 (both seconds): ``sigma = ln(p99 / median) / z(0.99)``, so a heavy
tail is one setting. Outcomes are drawn from one uniform number, so ``failure_rate`` and
``timeout_rate`` are exact fractions of all requests (their sum is at most 1).

>>> b = parse_behaviour("median=20ms,p99=80ms,fail=0.1")
>>> b.latency_median, b.latency_p99, b.failure_rate
(0.02, 0.08, 0.1)
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal

__all__ = ["Behaviour", "Outcome", "parse_behaviour"]

Outcome = Literal["ok", "fail", "hang"]
"""``ok``: answer normally; ``fail``: answer 503 at once, no effect; ``hang``: do the work, then
hang ``Behaviour.hang`` seconds before answering (the caller times out after the effect)."""

_Z99 = NormalDist().inv_cdf(0.99)  # 2.326...: p99 is this many sigmas above the median
_FLOATS = ("latency_median", "latency_p99", "failure_rate", "timeout_rate", "slow_factor", "hang")


@dataclass
class Behaviour:
    """One simulated dependency's misbehaviour; mutate it through ``update`` to keep it valid.

    The defaults are a perfect dependency: no latency, no failures.
    """

    latency_median: float = 0.0
    """Median latency of a request, seconds."""
    latency_p99: float = 0.0
    """99th-percentile latency, seconds; equal to the median for a constant latency."""
    failure_rate: float = 0.0
    """Fraction (0..1) of requests answered 503 at once, with no effect."""
    timeout_rate: float = 0.0
    """Fraction (0..1) of requests that do their work, then hang ``hang`` seconds."""
    slow: bool = False
    """A slow replica: every latency is multiplied by ``slow_factor``."""
    slow_factor: float = 10.0
    """Latency multiplier (>= 1) while ``slow`` is on."""
    hang: float = 30.0
    """How long a hanging request waits before answering, seconds."""

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def sigma(self) -> float:
        """The lognormal shape parameter fitted to the median and the p99 (0: constant)."""
        if self.latency_median == 0.0:
            return 0.0
        return math.log(self.latency_p99 / self.latency_median) / _Z99

    def sample(self, rng: random.Random) -> tuple[float, Outcome]:
        """One request's (latency in seconds, outcome), drawn from ``rng`` for reproducibility."""
        u = rng.random()
        outcome: Outcome = "ok"
        if u < self.failure_rate:
            outcome = "fail"
        elif u < self.failure_rate + self.timeout_rate:
            outcome = "hang"
        latency = 0.0
        if self.latency_median > 0.0:
            latency = self.latency_median * math.exp(self.sigma * rng.normalvariate(0.0, 1.0))
        if self.slow:
            latency *= self.slow_factor
        return latency, outcome

    def update(self, changes: Mapping[str, object]) -> None:
        """Validate and apply a partial update (field name -> value); all or nothing.

        Raises ``ValueError`` naming an unknown field or a bad value.
        """
        known = {f.name for f in dataclasses.fields(self)}
        coerced: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown behaviour field {name!r}; known: {sorted(known)}")
            coerced[name] = _coerce(name, value)
        candidate = dataclasses.replace(self, **coerced)  # validates the combination
        for name in coerced:
            setattr(self, name, getattr(candidate, name))

    def to_dict(self) -> dict[str, float | bool]:
        """The fields as a JSON-ready mapping (durations in seconds)."""
        return dataclasses.asdict(self)


def _coerce(name: str, value: object) -> float | bool:
    if name == "slow":
        if not isinstance(value, bool):
            raise ValueError(f"slow must be true or false, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    return float(value)


def _validate(b: Behaviour) -> None:
    for name in _FLOATS:
        value = getattr(b, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
    for name in ("failure_rate", "timeout_rate"):
        if getattr(b, name) > 1:
            raise ValueError(f"{name} must be between 0 and 1, not {getattr(b, name)!r}")
    if b.failure_rate + b.timeout_rate > 1:
        raise ValueError(
            f"failure_rate + timeout_rate must be at most 1, not "
            f"{b.failure_rate!r} + {b.timeout_rate!r}"
        )
    if b.latency_p99 < b.latency_median:
        raise ValueError(
            f"latency_p99 ({b.latency_p99!r} s) must be >= latency_median ({b.latency_median!r} s)"
        )
    if b.latency_median == 0 and b.latency_p99 > 0:
        raise ValueError("latency_median must be > 0 when latency_p99 is > 0 (lognormal fit)")
    if b.slow_factor < 1:
        raise ValueError(f"slow_factor must be >= 1, not {b.slow_factor!r}")


_ALIASES = {
    "median": "latency_median",
    "p99": "latency_p99",
    "fail": "failure_rate",
    "timeout": "timeout_rate",
}
_DURATIONS = {"latency_median", "latency_p99", "hang"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_behaviour(spec: str) -> Behaviour:
    """Parse ``"median=20ms,p99=80ms,fail=0.1,timeout=0.05,slow=1"`` into a ``Behaviour``.

    Keys: ``median``, ``p99``, ``hang`` (durations with a unit, ``ms`` or ``s``), ``fail``,
    ``timeout`` (fractions 0..1), ``slow`` (1/0, true/false), ``slow_factor``; the full field
    names work too. A median without a p99 means a constant latency. An empty spec is
    ``Behaviour()``. Raises ``ValueError`` naming the bad part.
    """
    changes: dict[str, object] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, sep, raw = (s.strip() for s in part.partition("="))
        if not sep or not raw:
            raise ValueError(f"behaviour part {part!r} is not key=value")
        name = _ALIASES.get(key, key)
        if name not in {f.name for f in dataclasses.fields(Behaviour)}:
            raise ValueError(f"behaviour part {part!r}: unknown key {key!r}")
        changes[name] = _parse_value(name, raw, part)
    if "latency_median" in changes and "latency_p99" not in changes:
        changes["latency_p99"] = changes["latency_median"]
    behaviour = Behaviour()
    try:
        behaviour.update(changes)
    except ValueError as exc:
        raise ValueError(f"behaviour {spec!r}: {exc}") from exc
    return behaviour


def _parse_value(name: str, raw: str, part: str) -> object:
    if name == "slow":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ValueError(f"behaviour part {part!r}: slow must be 1/0 or true/false")
    divisor = 1.0
    if name in _DURATIONS:
        if raw.endswith("ms"):
            raw, divisor = raw[:-2], 1000.0
        elif raw.endswith("s"):
            raw = raw[:-1]
        else:
            raise ValueError(f"behaviour part {part!r}: give the duration a unit, ms or s")
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"behaviour part {part!r}: {raw!r} is not a number") from None
    return number / divisor
