"""The report's plots: matplotlib figures rendered to inline ``<svg>`` strings.

Each function takes plain values from the result dict and returns one ``<svg>`` element without
the XML prolog, or ``None`` when there is nothing to draw. matplotlib is imported inside the
functions (``import tailguard.loadtest`` must not import it) and only through ``Figure`` and the
SVG canvas: no pyplot, so no global figure state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from io import StringIO
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

__all__ = [
    "decode_histogram",
    "errors_by_kind",
    "latency_distribution",
    "latency_over_time",
    "sweep",
    "throughput_over_time",
]

BLUE, TEAL, ORANGE, RED, INK = "#2563eb", "#0d9488", "#ea580c", "#dc2626", "#111827"
_SERIES = (("p50", BLUE), ("p90", TEAL), ("p99", ORANGE), ("max", RED))
_PALETTE = (BLUE, ORANGE, TEAL, "#7c3aed", "#db2777", "#65a30d", "#0891b2", "#a16207")
_WIDE, _NARROW = (11.0, 3.3), (5.4, 3.2)  # inches: one plot across the page, or two side by side

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, drawn in the page's font
    "text.parse_math": False,  # an action named "$x$" is a name, not mathtext
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9ca3af",
    "axes.labelcolor": "#374151",
    "axes.grid": True,
    "axes.axisbelow": True,  # grid lines behind bars and fills
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
    "legend.frameon": False,
    "legend.fontsize": 8.5,
}


def _nan(value: Any) -> float:
    """A finite number as float; anything else (None, text, inf) as NaN, drawn as a gap."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return math.nan


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _has_data(*series: Sequence[float]) -> bool:
    return any(not math.isnan(v) for values in series for v in values)


@contextmanager
def _figure(name: str, size: tuple[float, float]) -> Iterator[Figure]:
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context():  # restores the caller's rcParams afterwards
        matplotlib.rcParams.update(_RC)
        # A fixed salt makes the SVG ids (clip paths, markers) the same from one run to the next.
        matplotlib.rcParams["svg.hashsalt"] = f"tailguard-report-{name}"
        yield Figure(figsize=size, layout="constrained")


def _svg(fig: Figure, name: str) -> str:
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    buf = StringIO()
    FigureCanvasSVG(fig)  # attaches itself to the figure
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    svg = text[text.index("<svg") :]  # drop the XML prolog and the DOCTYPE
    # Every figure numbers its groups alike ("figure_1", "axes_1"): ids and the references to
    # them get the plot's name, so that several SVGs can share one page.
    svg = _ID.sub(rf'\1="{name}-', svg)
    return _REF.sub(rf"\1#{name}-", svg)


_ID = re.compile(r'\b(id)="')
_REF = re.compile(r'(url\(|href=")#')


def _legend(fig: Figure, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """A legend above the axes, where it can hide no data."""
    fig.legend(handles, labels, loc="outside upper left", ncols=len(labels))


def latency_over_time(timeline: Sequence[Mapping[str, Any]]) -> str | None:
    """p50/p90/p99/max (ms) per second of the run."""
    t = [_nan(e.get("t", i)) for i, e in enumerate(timeline)]
    lat = [_mapping(e.get("latency_ms")) for e in timeline]
    series = {key: [_nan(m.get(key)) for m in lat] for key, _ in _SERIES}
    if not _has_data(*series.values()):
        return None
    marker = "o" if len(t) <= 20 else None
    with _figure("latency", _WIDE) as fig:
        ax = fig.add_subplot()
        for key, color in _SERIES:
            style = {"linestyle": "--", "linewidth": 1.0} if key == "max" else {"linewidth": 1.6}
            ax.plot(t, series[key], label=key, color=color, marker=marker, markersize=3, **style)
        ax.set(xlabel="time since start (s)", ylabel="latency (ms)")
        ax.set_ylim(bottom=0)
        _legend(fig, *ax.get_legend_handles_labels())
        return _svg(fig, "latency")


def throughput_over_time(timeline: Sequence[Mapping[str, Any]]) -> str | None:
    """Requests per second, and errors per second on a right-hand axis when there are any."""
    t = [_nan(e.get("t", i)) for i, e in enumerate(timeline)]
    requests = [_nan(e.get("requests")) for e in timeline]
    errors = [_nan(e.get("errors")) for e in timeline]
    if not _has_data(requests):
        return None
    marker = "o" if len(t) <= 20 else None
    from matplotlib.ticker import MaxNLocator

    with _figure("throughput", _NARROW) as fig:
        ax = fig.add_subplot()
        lines = ax.plot(t, requests, color=BLUE, linewidth=1.6, marker=marker, markersize=3)
        ax.fill_between(t, requests, color=BLUE, alpha=0.12, linewidth=0)
        ax.set(xlabel="time since start (s)", ylabel="requests/s")
        ax.set_ylim(bottom=0)
        labels = ["requests/s"]
        if any(v > 0 for v in errors):
            right = ax.twinx()
            right.spines["right"].set_visible(True)
            right.grid(False)
            lines += right.plot(t, errors, color=RED, linewidth=1.2, marker=marker, markersize=3)
            right.yaxis.set_major_locator(MaxNLocator(integer=True))
            right.set_ylabel("errors/s", color=RED)
            right.tick_params(axis="y", colors=RED)
            right.set_ylim(bottom=0)
            labels.append("errors/s")
        _legend(fig, lines, labels)
        return _svg(fig, "throughput")


def errors_by_kind(counts: Mapping[str, Any]) -> str | None:
    """One horizontal bar per error kind, largest first, each labelled with its count."""
    items = [(str(k), _nan(v)) for k, v in counts.items()]
    items = sorted(((k, v) for k, v in items if v > 0), key=lambda kv: (-kv[1], kv[0]))
    if not items:
        return None
    height = max(_NARROW[1], 0.35 * len(items) + 1.0)
    from matplotlib.ticker import MaxNLocator

    with _figure("errors", (_NARROW[0], height)) as fig:
        ax = fig.add_subplot()
        positions = range(len(items))
        bars = ax.barh(positions, [v for _, v in items], color=RED, alpha=0.85, height=0.6)
        ax.set_yticks(positions, labels=[k for k, _ in items])
        ax.invert_yaxis()
        ax.bar_label(bars, labels=[f"{v:,.0f}" for _, v in items], padding=3, fontsize=8.5)
        ax.margins(x=0.15)
        ax.grid(axis="y", visible=False)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("errors")
        return _svg(fig, "errors")


def decode_histogram(encoded: Any) -> Any | None:
    """An ``hdrh`` histogram from its base64 text, or ``None`` when absent or undecodable."""
    if not isinstance(encoded, str | bytes) or not encoded:
        return None
    from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped, unused-ignore]

    try:
        return HdrHistogram.decode(encoded)
    except Exception:  # hdrh raises TypeError, zlib.error and its own errors for bad input
        return None


