"""Service level objectives as Prometheus alerting rules and a Grafana dashboard.

An ``SLO`` names a service, its objective (the fraction of good requests, ``0.999``) and
optionally a latency threshold (seconds). It generates the multiwindow, multi-burn-rate alerts
of the SRE workbook ("Alerting on SLOs", chapter 5), over the metrics ``GoldenSignals`` records:

- availability SLI: the share of requests answered with a 5xx status;
- latency SLI: the share of requests slower than ``latency_threshold`` seconds.

The error budget is ``1 - objective`` over a 30-day period (``ERROR_BUDGET_PERIOD``). A burn
rate of 1 spends it exactly in 30 days; 14.4 spends 2% of it in one hour. Each alert fires
when the error ratio is above ``burn_rate * (1 - objective)`` over both a long window (the
budget really is burning) and a short one (it still is, so the alert resets soon after a fix):

=========  ============  ============  ========  ======================
burn rate  long window   short window  severity  budget spent when firing
=========  ============  ============  ========  ======================
14.4       1h            5m            page      2%
6          6h            30m           page      5%
1          3d            6h            ticket    10%
=========  ============  ============  ========  ======================
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from types import MappingProxyType
from typing import Any

from tailguard.errors import ConfigurationError
from tailguard.observe import _grafana, _names, _promql

__all__ = [
    "BURN_RATE_ALERTS",
    "ERROR_BUDGET_PERIOD",
    "SLO",
    "WINDOWS",
    "BurnRateAlert",
    "record_name",
]

ERROR_BUDGET_PERIOD = 30 * 86_400  # seconds: the SRE workbook's 30-day budget period

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,62}")
# Labels the rules set themselves: a selector may not override them.
_RESERVED_LABELS = frozenset({"le", "status_class"})
_RECORD = "slo:sli_error:ratio_rate{window}"


@dataclass(frozen=True)
class BurnRateAlert:
    """One multiwindow alert: error ratio above ``burn_rate`` times the budget over both
    windows (seconds)."""

    alert: str  # the alertname
    burn_rate: float
    long_window: int  # seconds
    short_window: int  # seconds
    severity: str

    @property
    def budget_spent(self) -> float:
        """The fraction of the period's error budget spent by the time this alert fires."""
        return self.burn_rate * self.long_window / ERROR_BUDGET_PERIOD


BURN_RATE_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert("SLOErrorBudgetBurn1h", 14.4, 3_600, 300, "page"),
    BurnRateAlert("SLOErrorBudgetBurn6h", 6.0, 6 * 3_600, 30 * 60, "page"),
    BurnRateAlert("SLOErrorBudgetBurn3d", 1.0, 3 * 86_400, 6 * 3_600, "ticket"),
)
# Seconds, shortest first: 5m, 30m, 1h, 6h, 3d.
WINDOWS: tuple[int, ...] = tuple(
    sorted({w for a in BURN_RATE_ALERTS for w in (a.long_window, a.short_window)})
)


def record_name(window: int) -> str:
    """The recording rule holding an SLI's error ratio over ``window`` seconds."""
    return _RECORD.format(window=_promql.duration(window))


