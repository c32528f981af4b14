"""Histograms, counters and up-down gauges for the hot paths, exposed by prometheus_client.

prometheus_client takes a lock for every increment and scans the buckets in Python: a
histogram observation costs about 0.7 us here, a counter increment 0.3 us. These families
keep one plain list per thread instead (no lock: a thread only ever writes its own), find the
bucket with ``bisect`` (C), and add the threads' lists up when scraped, through a
prometheus_client ``Collector`` registered in the same registry. Side by side on a loaded
machine an observation cost 0.47-0.54 us against prometheus_client's 1.8-2.1 us. Exact under
threads; scrapes see each thread's values as of the scrape.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from threading import get_ident
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar
from prometheus_client.utils import floatToGoString

__all__ = ["FastCounter", "FastHistogram", "FastUpDown", "ProbeGauge"]


class _Child:
    """One label set: per-thread lists of ``width`` numbers."""

    __slots__ = ("_shards", "_width")

    def __init__(self, width: int) -> None:
        self._width = width
        self._shards: dict[int, list[Any]] = {}

    def _shard(self) -> list[Any]:
        shard = self._shards[get_ident()] = [0] * self._width
        return shard

    def totals(self) -> list[Any]:
        out = [0] * self._width
        for shard in list(self._shards.values()):
            for i, v in enumerate(shard):
                out[i] += v
        return out


class HistogramChild(_Child):
    """``observe(seconds, exemplar=None)``: shard = bucket counts (+Inf last), then the sum.

    For the hottest paths, ``pending`` is a plain list to ``append`` observations to (one C
    call, safe from any thread); it is counted before every collect, or by :meth:`drain`."""

    __slots__ = ("_bounds", "_lock", "exemplars", "pending")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        super().__init__(len(bounds) + 2)
        self._bounds = bounds
        self.exemplars: dict[int, Exemplar] = {}
        self.pending: list[float] = []  # observations (seconds) not counted yet
        self._lock = threading.Lock()

    def observe(
        self, amount: float, exemplar: dict[str, str] | None = None, at: float | None = None
    ) -> None:
        """Count ``amount`` (seconds); ``exemplar`` labels (a trace id) observed at ``at``
        (epoch seconds; now by default)."""
        shard = self._shards.get(get_ident())
        if shard is None:
            shard = self._shard()
        i = bisect_left(self._bounds, amount)  # first bound >= amount: Prometheus' le
        shard[i] += 1
        shard[-1] += amount
        if exemplar:
            self.exemplars[i] = Exemplar(exemplar, amount, time.time() if at is None else at)

    def observe_many(self, amounts: list[float]) -> None:
        """``observe`` each of ``amounts`` (no exemplars), sorting the list in place: each
        bucket's count is then one bisection, whatever the number of observations."""
        if not amounts:
            return
        shard = self._shards.get(get_ident())
        if shard is None:
            shard = self._shard()
        n = len(amounts)
        if max(amounts) <= self._bounds[0]:  # all in the first bucket (common): no sort
            shard[0] += n
            shard[-1] += sum(amounts)
            return
        amounts.sort()
        below = 0
        for i, bound in enumerate(self._bounds):
            upto = bisect_right(amounts, bound)  # observations <= bound: Prometheus' le
            shard[i] += upto - below
            below = upto
            if upto == n:
                break
        shard[len(self._bounds)] += n - below  # +Inf
        shard[-1] += sum(amounts)

    def drain(self) -> None:
        """Count what ``pending`` holds now (appends may go on meanwhile)."""
        with self._lock:
            pending = self.pending
            n = len(pending)  # appends go on at the end: take what is here
            taken = pending[:n]
            del pending[:n]
        self.observe_many(taken)


