"""Pass/fail thresholds on a load test's result: ``p99<250ms``, ``errors<0.1%``, ``rps>1000``.

::

    slo = parse_slo("p99.9<1s")          # metric p99.9, op <, threshold 1000.0 ms
    outcome = slo.evaluate(result)        # SloOutcome(actual=..., passed=...)

Metrics: ``pNN`` / ``pNN.N`` (any percentile of the whole run's latency), ``min``, ``mean``,
``max`` (latency: a unit is required, ``us``, ``ms``, ``s`` or ``m``; thresholds are kept in
milliseconds), ``errors`` (percentage of requests that failed: the ``%`` is required), ``rps``
(requests per second over the run; ``/s`` optional). Operators: ``<``, ``<=``, ``>``, ``>=``.
A bad expression raises ``ConfigurationError`` naming it and saying what was expected.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from tailguard.errors import ConfigurationError

if TYPE_CHECKING:
    from tailguard.loadtest.results import Result

__all__ = ["SLO", "SloOutcome", "evaluate", "parse_slo"]

_EXPR = re.compile(
    r"^\s*(?P<metric>[a-z]+(?:\d+(?:\.\d+)?)?)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<value>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>[a-z%/]*)\s*$",
    re.IGNORECASE,
)
_LATENCY_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}  # -> milliseconds
_EXPECTED = "METRIC OP VALUE, e.g. p99<250ms, p99.9<1s, max<2s, mean<50ms, errors<0.1%, rps>1000"
_OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


@dataclasses.dataclass(frozen=True, slots=True)
class SLO:
    """One threshold. ``threshold`` is in ``unit``: ``ms`` for latency, ``%`` for errors,
    ``/s`` for rps. ``percentile`` is set for ``pNN`` metrics (0 .. 100)."""

    expr: str
    metric: str
    op: str
    threshold: float
    unit: str
    percentile: float | None = None

    def actual(self, result: Result) -> float:
        """This SLO's metric measured on ``result`` (in ``unit``)."""
        totals = result.totals
        if self.metric == "errors":
            return round(100.0 * totals.errors / totals.requests, 6) if totals.requests else 0.0
        if self.metric == "rps":
            return round(result.rps, 3)
        if self.percentile is not None:
            return totals.histogram.percentile_ms(self.percentile)
        return totals.histogram.figures([self.metric])[self.metric]

    def evaluate(self, result: Result) -> SloOutcome:
        """Measure the metric on ``result`` and compare it with the threshold."""
        actual = self.actual(result)
        passed = bool(_OPS[self.op](actual, self.threshold))
        return SloOutcome(
            self.expr, self.metric, self.op, self.threshold, self.unit, actual, passed
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SloOutcome:
    """An SLO checked against a result: ``actual`` is in ``unit``, like ``threshold``."""

    expr: str
    metric: str
    op: str
    threshold: float
    unit: str
    actual: float
    passed: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SloOutcome:
        return cls(
            str(data["expr"]),
            str(data["metric"]),
            str(data["op"]),
            float(data["threshold"]),
            str(data["unit"]),
            float(data["actual"]),
            bool(data["passed"]),
        )

    def __str__(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        return f"{verdict}  {self.expr}  (actual {self.actual:g}{_suffix(self.unit)})"


def parse_slo(expr: str) -> SLO:
    """The SLO that ``expr`` says; ``ConfigurationError`` (naming ``expr``) when it says none."""
    match = _EXPR.match(expr)
    if match is None:
        raise ConfigurationError("slo", expr, _EXPECTED)
    metric = match["metric"].lower()
    op = match["op"]
    value = float(match["value"])
    unit = match["unit"].lower()
    if metric == "errors":
        if unit != "%":
            raise ConfigurationError("slo", expr, "errors as a percentage, e.g. errors<0.1%")
        return SLO(expr, metric, op, value, "%")
    if metric == "rps":
        if unit not in ("", "/s"):
            raise ConfigurationError("slo", expr, "rps as requests per second, e.g. rps>1000")
        return SLO(expr, metric, op, value, "/s")
    percentile: float | None = None
    if metric[0] == "p" and metric[1:2].isdigit():
        percentile = float(metric[1:])
        if not 0 < percentile <= 100:
            raise ConfigurationError("slo", expr, "a percentile between p0 and p100, e.g. p99")
    elif metric not in ("min", "mean", "max"):
        raise ConfigurationError(
            "slo", expr, "a metric among pNN, pNN.N, min, mean, max, errors, rps"
        )
    if unit not in _LATENCY_UNITS:
        raise ConfigurationError(
            "slo", expr, "a latency with its unit (us, ms, s or m), e.g. p99<250ms"
        )
    threshold = round(value * _LATENCY_UNITS[unit], 6)
    return SLO(expr, metric, op, threshold, "ms", percentile)


def evaluate(slos: Iterable[SLO | str], result: Result) -> list[SloOutcome]:
    """Each SLO (or expression) checked against ``result``, in order, duplicates dropped."""
    seen: set[str] = set()
    out: list[SloOutcome] = []
    for slo in slos:
        parsed = parse_slo(slo) if isinstance(slo, str) else slo
        if parsed.expr not in seen:
            seen.add(parsed.expr)
            out.append(parsed.evaluate(result))
    return out


def _suffix(unit: str) -> str:
    return {"ms": " ms", "%": "%", "/s": "/s"}.get(unit, f" {unit}")
