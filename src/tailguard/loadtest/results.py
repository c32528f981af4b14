"""A load test's result: the dataclasses behind the result JSON
(``docs/design/loadtest-result.md``).

The histograms are the source of truth: every latency figure (totals, each action, each second)
is computed from them, so a merged result (:func:`merge`: segments run on several machines, or
worker processes) recomputes its percentiles from the merged histograms and never averages
percentiles. Counters (requests, errors by kind) add up.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tailguard.loadtest.histogram import Histogram
from tailguard.loadtest.slo import SloOutcome, evaluate

__all__ = ["FORMAT", "Result", "Second", "Stats", "SweepPoint", "merge"]

FORMAT = "tailguard-loadtest/1"


@dataclasses.dataclass(slots=True)
class Stats:
    """Requests of one action (or all of them): counts, errors by kind, latency histogram
    (microseconds). Kinds: ``status_<code>``, ``timeout``, ``connect``, ``read``, ``other``."""

    requests: int = 0
    errors_by_kind: dict[str, int] = dataclasses.field(default_factory=dict)
    histogram: Histogram = dataclasses.field(default_factory=Histogram)

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    @property
    def ok(self) -> int:
        return self.requests - self.errors

    def add(self, other: Stats) -> None:
        self.requests += other.requests
        for kind, count in other.errors_by_kind.items():
            self.errors_by_kind[kind] = self.errors_by_kind.get(kind, 0) + count
        self.histogram.add(other.histogram)

    def to_dict(self, duration_s: float) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "errors_by_kind": dict(sorted(self.errors_by_kind.items())),
            "rps": round(self.requests / duration_s, 3) if duration_s > 0 else 0.0,
            "latency_ms": self.histogram.figures(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], histogram: Histogram) -> Stats:
        kinds = {str(k): int(v) for k, v in dict(data.get("errors_by_kind") or {}).items()}
        return cls(int(data["requests"]), kinds, histogram)


@dataclasses.dataclass(slots=True)
class Second:
    """One whole second of the run (``t`` seconds after the start): requests completed in it,
    how many failed, and their latency histogram (kept packed: a long run holds many)."""

    t: int
    requests: int
    errors: int
    latency_ms: dict[str, float]
    packed: bytes

    @classmethod
    def of(cls, t: int, requests: int, errors: int, histogram: Histogram) -> Second:
        return cls(t, requests, errors, histogram.timeline_figures(), histogram.pack())

    @property
    def histogram(self) -> Histogram:
        return Histogram.unpack(self.packed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "requests": self.requests,
            "errors": self.errors,
            "latency_ms": dict(self.latency_ms),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class SweepPoint:
    """One step of a concurrency sweep: ``throughput`` in requests per second."""

    concurrency: int
    throughput: float
    p99_ms: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Result:
    """What a run measured. ``to_dict()`` is the result JSON; ``from_dict()`` reads it back.

    ``model`` is ``"closed"`` (users) or ``"open"`` (an arrival rate); ``started_at`` is ISO
    8601 UTC; ``duration_s`` is the wall time actually run (seconds); ``settings`` holds the
    run's options as the JSON shows them. ``notes`` are advice for whoever reads the run's
    summary (not part of the JSON).
    """

    target: str
    model: str
    started_at: str
    duration_s: float
    settings: dict[str, Any]
    totals: Stats
    actions: dict[str, Stats]
    timeline: list[Second]
    slos: list[SloOutcome] = dataclasses.field(default_factory=list)
    sweep: list[SweepPoint] | None = None
    notes: list[str] = dataclasses.field(default_factory=list, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        """Every SLO passed (true when there are none)."""
        return all(outcome.passed for outcome in self.slos)

    @property
    def rps(self) -> float:
        """Requests per second over the whole run."""
        return self.totals.requests / self.duration_s if self.duration_s > 0 else 0.0

    def check(self, slos: Iterable[str]) -> Result:
        """Evaluate ``slos`` (expressions) against this result, keeping those already checked
        that are not repeated; returns ``self``."""
        exprs = [outcome.expr for outcome in self.slos] + list(slos)
        self.slos = evaluate(exprs, self)
        return self

    def to_dict(self) -> dict[str, Any]:
        duration = self.duration_s
        return {
            "format": FORMAT,
            "target": self.target,
            "model": self.model,
            "started_at": self.started_at,
            "duration_s": round(duration, 3),
            "settings": dict(self.settings),
            "totals": self.totals.to_dict(duration),
            "actions": {name: stats.to_dict(duration) for name, stats in self.actions.items()},
            "timeline": [second.to_dict() for second in self.timeline],
            "histograms": {
                "total": self.totals.histogram.encode(),
                "actions": {name: s.histogram.encode() for name, s in self.actions.items()},
                "timeline": [second.histogram.encode() for second in self.timeline],
            },
            "slos": [outcome.to_dict() for outcome in self.slos],
            "passed": self.passed,
            "sweep": None if self.sweep is None else [p.to_dict() for p in self.sweep],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """The result a result dict describes; ``ValueError`` names what is missing or wrong."""
        if data.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} result (format={data.get('format')!r})")
        try:
            hists = data["histograms"]
            actions = {
                str(name): Stats.from_dict(stats, Histogram.decode(hists["actions"][name]))
                for name, stats in data["actions"].items()
            }
            encoded_seconds = hists.get("timeline") or [None] * len(data["timeline"])
            timeline = [
                _second_from_dict(entry, encoded)
                for entry, encoded in zip(data["timeline"], encoded_seconds, strict=True)
            ]
            sweep = data.get("sweep")
            return cls(
                target=str(data["target"]),
                model=str(data["model"]),
                started_at=str(data["started_at"]),
                duration_s=float(data["duration_s"]),
                settings=dict(data["settings"]),
                totals=Stats.from_dict(data["totals"], Histogram.decode(hists["total"])),
                actions=actions,
                timeline=timeline,
                slos=[SloOutcome.from_dict(s) for s in data.get("slos") or []],
                sweep=None if sweep is None else [SweepPoint(**point) for point in sweep],
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed {FORMAT} result: {exc!r}") from exc


def _second_from_dict(entry: Mapping[str, Any], encoded: str | None) -> Second:
    if encoded is None:  # a result without per-second histograms: keep its figures as given
        figures = {k: float(v) for k, v in dict(entry.get("latency_ms") or {}).items()}
        return Second(int(entry["t"]), int(entry["requests"]), int(entry["errors"]), figures, b"")
    hist = Histogram.decode(encoded)
    return Second.of(int(entry["t"]), int(entry["requests"]), int(entry["errors"]), hist)


def merge(results: Sequence[Result]) -> Result:
    """One result for runs made side by side (segments, worker processes): counts add up,
    histograms merge, every figure is recomputed from the merged histograms, the timelines
    are aligned by second since each run's start, SLOs are checked again on the whole."""
    if not results:
        raise ValueError("merge() needs at least one result")
    models = {r.model for r in results}
    if len(models) > 1:
        raise ValueError(f"cannot merge results of different models: {sorted(models)}")
    totals = Stats()
    actions: dict[str, Stats] = {}
    seconds: dict[int, tuple[int, int, Histogram]] = {}
    for result in results:
        totals.add(result.totals)
        for name, stats in result.actions.items():
            actions.setdefault(name, Stats()).add(stats)
        for second in result.timeline:
            requests, errors, hist = seconds.get(second.t, (0, 0, Histogram()))
            hist.add(second.histogram)
            seconds[second.t] = (requests + second.requests, errors + second.errors, hist)
    timeline = [Second.of(t, *counts) for t, counts in sorted(seconds.items())]
    merged = Result(
        target=", ".join(dict.fromkeys(r.target for r in results)),
        model=results[0].model,
        started_at=min(r.started_at for r in results),
        duration_s=max(r.duration_s for r in results),
        settings=merge_settings([r.settings for r in results]),
        totals=totals,
        actions=actions,
        timeline=_fill_gaps(timeline),
    )
    return merged.check(outcome.expr for r in results for outcome in r.slos)


