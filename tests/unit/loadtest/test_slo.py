"""SLO expressions: what parses, what is refused (naming the expression), how they judge."""

from __future__ import annotations

import pytest

from tailguard.errors import ConfigurationError
from tailguard.loadtest.histogram import Histogram
from tailguard.loadtest.results import Result, Stats
from tailguard.loadtest.slo import evaluate, parse_slo


@pytest.mark.parametrize(
    ("expr", "metric", "op", "threshold", "unit", "percentile"),
    [
        ("p50<100ms", "p50", "<", 100.0, "ms", 50.0),
        ("p99<250ms", "p99", "<", 250.0, "ms", 99.0),
        ("p99.9<1s", "p99.9", "<", 1000.0, "ms", 99.9),
        ("max<2s", "max", "<", 2000.0, "ms", None),
        ("mean <= 500us", "mean", "<=", 0.5, "ms", None),
        ("p95<1.5m", "p95", "<", 90_000.0, "ms", 95.0),
        ("errors<0.1%", "errors", "<", 0.1, "%", None),
        ("rps>1000", "rps", ">", 1000.0, "/s", None),
        ("rps >= 50/s", "rps", ">=", 50.0, "/s", None),
    ],
)
def test_parse(
    expr: str, metric: str, op: str, threshold: float, unit: str, percentile: float | None
) -> None:
    slo = parse_slo(expr)
    assert (slo.metric, slo.op, slo.threshold, slo.unit, slo.percentile) == (
        metric,
        op,
        threshold,
        unit,
        percentile,
    )
    assert slo.expr == expr


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("p99<250", "unit"),
        ("p99 250ms", "METRIC OP VALUE"),
        ("errors<0.1", "percentage"),
        ("rps>10ms", "requests per second"),
        ("p0<1ms", "percentile"),
        ("p101<1ms", "percentile"),
        ("latency<1ms", "metric"),
        ("", "METRIC OP VALUE"),
    ],
)
def test_a_bad_expression_is_named(expr: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        parse_slo(expr)
    assert repr(expr) in str(caught.value)


def result_with(latencies_us: list[int], requests: int, errors: int, seconds: float) -> Result:
    hist = Histogram()
    for us in latencies_us:
        hist.record(us)
    totals = Stats(requests, {"status_500": errors} if errors else {}, hist)
    return Result("t", "open", "2026-01-01T00:00:00Z", seconds, {}, totals, {}, [])


def test_evaluate() -> None:
    result = result_with([1000] * 99 + [300_000], requests=1000, errors=2, seconds=10.0)
    outcomes = evaluate(
        ["p50<2ms", "p99.9<250ms", "errors<0.1%", "errors<=0.2%", "rps>=100", "max<1s"], result
    )
    assert [(o.expr, o.passed) for o in outcomes] == [
        ("p50<2ms", True),
        ("p99.9<250ms", False),
        ("errors<0.1%", False),
        ("errors<=0.2%", True),
        ("rps>=100", True),
        ("max<1s", True),
    ]
    assert outcomes[1].actual == pytest.approx(300.0, rel=0.001)
    assert outcomes[2].actual == 0.2
    assert "FAIL" in str(outcomes[1])