@dataclass(frozen=True)
class SLO:
    """A service level objective over the HTTP golden signals.

    ``name``: the ``slo`` label value (letters, digits, ``_ . -``; starts with a letter).
    ``objective``: the target fraction of good requests, in (0, 1): ``0.999`` allows 0.1%
    errors. ``latency_threshold``: seconds; a request slower than this counts against the
    latency SLI. It must be one of ``LATENCY_BUCKETS`` (the SLI reads that bucket), or ``None``
    for an availability SLO only. ``selector``: extra label matchers (``{"job": "shop"}``)
    applied to every query; values may hold any character.

    Objectives below ``1 - 1/14.4`` (about 0.9306) make the 1h page impossible: no error
    ratio can exceed 1.
    """

    name: str
    _: KW_ONLY
    objective: float = 0.999
    latency_threshold: float | None = None
    selector: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConfigurationError(
                "name", self.name, "1-63 letters, digits, '_', '.' or '-', starting with a letter"
            )
        objective = self.objective
        if isinstance(objective, bool) or not isinstance(objective, int | float):
            raise ConfigurationError("objective", objective, "a number between 0 and 1")
        if not 0.0 < objective < 1.0:
            raise ConfigurationError("objective", objective, "0 < objective < 1, e.g. 0.999")
        threshold = self.latency_threshold
        if threshold is not None:
            bucket = _bucket(threshold)
            if bucket is None:
                bounds = ", ".join(f"{b:g}" for b in _names.LATENCY_BUCKETS)
                raise ConfigurationError(
                    "latency_threshold",
                    threshold,
                    f"one of the histogram bucket bounds (seconds): {bounds}",
                )
            object.__setattr__(self, "latency_threshold", bucket)  # the bound itself, exactly
        labels = _promql.selector_labels(self.selector, reserved=_RESERVED_LABELS)
        object.__setattr__(self, "selector", MappingProxyType(labels))

    @property
    def error_budget(self) -> float:
        """``1 - objective``: the fraction of requests allowed to fail over the period."""
        return 1.0 - self.objective

    @property
    def slis(self) -> tuple[str, ...]:
        """The ``sli`` label values: ``availability``, and ``latency`` with a threshold."""
        return ("availability",) if self.latency_threshold is None else ("availability", "latency")

    def error_ratio(self, sli: str, window: str) -> str:
        """PromQL for the SLI's error ratio (0-1) over ``window`` (``5m``, or a Grafana
        variable such as ``$__rate_interval``), straight from the raw metrics."""
        labels = dict(self.selector)
        if sli == "availability":
            errors = _promql.summed_rate(
                _names.HTTP_REQUESTS, {**labels, "status_class": "5xx"}, window
            )
            total = _promql.summed_rate(_names.HTTP_REQUESTS, labels, window)
            return f"{errors}\n/\n{total}"
        if sli == "latency" and self.latency_threshold is not None:
            le = {**labels, "le": _promql.le_value(self.latency_threshold)}
            fast = _promql.summed_rate(f"{_names.HTTP_DURATION}_bucket", le, window)
            total = _promql.summed_rate(f"{_names.HTTP_DURATION}_count", labels, window)
            return f"1 - (\n  {fast}\n  /\n  {total}\n)"
        raise ConfigurationError("sli", sli, f"one of {', '.join(self.slis)}")

    def recording_rules(self) -> dict[str, Any]:
        """A rules file (``{"groups": [...]}``) recording every SLI's error ratio over each
        window as ``slo:sli_error:ratio_rate<window>{slo=..., sli=...}``."""
        rules = [
            {
                "record": record_name(window),
                "expr": self.error_ratio(sli, _promql.duration(window)),
                "labels": {"slo": self.name, "sli": sli},
            }
            for sli in self.slis
            for window in WINDOWS
        ]
        return {"groups": [{"name": f"tailguard-slo-{self.name}-recording", "rules": rules}]}

    def rules(self) -> dict[str, Any]:
        """The whole rules file as data: the recording group, then the alerting group."""
        alerts = [self._alert(alert) for alert in BURN_RATE_ALERTS]
        groups = self.recording_rules()["groups"]
        groups.append({"name": f"tailguard-slo-{self.name}-alerts", "rules": alerts})
        return {"groups": groups}

    def alert_rules(self) -> str:
        """The rules file as YAML, ready for Prometheus ``rule_files`` and ``promtool``."""
        import yaml  # type: ignore[import-untyped]  # the observe extra; no stubs installed

        class Dumper(yaml.SafeDumper):  # type: ignore[misc]
            """SafeDumper writing multi-line expressions as readable ``|`` blocks."""

        def text(dumper: Any, value: str) -> Any:
            style = "|" if "\n" in value else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

        Dumper.add_representer(str, text)
        header = (
            f"# SLO {self.name}: objective {self.objective:.10g}, error budget over "
            f"{ERROR_BUDGET_PERIOD // 86_400} days.\n"
            "# Generated by tailguard (`tailguard slo rules`): change the SLO, not this file.\n"
        )
        body: str = yaml.dump(
            self.rules(), Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100
        )
        return header + body

    def dashboard(self) -> dict[str, Any]:
        """A Grafana dashboard model (JSON-ready): latency p50/p90/p99, traffic, errors,
        saturation (in-flight requests, event-loop lag) and this SLO's error-budget burn."""
        slo = _promql.matchers({"slo": self.name})
        burn = [
            (
                f"{{{{sli}}}} over {_promql.duration(a.long_window)}",
                f"{record_name(a.long_window)}{slo} / {_promql.number(self.error_budget)}",
            )
            for a in BURN_RATE_ALERTS
        ]
        return _grafana.golden_signals(
            title=f"{self.name}: golden signals and SLO",
            uid=_grafana.dashboard_uid(f"tailguard-slo-{self.name}"),
            selector=self.selector,
            error_ratio=self.error_ratio("availability", "$__rate_interval"),
            burn=burn,
            burn_thresholds=sorted(a.burn_rate for a in BURN_RATE_ALERTS),
            budget_days=ERROR_BUDGET_PERIOD // 86_400,
        )

    def dashboard_json(self) -> str:
        """``dashboard()`` as indented JSON, for Grafana's import or provisioning."""
        return json.dumps(self.dashboard(), indent=2) + "\n"

    def _alert(self, alert: BurnRateAlert) -> dict[str, Any]:
        limit = alert.burn_rate * self.error_budget  # the error ratio both windows must exceed
        slo = _promql.matchers({"slo": self.name})
        long, short = _promql.duration(alert.long_window), _promql.duration(alert.short_window)
        expr = (
            f"{record_name(alert.long_window)}{slo} > {_promql.number(limit)}\n"
            f"and\n{record_name(alert.short_window)}{slo} > {_promql.number(limit)}"
        )
        burn, days = f"{alert.burn_rate:g}", ERROR_BUDGET_PERIOD // 86_400
        sli = "{{ $labels.sli }}"  # one rule serves every SLI: the series carry the label
        return {
            "alert": alert.alert,
            "expr": expr,
            "labels": {"severity": alert.severity},
            "annotations": {
                "summary": f"SLO {self.name}: {sli} error budget burning at {burn}x",
                "description": (
                    f"The {sli} error ratio of SLO {self.name} is "
                    f"{{{{ $value | humanizePercentage }}}} over the last {long} and above "
                    f"{limit * 100:.4g}% over the last {short}: {burn} times the "
                    f"{self.error_budget * 100:.4g}% the {self.objective * 100:.10g}% objective "
                    f"allows. At this rate {alert.budget_spent:.0%} of the {days}-day error "
                    f"budget goes in {long}."
                ),
                "burn_rate": burn,
            },
        }


def _bucket(value: object) -> float | None:
    """The bucket bound ``value`` denotes (``0.25`` parsed from text, or computed as
    ``0.1 + 0.15``), or ``None``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return next((b for b in _names.LATENCY_BUCKETS if math.isclose(value, b, rel_tol=1e-9)), None)
