"""The HTML report of a load test: one self-contained page built from a result dict alone.

The input is the result JSON (``docs/design/loadtest-result.md``) as loaded from a file, so a
report needs nothing but the file. The page loads nothing (inline CSS, plots as inline SVG, a
Content-Security-Policy that forbids any fetch) and runs no script. Every string taken from the
result is escaped; a missing or odd field shows as a dash or a note, never as an exception.

matplotlib draws the plots and is imported only while a page is rendered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from tailguard.loadtest import _report_plots as plots
from tailguard.loadtest._report_style import CSP, CSS

__all__ = ["render_html"]

FORMAT = "tailguard-loadtest/1"
_DASH = "\N{EN DASH}"
_LATENCY_COLUMNS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"))
_HDR_LEVELS = (
    (50.0, "p50"),
    (90.0, "p90"),
    (99.0, "p99"),
    (99.9, "p99.9"),
    (99.99, "p99.99"),
    (99.999, "p99.999"),
    (100.0, "max"),
)


def render_html(
    result: Mapping[str, Any],
    *,
    title: str | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> str:
    """The report page for ``result`` (a version 1 result dict), as one HTML document.

    ``title`` replaces the default heading ("Load test: <target>"). ``extra_sections`` are
    ``(title, html)`` pairs appended after the report's own sections; the title is escaped, the
    HTML is inserted as given (inline CSS and ``data:`` images only: the page's policy blocks
    scripts and fetches).
    """
    page_title = title if title is not None else f"Load test: {_text(result.get('target'))}"
    totals = _mapping(result.get("totals"))
    timeline = [e for e in _list(result.get("timeline")) if isinstance(e, Mapping)]
    sweep = [p for p in _list(result.get("sweep")) if isinstance(p, Mapping)]
    body = [
        _header(result, page_title),
        _section("Summary", _summary_table(totals, _mapping(result.get("actions")))),
        _section("SLOs", _slo_table(result)),
        _plot_section(
            "Latency over time",
            plots.latency_over_time(timeline),
            "No per-second data in this result.",
        ),
        '<div class="grid">',
        _plot_section(
            "Throughput over time",
            plots.throughput_over_time(timeline),
            "No per-second data in this result.",
        ),
        _plot_section(
            "Errors by kind",
            plots.errors_by_kind(_mapping(totals.get("errors_by_kind"))),
            "No errors." if _number(totals.get("errors")) == 0 else "No errors by kind.",
        ),
        *_distribution_sections(_mapping(result.get("histograms"))),
        "</div>",
    ]
    if sweep:
        body.append(
            _plot_section("Concurrency sweep", plots.sweep(sweep), "No sweep points.")
            + _sweep_table(sweep)
        )
    body += [_section(escape(name), content) for name, content in extra_sections]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{escape(CSP)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="tailguard.loadtest.report">\n'
        f"<title>{escape(page_title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n<footer>tailguard load test report</footer>\n</main>\n</body>\n</html>\n"
    )


# -- reading the result: tolerant of missing and mistyped fields --------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _text(value: Any) -> str:
    return _DASH if value is None else str(value)


# -- formatting: every figure is the result's own, only grouped and trimmed ---------------------


def _count(value: Any) -> str:
    n = _number(value)
    return _DASH if n is None else f"{n:,.0f}"


def _ms(value: Any) -> str:
    """Milliseconds as the result gives them (3 decimals at most), trailing zeros trimmed."""
    n = _number(value)
    return _DASH if n is None else f"{n:,.3f}".rstrip("0").rstrip(".")


def _rate(value: Any) -> str:
    n = _number(value)
    return _DASH if n is None else f"{n:,.1f}"


def _percent(part: Any, whole: Any) -> str:
    p, w = _number(part), _number(whole)
    return _DASH if p is None or not w else f"{100.0 * p / w:.3g}%"


def _setting(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _text(value)


def _seconds(value: Any) -> str:
    n = _number(value)
    return _DASH if n is None else f"{n:,.2f} s"


# -- sections -----------------------------------------------------------------------------------


def _section(heading: str, content: str) -> str:
    return f"<section>\n<h2>{heading}</h2>\n{content}\n</section>"


def _plot_section(heading: str, svg: str | None, empty: str) -> str:
    content = f'<div class="plot">{svg}</div>' if svg else f'<p class="note">{escape(empty)}</p>'
    return _section(escape(heading), content)


def _badge(result: Mapping[str, Any]) -> str:
    if not _list(result.get("slos")):
        return '<span class="badge">no SLOs</span>'
    if result.get("passed") is True:
        return '<span class="badge pass">SLOs passed</span>'
    return '<span class="badge fail">SLOs failed</span>'


def _dl(items: Sequence[tuple[str, str]], cls: str) -> str:
    rows = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in items)
    return f'<dl class="{cls}">{rows}</dl>'


def _header(result: Mapping[str, Any], page_title: str) -> str:
    fmt = result.get("format")
    warning = (
        f'<p class="warn">Unknown result format {escape(repr(fmt))}: shown as if {FORMAT}.</p>'
        if fmt != FORMAT
        else ""
    )
    meta = [
        ("Target", _text(result.get("target"))),
        ("Model", _text(result.get("model"))),
        ("Started", _text(result.get("started_at"))),
        ("Duration", _seconds(result.get("duration_s"))),
    ]
    settings = [(str(k), _setting(v)) for k, v in _mapping(result.get("settings")).items()]
    return (
        f'<header class="report">\n<h1>{escape(page_title)} {_badge(result)}</h1>\n'
        f'<p class="sub">tailguard load test report</p>\n{warning}{_dl(meta, "meta")}\n'
        + (_dl(settings, "meta settings") if settings else "")
        + "\n</header>"
    )


def _table(head: Sequence[str], rows: Sequence[str], cls: str = "") -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        f'<div class="scroll"><table class="{cls}">\n<thead><tr>{cells}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody></table></div>"
    )


def _summary_row(name: str, stats: Mapping[str, Any], cls: str) -> str:
    # Without a request there is no latency to show, whatever placeholder the result holds.
    latency = _mapping(stats.get("latency_ms")) if _number(stats.get("requests")) != 0 else {}
    errors = _number(stats.get("errors"))
    cells = [
        _count(stats.get("requests")),
        _count(errors),
        _percent(errors, stats.get("requests")),
        _rate(stats.get("rps")),
        *(_ms(latency.get(key)) for key, _ in _LATENCY_COLUMNS),
        _ms(latency.get("max")),
    ]
    tds = "".join(
        f'<td class="bad">{c}</td>' if i in (1, 2) and errors else f"<td>{c}</td>"
        for i, c in enumerate(cells)
    )
    label = escape(name)
    return f'<tr class="{cls}"><td class="name" title="{label}">{label}</td>{tds}</tr>'


def _summary_table(totals: Mapping[str, Any], actions: Mapping[str, Any]) -> str:
    head = ["", "requests", "errors", "error rate", "req/s"]
    head += [f"{label} (ms)" for _, label in _LATENCY_COLUMNS] + ["max (ms)"]
    rows = [_summary_row("all requests", totals, "total")]
    rows += [_summary_row(str(name), _mapping(stats), "action") for name, stats in actions.items()]
    return _table(head, rows)


def _slo_table(result: Mapping[str, Any]) -> str:
    slos = [s for s in _list(result.get("slos")) if isinstance(s, Mapping)]
    if not slos:
        return '<p class="note">No SLOs were set for this run.</p>'
    rows = []
    for slo in slos:
        unit = str(slo.get("unit") or "")
        unit = unit if unit in ("", "%") else f" {unit}"
        verdict = "pass" if slo.get("passed") is True else "fail"
        threshold = _ms(slo.get("threshold"))
        objective = f"{_text(slo.get('op'))} {threshold}{unit}" if threshold != _DASH else _DASH
        cells = [_text(slo.get("expr")), _text(slo.get("metric")), objective]
        rows.append(
            "<tr>"
            + "".join(f"<td>{escape(c)}</td>" for c in cells)
            + f'<td class="{verdict}">{escape(_ms(slo.get("actual")) + unit)}</td>'
            + f'<td><span class="badge {verdict}">{verdict}</span></td></tr>'
        )
    return _table(["SLO", "metric", "objective", "actual", "result"], rows)


def _distribution_sections(histograms: Mapping[str, Any]) -> list[str]:
    """The percentile spectrum plot and its table, from the encoded HDR histograms."""
    heading = "Latency distribution"
    encoded = histograms.get("total")
    total = plots.decode_histogram(encoded)
    if total is None:
        why = "could not be decoded" if encoded else "is missing"
        why = f"The HDR histogram of this result {why}."
        return [_plot_section(heading, None, why)]
    curves = [("all requests", total)]
    for name, blob in _mapping(histograms.get("actions")).items():
        decoded = plots.decode_histogram(blob)
        if decoded is not None and decoded.get_total_count() > 0:
            curves.append((str(name), decoded))
    svg = plots.latency_distribution(curves)
    plot = _plot_section(heading, svg, "The HDR histogram is empty.")
    if svg is None:
        return [plot]
    levels = [p for p, _ in _HDR_LEVELS]
    values = [h.get_percentile_to_value_dict(levels) for _, h in curves]
    table_rows = [
        (label, [_ms(v.get(p, math.nan) / 1000) for v in values]) for p, label in _HDR_LEVELS
    ]
    table_rows.append(("count", [_count(h.get_total_count()) for _, h in curves]))
    rows = ["<tr>" + "".join(f"<td>{c}</td>" for c in (k, *cs)) + "</tr>" for k, cs in table_rows]
    table = _table(["percentile (ms)", *(name for name, _ in curves)], rows)
    note = '<p class="note">From the HDR histograms in the result (recorded in microseconds).</p>'
    return [plot, _section("Latency percentiles", table + note)]


def _sweep_table(points: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        f"<tr><td>{_count(p.get('concurrency'))}</td><td>{_rate(p.get('throughput'))}</td>"
        f"<td>{_ms(p.get('p99_ms'))}</td></tr>"
        for p in points
    ]
    head = ["concurrency", "throughput (req/s)", "p99 (ms)"]
    return _section("Sweep points", _table(head, rows, "compact"))
