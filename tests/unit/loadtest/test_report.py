"""The HTML report: built from a result dict alone (docs/design/loadtest-result.md).

``build_result`` makes a realistic version 1 result the way the engine does: latencies recorded
into HDR histograms (microseconds), percentiles read back from them (milliseconds, 3 decimals),
the histograms encoded. The browser test (tests/integration/test_report_browser.py) uses it too.
"""

from __future__ import annotations

import copy
import html
import math
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped, unused-ignore]

from tailguard.loadtest.report import render_html

ACTIONS = {"browse": 0.6, "add_to_cart": 0.3, "purchase": 0.1}  # the guide's mix
MEDIAN_MS = {"browse": 12.0, "add_to_cart": 25.0, "purchase": 60.0}
ERROR_KINDS = {"status_500": 0.7, "status_503": 0.2, "timeout": 0.1}
TIMEOUT_MS = 1_000.0


def _histogram() -> Any:
    return HdrHistogram(1, 60_000_000, 3)  # 1 us .. 60 s, 3 significant figures


def to_ms(us: float) -> float:
    """Microseconds (the histograms' unit) as the result's milliseconds: 3 decimals."""
    return round(us / 1000.0, 3)


def _latency(h: Any) -> dict[str, float]:
    at = h.get_percentile_to_value_dict([50.0, 90.0, 99.0, 99.9])
    return {
        "min": to_ms(h.get_min_value()),
        "mean": to_ms(h.get_mean_value()),
        "p50": to_ms(at[50.0]),
        "p90": to_ms(at[90.0]),
        "p99": to_ms(at[99.0]),
        "p999": to_ms(at[99.9]),
        "max": to_ms(h.get_max_value()),
    }


def _stats(h: Any, errors: Counter[str], duration_s: float) -> dict[str, Any]:
    requests = h.get_total_count()
    return {
        "requests": requests,
        "ok": requests - sum(errors.values()),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(sorted(errors.items())),
        "rps": round(requests / duration_s, 1),
        "latency_ms": _latency(h),
    }


def _encode(h: Any) -> str:
    encoded = h.encode()
    return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)


def build_result(
    *, seconds: int = 20, rps: int = 300, seed: int = 12, sweep: bool = False
) -> dict[str, Any]:
    """A closed-model run of the guide's mix with a 2-second stall, errors and two SLOs."""
    rng = random.Random(seed)
    total, per_action = _histogram(), {name: _histogram() for name in ACTIONS}
    errors: Counter[str] = Counter()
    action_errors: dict[str, Counter[str]] = {name: Counter() for name in ACTIONS}
    timeline = []
    for second in range(seconds):
        stalled = second in (11, 12)
        h, second_errors = _histogram(), 0
        for _ in range(rps // 3 if stalled else rps + rng.randint(-25, 25)):
            name = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
            ms = MEDIAN_MS[name] * rng.lognormvariate(0, 0.35) * (12 if stalled else 1)
            if rng.random() < (0.05 if stalled else 0.004):
                kind = rng.choices(list(ERROR_KINDS), weights=list(ERROR_KINDS.values()))[0]
                ms = TIMEOUT_MS if kind == "timeout" else ms
                errors[kind] += 1
                action_errors[name][kind] += 1
                second_errors += 1
            us = max(1, round(ms * 1000))
            for hist in (h, total, per_action[name]):
                hist.record_value(us)
        lat = _latency(h)
        timeline.append(
            {
                "t": second,
                "requests": h.get_total_count(),
                "errors": second_errors,
                "latency_ms": {k: lat[k] for k in ("p50", "p90", "p99", "max")},
            }
        )
    duration = seconds + 0.02
    totals = _stats(total, errors, duration)
    p99, error_pct = (
        totals["latency_ms"]["p99"],
        round(100 * totals["errors"] / totals["requests"], 3),
    )
    return {
        "format": "tailguard-loadtest/1",
        "target": "http://127.0.0.1:8000/",
        "model": "closed",
        "started_at": "2026-12-06T14:00:00Z",
        "duration_s": duration,
        "settings": {
            "users": 50,
            "rate": None,
            "duration_s": float(seconds),
            "max_requests": 1_000_000,
            "workers": 1,
            "segment": "1/1",
            "connections": 50,
            "timeout_s": 30.0,
        },
        "totals": totals,
        "actions": {n: _stats(per_action[n], action_errors[n], duration) for n in ACTIONS},
        "timeline": timeline,
        "histograms": {
            "total": _encode(total),
            "actions": {n: _encode(h) for n, h in per_action.items()},
        },
        "slos": [
            {
                "expr": "p99<500ms",
                "metric": "p99",
                "op": "<",
                "threshold": 500.0,
                "unit": "ms",
                "actual": p99,
                "passed": p99 < 500.0,
            },
            {
                "expr": "errors<0.1%",
                "metric": "errors",
                "op": "<",
                "threshold": 0.1,
                "unit": "%",
                "actual": error_pct,
                "passed": error_pct < 0.1,
            },
        ],
        "passed": p99 < 500.0 and error_pct < 0.1,
        "sweep": [
            {
                "concurrency": c,
                "throughput": round(950.0 * c / (1 + 0.08 * (c - 1)), 1),
                "p99_ms": round(2.1 + 0.35 * c, 3),
            }
            for c in (1, 2, 4, 8, 16, 32)
        ]
        if sweep
        else None,
    }


def shown(ms: float) -> str:
    """A figure as the report shows it: the result's own digits, grouped, zeros trimmed."""
    return f"{ms:,.3f}".rstrip("0").rstrip(".")


def table_rows(page: str) -> Iterable[list[str]]:
    """Each table row's cells, as text."""
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", page, re.S):
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)
        yield [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in cells]