def concat(results: Sequence[Result]) -> Result:
    """One result for runs made one after the other (the steps of a sweep): counts add up,
    histograms merge, timelines follow one another, durations add up."""
    merged = merge(results)
    timeline: list[Second] = []
    for result in results:
        offset = len(timeline)
        timeline += [dataclasses.replace(s, t=s.t + offset) for s in _fill_gaps(result.timeline)]
    merged.timeline = timeline
    merged.duration_s = sum(r.duration_s for r in results)
    merged.settings = dict(results[-1].settings, duration_s=merged.duration_s)
    return merged


def merge_settings(settings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The settings of runs made side by side: load and caps add up, times are the longest,
    the segments are joined (``1/1`` when together they make the whole)."""
    out = dict(settings[0])
    for key in ("users", "rate", "max_requests", "workers", "connections"):
        values = [s.get(key) for s in settings]
        numbers = [v for v in values if isinstance(v, int | float)]
        out[key] = sum(numbers) if numbers else None
        if isinstance(out[key], float):
            out[key] = round(out[key], 6)
    for key in ("duration_s", "timeout_s"):
        numbers = [s[key] for s in settings if isinstance(s.get(key), int | float)]
        out[key] = max(numbers) if numbers else None
    out["segment"] = join_segments([str(s.get("segment", "1/1")) for s in settings])
    return out


def join_segments(segments: Sequence[str]) -> str:
    """``1/1`` when ``segments`` are each of ``1/n .. n/n`` exactly once, else them joined."""
    counts = {s.partition("/")[2] for s in segments}
    if len(counts) == 1:
        n = counts.pop()
        if n.isdigit() and sorted(segments) == sorted(f"{i}/{n}" for i in range(1, int(n) + 1)):
            return "1/1"
    return ",".join(segments)


def _fill_gaps(timeline: list[Second]) -> list[Second]:
    by_t = {s.t: s for s in timeline}
    empty = Histogram()
    return [by_t.get(t) or Second.of(t, 0, 0, empty) for t in range(max(by_t, default=-1) + 1)]
