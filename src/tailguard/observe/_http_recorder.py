"""The requests GoldenSignals has seen but not counted yet, and their counting.

The request path appends its latency to the list of its kind of request (see
:class:`HttpRecorder`); counting those into the metric families happens in
:meth:`HttpRecorder.flush`, every ``BATCH`` requests and before every scrape. The recorder is
apart from the middleware so that it outlives it: a middleware dropped with requests pending
has them counted when it is collected (``weakref.finalize``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from tailguard.errors import ConfigurationError
from tailguard.observe._routes import UNMATCHED

__all__ = ["BATCH", "Exclusion", "HttpRecorder", "Kind"]

BATCH = 1024  # requests recorded between two aggregations at most (or a scrape)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})
_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")

# A kind of request: (its route template string, or the id() of its route object; method;
# status, 0 when none was sent). Route objects compare by value and are unhashable, hence ids.
Kind = tuple[Any, str, int]
Sink = tuple[Any, Callable[[float], None], Callable[[float], None] | None]


class Exclusion:
    """The paths GoldenSignals does not record: each of ``paths`` and everything under it,
    relative to the app (a ``root_path`` prefix is taken off first)."""

    def __init__(self, paths: Iterable[str]) -> None:
        if isinstance(paths, str):
            raise ConfigurationError(
                "exclude", paths, "an iterable of paths, such as ('/metrics',)"
            )
        given = list(paths)
        for path in given:
            if not isinstance(path, str) or len(path.rstrip("/")) < 2 or path[0] != "/":
                raise ConfigurationError(
                    "exclude",
                    path,
                    "a path below the root, such as '/metrics' (to record nothing at all, "
                    "leave the middleware out)",
                )
        self.paths = frozenset(p.rstrip("/") for p in given)
        self._under = tuple(p + "/" for p in self.paths)

    def path(self, path: str, root: str | None) -> bool:
        """Whether a request to ``path`` (as the server gave it, ``root`` the root path it
        came in under) is excluded."""
        if root and path.startswith(root):  # behind a proxy prefix: /api/metrics is /metrics
            path = path[len(root) :]
        return path in self.paths or path.startswith(self._under)

    def verdict(self, template: str) -> bool | None:
        """For every request a route template serves: True if all are excluded, False if none
        is, None if it depends on the path (``/{page}`` may be ``/metrics``)."""
        if not template.startswith("/"):
            return None  # not a path template (unmatched, or a label of the user's own)
        if "{" not in template:  # a route matches its template exactly
            return template in self.paths or template.startswith(self._under)
        static = template.split("{", 1)[0]  # what every path it serves starts with
        if static.startswith(self._under):
            return True
        if any(under.startswith(static) for under in self._under):
            return None  # its parameters may spell an excluded path, or not
        return False


class HttpRecorder:
    """Requests not yet counted.

    Each kind of request has a list of the latencies (seconds) of those not counted yet. The
    request path finds it in ``kinds`` with one dict lookup and adds to it with one
    ``append``, both single C calls that no other thread interleaves, so one structure serves
    every thread. ``kinds`` holds only the kinds recorded whatever their path; the others go
    through :meth:`pending` every time. Requests that raised or were traced (rare, or already
    costly) go to ``rare`` whole, with their exception type and exemplar. Nothing the garbage
    collector tracks is made per request and kept.
    """

    def __init__(self, duration: Any, requests: Any, errors: Any, exclusion: Exclusion) -> None:
        self._duration, self._requests, self._errors = duration, requests, errors
        self.exclusion = exclusion
        self.kinds: dict[Kind, list[float]] = {}  # the lookup of the request path
        self._lists: dict[Kind, list[float]] = {}  # every kind's pending latencies
        self._verdicts: dict[Kind, bool | None] = {}  # see Exclusion.verdict
        self._routes: dict[Kind, Any] = {}  # kind -> its route, kept alive (so its id is too)
        # (route, method, status, seconds, (exception type or None, exemplar or None, epoch s))
        self.rare: list[tuple[Any, str, int, float, tuple[Any, Any, float]]] = []
        self._lock = threading.Lock()  # a scrape from another thread, and the loop's own flush
        self._templates: dict[int, tuple[Any, str]] = {}  # id(route) -> (route, template)
        # (template, method, status, exception type) -> where such a request is counted
        self._sinks: dict[tuple[str, str, int, Any], Sink] = {}

    def pending(
        self, key: Kind, route: Any, path: str, scope: MutableMapping[str, Any]
    ) -> list[float]:
        """Where a request of kind ``key`` (``route`` its route object or template, ``path``
        the path it came with) adds its latency: its kind's list, or a list nobody reads if
        its path is excluded. A kind recorded whatever its path joins ``kinds``."""
        verdict = self._verdicts.get(key, ...)
        if verdict is ...:
            verdict = self._verdicts.setdefault(key, self.exclusion.verdict(self.template(route)))
        if verdict or (verdict is None and self.excluded(path, scope)):
            return []  # not recorded
        pending = self.list_of(key, route)
        if verdict is False:
            self.kinds.setdefault(key, pending)
        return pending

    def list_of(self, key: Kind, route: Any) -> list[float]:
        """The pending latencies of kind ``key`` (``route`` its route object or template)."""
        self._routes.setdefault(key, route)
        return self._lists.setdefault(key, [])

    def excluded(self, path: str, scope: MutableMapping[str, Any]) -> bool:
        """Whether the request ``path`` arrived with is excluded; read after the app ran, when
        a mount has moved ``root_path`` (its ``app_root_path`` keeps the one it came with)."""
        return self.exclusion.path(path, scope.get("app_root_path", scope.get("root_path")))

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
        """Count the requests recorded since the last flush into the metric families: per
        kind, its latencies sorted (C) and each bucket's count found by bisection
        (``observe_many``), so the cost per request is a share of one sort."""
        taken: list[tuple[Kind, list[float]]] = []
        with self._lock:
            for key, pending in list(self._lists.items()):
                n = len(pending)  # appends go on at the end meanwhile: take what is here
                if n:
                    taken.append((key, pending[:n]))
                    del pending[:n]
            n = len(self.rare)
            rare = self.rare[:n]
            del self.rare[:n]
        for key, seconds in taken:
            _, method, status = key
            histogram, count, errors = self._sink_of(self._routes[key], method, status, None)
            histogram.observe_many(seconds)
            count(len(seconds))
            if errors is not None:
                errors(len(seconds))
        for route, method, status, elapsed, (kind, ex, at) in rare:
            histogram, count, errors = self._sink_of(route, method, status, kind)
            histogram.observe(elapsed, ex, at)
            count(1)
            if errors is not None:
                errors(1)

    def _sink_of(self, route: Any, method: str, status: int, kind: Any) -> Sink:
        template = self.template(route)
        sink = self._sinks.get((template, method, status, kind))
        return sink if sink is not None else self._sink(template, method, status, kind)

    def _sink(self, route: str, method: str, status: int, kind: type[BaseException] | None) -> Sink:
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
