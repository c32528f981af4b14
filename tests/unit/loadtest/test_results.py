"""The result JSON: the contract's keys, a lossless round trip, merges recomputed from
histograms (never averaged percentiles)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tailguard.loadtest.histogram import Histogram
from tailguard.loadtest.results import (
    FORMAT,
    Result,
    Second,
    Stats,
    concat,
    join_segments,
    merge,
)

CONTRACT = Path(__file__).resolve().parents[3] / "docs" / "design" / "loadtest-result.md"


def hist(*latencies_ms: float) -> Histogram:
    out = Histogram()
    for ms in latencies_ms:
        out.record(int(ms * 1000))
    return out


def result(latencies_ms: list[float], *, errors: int = 0, segment: str = "1/1") -> Result:
    total = hist(*latencies_ms)
    stats = Stats(len(latencies_ms), {"status_500": errors} if errors else {}, total)
    action = Stats(stats.requests, dict(stats.errors_by_kind), hist(*latencies_ms))
    half = len(latencies_ms) // 2
    timeline = [
        Second.of(0, half, 0, hist(*latencies_ms[:half])),
        Second.of(1, len(latencies_ms) - half, errors, hist(*latencies_ms[half:])),
    ]
    settings = {
        "users": 10,
        "rate": None,
        "duration_s": 2.0,
        "max_requests": 1000,
        "workers": 1,
        "segment": segment,
        "connections": 10,
        "timeout_s": 30.0,
    }
    out = Result(
        "http://127.0.0.1:8000/", "closed", "2026-12-06T14:00:00Z", 2.0, settings, stats,
        {"GET /": action}, timeline,
    )  # fmt: skip
    return out.check(["p99<250ms"])


def test_to_dict_has_the_contracts_keys() -> None:
    data = result([1.0, 2.0, 3.0, 400.0], errors=1).to_dict()
    contract = CONTRACT.read_text()
    for key in data:
        assert f'"{key}"' in contract
    assert data["format"] == FORMAT == "tailguard-loadtest/1"
    assert set(data["totals"]) == {
        "requests",
        "ok",
        "errors",
        "errors_by_kind",
        "rps",
        "latency_ms",
    }
    assert set(data["totals"]["latency_ms"]) == {"min", "mean", "p50", "p90", "p99", "p999", "max"}
    assert data["totals"]["requests"] == 4
    assert data["totals"]["ok"] == 3
    assert data["totals"]["rps"] == 2.0
    assert set(data["timeline"][0]) == {"t", "requests", "errors", "latency_ms"}
    assert set(data["timeline"][0]["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert set(data["histograms"]) == {"total", "actions", "timeline"}
    assert data["slos"][0] == {
        "expr": "p99<250ms",
        "metric": "p99",
        "op": "<",
        "threshold": 250.0,
        "unit": "ms",
        "actual": pytest.approx(400.0, rel=0.001),
        "passed": False,
    }
    assert data["passed"] is False
    assert data["sweep"] is None
    json.dumps(data)  # plain JSON, nothing else


def test_round_trip() -> None:
    original = result([1.0, 2.0, 3.0, 40.0], errors=1)
    data = json.loads(json.dumps(original.to_dict()))
    again = Result.from_dict(data)
    assert again.to_dict() == original.to_dict()
    with pytest.raises(ValueError, match="format"):
        Result.from_dict({**data, "format": "other/2"})
    with pytest.raises(ValueError, match="malformed"):
        Result.from_dict({k: v for k, v in data.items() if k != "totals"})


def test_merge_recomputes_figures_from_the_merged_histograms() -> None:
    a = result([1.0] * 98 + [500.0, 500.0], segment="1/2")
    b = result([2.0] * 100, errors=3, segment="2/2")
    merged = merge([a, b])
    data = merged.to_dict()
    assert data["totals"]["requests"] == 200
    assert data["totals"]["errors_by_kind"] == {"status_500": 3}
    whole = hist(*([1.0] * 98 + [500.0, 500.0] + [2.0] * 100))
    assert data["totals"]["latency_ms"] == whole.figures()
    # The parts' p99 are 500 ms and 2 ms; the whole's is 2 ms (2 slow of 200), not an average.
    assert a.to_dict()["totals"]["latency_ms"]["p99"] == pytest.approx(500.0, rel=0.01)
    assert data["totals"]["latency_ms"]["p99"] == pytest.approx(2.0, rel=0.01)
    assert data["totals"]["latency_ms"]["max"] == pytest.approx(500.0, rel=0.01)
    assert [s["requests"] for s in data["timeline"]] == [100, 100]
    assert data["settings"]["segment"] == "1/1"
    assert data["settings"]["users"] == 20
    assert data["slos"][0]["actual"] == data["totals"]["latency_ms"]["p99"]
    assert Histogram.decode(data["histograms"]["timeline"][1]).total == 100


def test_concat_puts_timelines_one_after_the_other() -> None:
    joined = concat([result([1.0, 2.0]), result([3.0, 4.0])])
    assert [s.t for s in joined.timeline] == [0, 1, 2, 3]
    assert joined.duration_s == 4.0
    assert joined.totals.requests == 4


def test_merging_different_models_is_refused() -> None:
    other = result([1.0])
    other.model = "open"
    with pytest.raises(ValueError, match="models"):
        merge([result([1.0]), other])


def test_join_segments() -> None:
    assert join_segments(["2/3", "1/3", "3/3"]) == "1/1"
    assert join_segments(["1/3", "3/3"]) == "1/3,3/3"
    assert join_segments(["1/1"]) == "1/1"