class CounterChild(_Child):
    """``inc(amount=1)``."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(1)

    def inc(self, amount: float = 1) -> None:
        shard = self._shards.get(get_ident())
        if shard is None:
            shard = self._shard()
        shard[0] += amount


class UpDownChild(CounterChild):
    """``inc()`` / ``dec()``: a gauge that only moves by steps (in flight, queued)."""

    __slots__ = ()

    def dec(self, amount: float = 1) -> None:
        shard = self._shards.get(get_ident())
        if shard is None:
            shard = self._shard()
        shard[0] -= amount


class _Family(Collector):
    kind = "untyped"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        # Called before every collect: writers that batch their observations flush them here,
        # so a scrape sees everything recorded before it. Held weakly (a bound method).
        self._before_collect: list[weakref.WeakMethod[Callable[[], None]]] = []
        self._hooks_lock = threading.Lock()  # hooks added while a scrape prunes them
        registry.register(self)

    def before_collect(self, flush: Callable[[], None]) -> None:
        """Call ``flush`` (a bound method, held weakly) before each collect."""
        with self._hooks_lock:
            self._before_collect.append(weakref.WeakMethod(flush))

    def _flush(self) -> None:
        if self._before_collect:
            with self._hooks_lock:
                refs = list(self._before_collect)
            dead = False
            for ref in refs:
                flush = ref()
                if flush is None:
                    dead = True
                else:
                    flush()
            if dead:
                with self._hooks_lock:
                    self._before_collect = [r for r in self._before_collect if r() is not None]

    def _new(self) -> Any:
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        """The child for these label values (look it up once and keep it: this is a dict
        lookup, but the caller's own dict of children is cheaper still)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, self._new())
        return child

    def _family(self) -> Metric:
        base = self.name.removesuffix("_total") if self.kind == "counter" else self.name
        if self.kind == "counter":
            return CounterMetricFamily(base, self.documentation, labels=self.labelnames)
        if self.kind == "histogram":
            return HistogramMetricFamily(base, self.documentation, labels=self.labelnames)
        return GaugeMetricFamily(base, self.documentation, labels=self.labelnames)

    def describe(self) -> Iterator[Metric]:
        yield self._family()


class FastHistogram(_Family):
    """A histogram family with ``buckets`` (upper bounds in seconds; +Inf is added)."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        bounds = tuple(sorted(float(b) for b in buckets if b != math.inf))
        if not bounds:
            raise ValueError(f"{name}: at least one finite bucket bound")
        self.bounds = bounds
        super().__init__(name, documentation, labelnames, registry=registry)

    def _new(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def collect(self) -> Iterator[Metric]:
        self._flush()
        family = self._family()
        les = [_le(b) for b in self.bounds] + ["+Inf"]
        for labels, child in list(self._children.items()):
            if child.pending:
                child.drain()
            totals = child.totals()
            buckets: list[Any] = []
            running = 0
            for i, le in enumerate(les):
                running += totals[i]
                ex = child.exemplars.get(i)
                buckets.append((le, running, ex) if ex is not None else (le, running))
            family.add_metric(list(labels), buckets, totals[-1])  # type: ignore[attr-defined]
        yield family


class FastCounter(_Family):
    """A counter family (``name`` ends in ``_total``)."""

    kind = "counter"

    def _new(self) -> CounterChild:
        return CounterChild()

    def collect(self) -> Iterator[Metric]:
        self._flush()
        family = self._family()
        for labels, child in list(self._children.items()):
            family.add_metric(list(labels), child.totals()[0])  # type: ignore[attr-defined]
        yield family


class FastUpDown(FastCounter):
    """A gauge family moved by ``inc()``/``dec()`` only."""

    kind = "gauge"

    def _new(self) -> UpDownChild:
        return UpDownChild()


def _le(bound: float) -> str:
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]  # as prometheus_client writes bounds


class ProbeGauge(_Family):
    """A gauge read from functions at scrape time (summed per label set): for values the
    writer keeps itself, such as a plain counter of requests in flight."""

    kind = "gauge"

    def _new(self) -> list[weakref.WeakMethod[Callable[[], float]]]:
        return []

    def probe(self, read: Callable[[], float], *values: str) -> None:
        """Add ``read`` (a bound method, held weakly) to the label set ``values``."""
        self.labels(*values).append(weakref.WeakMethod(read))

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for labels, reads in list(self._children.items()):
            total = 0.0
            for ref in list(reads):
                read = ref()
                if read is None:
                    with contextlib.suppress(ValueError):  # a concurrent scrape removed it
                        reads.remove(ref)
                else:
                    total += read()
            family.add_metric(list(labels), total)  # type: ignore[attr-defined]
        yield family
