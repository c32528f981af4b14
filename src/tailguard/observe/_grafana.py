"""The golden-signals Grafana dashboard model (``schemaVersion`` 39), querying the metrics
named in ``_names`` through a ``$datasource`` variable, so one JSON fits any Prometheus."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from tailguard.observe import _names, _promql
from tailguard.observe._names import LOOP_LAG

__all__ = ["SCHEMA_VERSION", "dashboard_uid", "golden_signals"]

SCHEMA_VERSION = 39
QUANTILES = (0.5, 0.9, 0.99)
RATE = "$__rate_interval"  # Grafana's window: at least four scrape intervals

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# Per-request labels: the per-process saturation gauges carry none of them, so a selector's
# ``route`` would match nothing there; those queries keep only the other (target) labels.
_REQUEST_ONLY = frozenset({"route", "method", "status_class"})
_UID_MAX = 40  # Grafana's limit on a dashboard uid


def dashboard_uid(text: str) -> str:
    """``text`` as a Grafana dashboard uid: kept when short enough, else cut and suffixed
    with a digest so two long names still differ."""
    if len(text) <= _UID_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: _UID_MAX - 9]}-{digest}"


def golden_signals(
    *,
    title: str,
    uid: str,
    selector: Mapping[str, str],
    error_ratio: str,
    burn: Sequence[tuple[str, str]],
    burn_thresholds: Sequence[float],
    budget_days: int,
) -> dict[str, Any]:
    """The dashboard: latency quantiles, traffic, errors, saturation, error-budget burn.

    ``error_ratio`` is the PromQL of the 5xx ratio; ``burn`` pairs a legend with the PromQL
    of a burn rate (error ratio / budget), drawn against lines at ``burn_thresholds``.
    """
    labels = dict(selector)
    process = {k: v for k, v in labels.items() if k not in _REQUEST_ONLY}
    bucket = f"{_names.HTTP_DURATION}_bucket{_promql.matchers(labels)}[{RATE}]"
    requests = f"{_names.HTTP_REQUESTS}{_promql.matchers(labels)}[{RATE}]"
    errors = f"{_names.HTTP_ERRORS}{_promql.matchers(labels)}[{RATE}]"
    in_flight = f"{_names.HTTP_IN_FLIGHT}{_promql.matchers(process)}"
    loop_lag = f"{LOOP_LAG}{_promql.matchers(process)}"
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    colors = ("yellow", "orange", "red", "purple")
    steps += [{"color": c, "value": t} for c, t in zip(colors, burn_thresholds, strict=False)]
    panels = [
        _panel(
            "Latency (p50, p90, p99)",
            "s",
            [
                (f"p{q * 100:g}", f"histogram_quantile({q}, sum by (le) (rate({bucket})))")
                for q in QUANTILES
            ],
            description="Request duration quantiles from the histogram buckets, in seconds.",
        ),
        _panel(
            "Traffic (requests/s)",
            "reqps",
            [("{{status_class}}", f"sum by (status_class) (rate({requests}))")],
            description="Requests per second, by status class.",
        ),
        _panel(
            "Errors (5xx ratio)",
            "percentunit",
            [("5xx / all", error_ratio)],
            description="The share of requests answered with a 5xx status.",
        ),
        _panel(
            "Errors by type (errors/s)",
            "reqps",
            [("{{error}}", f"sum by (error) (rate({errors}))")],
            description="Failed requests per second, by exception type or 5xx status code.",
        ),
        _panel(
            "Saturation: in-flight requests",
            "short",
            [("{{instance}}", f"sum by (instance) ({in_flight})")],
            description="Requests being served now, per process.",
        ),
        _panel(
            "Saturation: event-loop lag",
            "s",
            [("{{instance}}", f"max by (instance) ({loop_lag})")],
            description="How late the event loop runs a timer, per process, in seconds.",
        ),
        _panel(
            "Error budget burn rate",
            "suffix:x",
            burn,
            description=(
                "Error ratio divided by the error budget: 1 spends the budget in exactly "
                f"{budget_days} days. The lines are the alert thresholds."
            ),
            width=24,
            thresholds=steps,
        ),
    ]
    x = y = 0
    for number, panel in enumerate(panels, start=1):  # fill a 24-column grid, left to right
        width = panel["gridPos"]["w"]
        if x + width > 24:
            x, y = 0, y + 8
        panel["id"] = number
        panel["gridPos"].update(x=x, y=y)
        x += width
    return {
        "uid": uid,
        "title": title,
        "tags": ["tailguard", "golden-signals", "slo"],
        "timezone": "browser",
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "options": [],
                    "regex": "",
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def _panel(
    title: str,
    unit: str,
    targets: Sequence[tuple[str, str]],
    *,
    description: str,
    width: int = 12,
    thresholds: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "min": 0}
    if thresholds is not None:
        defaults["thresholds"] = {"mode": "absolute", "steps": thresholds}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "id": 0,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _DATASOURCE,
        "gridPos": {"h": 8, "w": width, "x": 0, "y": 0},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": _DATASOURCE,
                "expr": expr,
                "legendFormat": legend,
                "range": True,
            }
            for i, (legend, expr) in enumerate(targets)
        ],
    }
