"""The requests GoldenSignals has seen but not counted yet, and their counting.

The request path only appends to columns (see :class:`HttpRecorder`); counting them into the
metric families happens in :meth:`HttpRecorder.flush`, every ``BATCH`` requests and before
every scrape. The recorder is apart from the middleware so that it outlives it: a middleware
dropped with requests pending has them counted when it is collected (``weakref.finalize``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from threading import get_ident
from typing import Any

from tailguard.observe._routes import UNMATCHED

__all__ = ["BATCH", "HttpRecorder"]

BATCH = 1024  # requests recorded between two aggregations at most (or a scrape)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")


class HttpRecorder:
    """Requests not yet counted, as columns: route, method, status, seconds, and None or
    (exception type, exemplar, its time). Columns of references and numbers, not a tuple per
    request: nothing the garbage collector tracks is made per request and kept, so a batch
    does not push the process into more full collections. One set of columns per thread (an
    ASGI server has one; tests and odd set-ups may have more), so that a request's fields
    always share a row."""

    def __init__(self, duration: Any, requests: Any, errors: Any) -> None:
        self._duration, self._requests, self._errors = duration, requests, errors
        # thread id -> (columns, their appends)
        self.threads: dict[int, tuple[tuple[list[Any], ...], tuple[Any, ...]]] = {}
        self.pending = 0  # requests appended since the last flush, all threads (approximate)
        self._lock = threading.Lock()
        self._templates: dict[int, tuple[Any, str]] = {}  # id(route) -> (route, template)
        # (route, method, status, exception type) -> where such a request is counted
        self._sinks: dict[tuple[str, str, int, Any], tuple[Any, Any, Any]] = {}

    def columns(self) -> tuple[tuple[list[Any], ...], tuple[Any, ...]]:
        """This thread's columns, made on its first request."""
        columns: tuple[list[Any], ...] = ([], [], [], [], [])
        entry = (columns, tuple(column.append for column in columns))
        self.threads[get_ident()] = entry
        return entry

    def template(self, route: Any) -> str:
        if route is None:
            return UNMATCHED
        if isinstance(route, str):
            return route
        # By id(): routes compare by value and are unhashable. The route is kept with its
        # template, so its id cannot be reused while cached.
        cached = self._templates.get(id(route))
        if cached is None or cached[0] is not route:
            path = getattr(route, "path_format", None) or getattr(route, "path", None)
            cached = (route, path if isinstance(path, str) else UNMATCHED)
            if len(self._templates) < 10_000:
                self._templates[id(route)] = cached
        return cached[1]

    def flush(self) -> None:
        """Aggregate the requests recorded since the last flush into the metric families:
        grouped first, so each kind of request costs one lookup and one histogram pass."""
        batches = []
        with self._lock:  # a scrape from another thread, and the loop's own flush
            self.pending = 0
            for columns, _ in list(self.threads.values()):
                # One writer per set of columns: a prefix as long as the shortest column
                # holds whole requests (one being appended right now waits for next time).
                n = min(map(len, columns))
                if n:
                    batches.append([column[:n] for column in columns])
                    for column in columns:
                        del column[:n]
        # (route or its id, method, status, error type) -> [route, seconds, (seconds, exemplar)]
        groups: dict[tuple[Any, str, int, Any], list[Any]] = {}
        for batch in batches:
            # zip without strict: the columns are cut to one length above, and a plain zip
            # reuses its row tuple (a hot loop of up to BATCH rows).
            for route, method, status, elapsed, extra in zip(*batch):  # noqa: B905
                kind, ex, at = (None, None, 0.0) if extra is None else extra
                # Route objects compare by value and are unhashable: grouped by identity.
                rkey = route if route is None or route.__class__ is str else id(route)
                group = groups.get((rkey, method, status, kind))
                if group is None:
                    group = groups[(rkey, method, status, kind)] = [route, [], []]
                if ex is None:
                    group[1].append(elapsed)
                else:
                    group[2].append((elapsed, ex, at))
        sinks = self._sinks
        for (_, method, status, kind), (route, seconds, traced) in groups.items():
            template = self.template(route)
            sink = sinks.get((template, method, status, kind))
            if sink is None:
                sink = self._sink(template, method, status, kind)
            histogram, count, errors = sink
            histogram.observe_many(seconds)
            for elapsed, ex, at in traced:
                histogram.observe(elapsed, ex, at)
            n = len(seconds) + len(traced)
            count(n)
            if errors is not None:
                errors(n)

    def _sink(
        self, route: str, method: str, status: int, kind: type[BaseException] | None
    ) -> tuple[Any, Callable[[float], None], Callable[[float], None] | None]:
        """Where a request of this kind is counted: (its latency histogram, count them, count
        the errors or None); kept for the next ones (at most a few per route and method)."""
        key = (route, method, status, kind)
        if method not in _METHODS:
            method = "other"
        error: str | None = None
        if kind is not None and issubclass(kind, asyncio.CancelledError):
            # The client went away (or the server is stopping): not a failure of the service,
            # and no error budget spent. Recorded as nginx's 499 when nothing was sent yet.
            status = status or 499
        elif kind is not None:
            # Raised before responding: the server answers 500. Raised mid-response: the client
            # got a broken response, whatever status went first: a 5xx for the SLO as well.
            status = 500
            error = kind.__name__
        elif status == 0:  # the app returned without a response: the server answers 500
            status = 500
            error = "no response"
        elif status >= 500:
            error = str(status)
        status_class = _CLASSES[status // 100] if 100 <= status < 600 else "5xx"
        sink = (
            self._duration.labels(route, method, status_class),
            self._requests.labels(route, method, status_class).inc,
            None if error is None else self._errors.labels(route, method, error).inc,
        )
        if len(self._sinks) < 10_000:  # label sets are bounded; raw statuses nearly so
            self._sinks[key] = sink
        return sink