def has_plot(page: str, heading: str) -> bool:
    """Whether the section under ``heading`` holds an inline SVG."""
    section = page[page.index(f"<h2>{heading}</h2>") :]
    return "<svg" in section[: section.index("</section>")]


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return build_result(sweep=True)


@pytest.fixture(scope="module")
def page(result: dict[str, Any]) -> str:
    return render_html(result)


def test_the_fixture_is_a_realistic_result(result: dict[str, Any]) -> None:
    totals = result["totals"]
    assert totals["requests"] == sum(a["requests"] for a in result["actions"].values())
    assert totals["errors"] == sum(totals["errors_by_kind"].values()) > 0
    assert totals["latency_ms"]["p99"] > 100  # the stall reaches the tail
    assert [s["passed"] for s in result["slos"]] == [True, False]
    assert result["passed"] is False


def test_the_page_loads_nothing_and_runs_nothing(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    assert "<?xml" not in page
    assert "<!DOCTYPE svg" not in page
    assert re.findall(r"""\b(?:src|href)\s*=\s*["'](?!#)""", page) == []  # only in-page refs
    assert re.findall(r"url\((?!#)", page) == []
    assert "@import" not in page
    assert "<link" not in page
    assert "Content-Security-Policy" in page


def test_the_header_shows_the_run(page: str, result: dict[str, Any]) -> None:
    header = page[page.index("<header") : page.index("</header>")]
    for text in (
        "http://127.0.0.1:8000/",
        "closed",
        "2026-12-06T14:00:00Z",
        "20.02 s",
        "SLOs failed",
        "max_requests",
        "1,000,000",
        "1/1",
        "timeout_s",
    ):
        assert text in header
    assert "<title>Load test: http://127.0.0.1:8000/</title>" in page


def test_the_summary_has_totals_and_every_action(page: str, result: dict[str, Any]) -> None:
    rows = {r[0]: r for r in table_rows(page) if r and r[0] in {"all requests", *ACTIONS}}
    for name, stats in [("all requests", result["totals"]), *result["actions"].items()]:
        lat = stats["latency_ms"]
        assert rows[name][1:] == [
            f"{stats['requests']:,}",
            f"{stats['errors']:,}",
            f"{100 * stats['errors'] / stats['requests']:.3g}%",
            f"{stats['rps']:,.1f}",
            *(shown(lat[k]) for k in ("p50", "p90", "p99", "p999", "max")),
        ]


def test_the_slo_table_says_pass_and_fail(page: str, result: dict[str, Any]) -> None:
    rows = {r[0]: r for r in table_rows(page) if r and r[0] in ("p99<500ms", "errors<0.1%")}
    p99, errors = result["slos"]
    assert rows["p99<500ms"] == [
        "p99<500ms",
        "p99",
        "< 500 ms",
        f"{shown(p99['actual'])} ms",
        "pass",
    ]
    assert rows["errors<0.1%"][3:] == [f"{shown(errors['actual'])}%", "fail"]


def test_every_plot_is_inline_svg_with_unique_ids(page: str) -> None:
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    for heading in (
        "Latency over time",
        "Throughput over time",
        "Errors by kind",
        "Latency distribution",
        "Concurrency sweep",
    ):
        assert has_plot(page, heading), heading
    assert page.count("<svg") == 5
    assert "Latency percentiles" in headings
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert [i for i, n in Counter(ids).items() if n > 1] == []


def test_the_plots_draw_the_results_own_figures(page: str, result: dict[str, Any]) -> None:
    # Axis text stays text (svg.fonttype none), so the error bars' labels can be read back.
    for kind, count in result["totals"]["errors_by_kind"].items():
        assert f">{kind}</text>" in page
        assert f">{count:,}</text>" in page
    assert ">99.999%</text>" in page  # the percentile spectrum's last tick


def test_the_hdr_table_reads_the_encoded_histograms(page: str, result: dict[str, Any]) -> None:
    rows = {r[0]: r[1:] for r in table_rows(page) if r and r[0] in ("p99", "count", "max")}
    totals = result["totals"]
    assert rows["count"][0] == f"{totals['requests']:,}"
    assert rows["p99"][0] == shown(totals["latency_ms"]["p99"])
    assert rows["max"][0] == shown(totals["latency_ms"]["max"])
    assert [int(c.replace(",", "")) for c in rows["count"][1:]] == [
        a["requests"] for a in result["actions"].values()
    ]


def test_rendering_is_deterministic(result: dict[str, Any], page: str) -> None:
    assert render_html(result) == page


def test_strings_from_the_result_are_escaped() -> None:
    result = build_result(seconds=3)
    evil = "<script>alert('x')</script>&"
    result["target"] = evil
    result["actions"][evil] = result["actions"].pop("browse")
    result["totals"]["errors_by_kind"][evil] = 3
    result["settings"][evil] = evil
    result["slos"][0]["expr"] = evil
    page = render_html(result, title=f"title {evil}", extra_sections=[(evil, "<p>raw</p>")])
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in page
    assert "<p>raw</p>" in page  # extra sections are HTML by design


def test_title_and_extra_sections() -> None:
    page = render_html(
        build_result(seconds=2),
        title="Shop: checkout",
        extra_sections=[("Shop metrics", '<table id="shop"></table>')],
    )
    assert "<title>Shop: checkout</title>" in page
    assert "<h1>Shop: checkout " in page
    assert page.index("<h2>Shop metrics</h2>") > page.index("<h2>Latency distribution</h2>")
    assert '<table id="shop"></table>' in page


def _zero_requests() -> dict[str, Any]:
    return {
        "format": "tailguard-loadtest/1",
        "target": "http://127.0.0.1:9/",
        "model": "open",
        "started_at": "2026-12-06T14:00:00Z",
        "duration_s": 0.0,
        "settings": {"rate": 100, "duration_s": 0.0},
        "totals": {
            "requests": 0,
            "ok": 0,
            "errors": 0,
            "errors_by_kind": {},
            "rps": 0.0,
            "latency_ms": {k: 0.0 for k in ("min", "mean", "p50", "p90", "p99", "p999", "max")},
        },
        "actions": {},
        "timeline": [],
        "histograms": {"total": _encode(_histogram()), "actions": {}},
        "slos": [],
        "passed": True,
        "sweep": None,
    }


def _odd() -> dict[str, Any]:
    result = build_result(seconds=1)
    result["format"] = "tailguard-loadtest/99"
    result["histograms"] = {"total": "not base64 at all!", "actions": {"browse": 42}}
    result["timeline"] = [
        {"t": 0, "requests": None, "errors": None, "latency_ms": None},
        {"requests": math.inf, "latency_ms": {"p50": "fast"}},
        "junk",
    ]
    result["totals"]["errors_by_kind"] = {"status_500": 0, "timeout": None}
    result["actions"]["browse"] = None
    result["slos"] = [{"expr": "p99<1ms"}, "junk"]
    result["sweep"] = [{"concurrency": None}, {"concurrency": 4, "throughput": 10.0}]
    return result


EDGES = {
    "empty dict": (
        {},
        ["No per-second data", "histogram of this result is missing", "No SLOs were set"],
    ),
    "zero requests": (
        _zero_requests(),
        ["No per-second data", "No errors.", "The HDR histogram is empty.", "no SLOs"],
    ),
    "odd fields": (_odd(), ["Unknown result format", "could not be decoded", "No errors by kind."]),
}


@pytest.mark.parametrize(("result", "notes"), EDGES.values(), ids=EDGES.keys())
def test_edge_results_render_with_notes(result: dict[str, Any], notes: list[str]) -> None:
    before = copy.deepcopy(result)
    page = render_html(result)
    assert page.rstrip().endswith("</html>")
    for note in notes:
        assert note in page
    assert result == before  # the report never edits its input


def test_an_action_without_requests_is_left_out_of_the_distribution() -> None:
    result = build_result(seconds=2)
    result["actions"]["refund"] = copy.deepcopy(_zero_requests()["totals"])
    result["histograms"]["actions"]["refund"] = _encode(_histogram())
    page = render_html(result)
    assert has_plot(page, "Latency distribution")
    head = next(r for r in table_rows(page) if r and r[0] == "percentile (ms)")
    assert head == ["percentile (ms)", "all requests", *ACTIONS]
    refund = next(r for r in table_rows(page) if r and r[0] == "refund")
    assert refund[1:4] == ["0", "0", "\N{EN DASH}"]


def test_a_single_second_and_a_single_sweep_point() -> None:
    result = build_result(seconds=1)
    result["sweep"] = [{"concurrency": 8, "throughput": 1200.0, "p99_ms": 9.5}]
    page = render_html(result)
    for heading in ("Latency over time", "Throughput over time", "Concurrency sweep"):
        assert has_plot(page, heading), heading


def test_importing_the_report_imports_no_plotting_and_rendering_no_pyplot() -> None:
    code = (
        "import sys, tailguard.loadtest.report as report\n"
        "heavy = sorted(m for m in ('matplotlib', 'hdrh', 'numpy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "timeline = [{'t': 0, 'requests': 5, 'latency_ms': {'p50': 1.5}}]\n"
        "assert '<svg' in report.render_html({'timeline': timeline})\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
