"""Small PromQL builders for the SLO rules and the dashboard: label matchers with escaped
values, summed rates, and numbers written the way Prometheus reads them back."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from tailguard.errors import ConfigurationError

__all__ = ["duration", "le_value", "matchers", "number", "selector_labels", "summed_rate"]

LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def selector_labels(
    selector: Mapping[str, str], *, reserved: frozenset[str], setting: str = "selector"
) -> dict[str, str]:
    """``selector`` checked: valid label names, none reserved (those the rules set
    themselves) or internal (``__name__`` ...), string values. A plain dict, in order."""
    checked: dict[str, str] = {}
    for name, value in selector.items():
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise ConfigurationError(setting, name, "label names matching [a-zA-Z_][a-zA-Z0-9_]*")
        if name.startswith("__") or name in reserved:
            allowed = "label names not starting with '__'"
            if reserved:
                allowed += f" and none of {', '.join(sorted(reserved))} (the rules set those)"
            raise ConfigurationError(setting, name, allowed)
        if not isinstance(value, str):
            raise ConfigurationError(f"{setting}[{name!r}]", value, "a string label value")
        checked[name] = value
    return checked


def quote(value: str) -> str:
    """``value`` as a double-quoted PromQL string. JSON's escapes (``\\"``, ``\\\\``, ``\\n``,
    ``\\uXXXX`` for control characters) are a subset of the Go escapes PromQL accepts, so any
    label value, whatever it holds, reads back as itself and cannot end the matcher early."""
    return json.dumps(value, ensure_ascii=False)


def matchers(labels: Mapping[str, str]) -> str:
    """``{a="x",b="y"}`` equality matchers, or ``""`` when there are none."""
    if not labels:
        return ""
    return "{" + ",".join(f"{name}={quote(value)}" for name, value in labels.items()) + "}"


def summed_rate(metric: str, labels: Mapping[str, str], window: str) -> str:
    """``sum(rate(metric{labels}[window]))``: per-second, over every matching series."""
    return f"sum(rate({metric}{matchers(labels)}[{window}]))"


def number(value: float) -> str:
    """A float as a short PromQL literal: ``14.4 * (1 - 0.999)`` is ``0.0144``, not
    ``0.014400000000000013`` (10 significant digits are far below any SLO's precision)."""
    return f"{value:.10g}"


def le_value(bound: float) -> str:
    """A bucket bound as the ``le`` label value: as ``prometheus_client`` exposes it (``1.0``,
    ``0.25``), which is also the form Prometheus 3 normalises every ``le`` to on ingestion."""
    if bound == float("inf"):
        return "+Inf"
    return repr(float(bound))


def duration(seconds: int) -> str:
    """Seconds as a Prometheus duration in the largest whole unit: ``3d``, ``6h``, ``5m``."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