# Percentile levels evenly spaced on the plot's axis, x = 1 / (1 - p): 0% .. 99.999%.
_NINES = 5
_LEVELS = [100.0 * (1.0 - 10.0 ** (-i / 20)) for i in range(20 * _NINES + 1)]
_TICKS = [10.0**n for n in range(_NINES + 1)]
_TICK_LABELS = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]


def latency_distribution(histograms: Sequence[tuple[str, Any]]) -> str | None:
    """The percentile spectrum (ms) of decoded HDR histograms (values in microseconds)."""
    curves = [(name, h) for name, h in histograms if h.get_total_count() > 0]
    if not curves:
        return None
    x = [1.0 / (1.0 - p / 100.0) for p in _LEVELS]
    with _figure("distribution", _NARROW) as fig:
        ax = fig.add_subplot()
        for i, (name, h) in enumerate(curves):
            at = h.get_percentile_to_value_dict(_LEVELS)
            y = [at.get(p, math.nan) / 1000.0 for p in _LEVELS]
            first = i == 0
            color = INK if first else _PALETTE[(i - 1) % len(_PALETTE)]
            ax.plot(x, y, label=name, color=color, linewidth=1.8 if first else 1.1)
        ax.set_xscale("log")
        ax.set_xticks(_TICKS, labels=_TICK_LABELS)
        ax.minorticks_off()
        ax.set_xlim(1.0, _TICKS[-1])
        ax.set_ylim(bottom=0)
        ax.set(xlabel="percentile", ylabel="latency (ms)")
        if len(curves) > 1:
            _legend(fig, *ax.get_legend_handles_labels())
        return _svg(fig, "distribution")


def sweep(points: Sequence[Mapping[str, Any]]) -> str | None:
    """Throughput (left axis) and p99 (right axis) by concurrency."""
    rows = sorted(
        (
            (_nan(p.get("concurrency")), _nan(p.get("throughput")), _nan(p.get("p99_ms")))
            for p in points
        ),
        key=lambda r: r[0],
    )
    rows = [r for r in rows if not math.isnan(r[0])]
    if not rows or not _has_data([r[1] for r in rows], [r[2] for r in rows]):
        return None
    n = [r[0] for r in rows]
    with _figure("sweep", _WIDE) as fig:
        ax = fig.add_subplot()
        if n[0] > 0 and n[-1] / n[0] >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(n, labels=[f"{v:g}" for v in n])  # the levels run, not a scale's
        ax.minorticks_off()
        lines = ax.plot(n, [r[1] for r in rows], color=BLUE, marker="o", markersize=4)
        ax.set(xlabel="concurrency", ylabel="throughput (requests/s)")
        ax.set_ylim(bottom=0)
        right = ax.twinx()
        right.spines["right"].set_visible(True)
        right.grid(False)
        lines += right.plot(n, [r[2] for r in rows], color=ORANGE, marker="s", markersize=4)
        right.set_ylabel("p99 (ms)", color=ORANGE)
        right.tick_params(axis="y", colors=ORANGE)
        right.set_ylim(bottom=0)
        _legend(fig, lines, ["throughput", "p99"])
        return _svg(fig, "sweep")
