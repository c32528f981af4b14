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
from collections.abc import Callable, Iterable
from typing import Any

from tailguard.errors import ConfigurationError
from tailguard.observe._routes import UNMATCHED
from tailguard.observe._server_span import METHODS

__all__ = ["BATCH", "MAX_KINDS", "Exclusion", "HttpRecorder", "Kind", "canonical"]

BATCH = 1024  # requests recorded between two aggregations at most (or a scrape)
MAX_KINDS = 10_000  # (route, method, status) with a list of their own; others one by one
_CLASSES = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx")

# A kind of request: (its route template string, or the id() of its route object; method;
# status, 0 when none was sent). Route objects compare by value and are unhashable, hence ids.
Kind = tuple[Any, str, int]
Sink = tuple[Any, Callable[[float], None], Callable[[float], None] | None]


def canonical(route: Any, method: str, status: int) -> Kind:
    """The kind of a request: a template string (or None) by value, a route object by id,
    and any method outside the standard ones as ``other``."""
    return (
        route if route is None or route.__class__ is str else id(route),
        method if method in METHODS else "other",
        status,
    )


def _relative(path: str, root: str | None) -> str:
    """``path`` without its ``root`` prefix (behind a proxy: /api/metrics is /metrics), taken
    off at a segment boundary only, as Starlette does (/metrics is not /me + trics)."""
    if root and (path == root or path.startswith(root + "/")):
        return path[len(root) :]
    return path


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
        path = _relative(path, root)
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
    every thread. ``kinds`` holds only the kinds recorded whatever their path, keyed as the
    request path keys them; every other request goes through :meth:`record`. Requests that
    raised or were traced (rare, or already costly) go to ``rare`` whole, with their exception
    type and exemplar. Nothing the garbage collector tracks is made per request and kept.

    Bounded: methods outside the standard ones are one kind (``other``), and past
    ``MAX_KINDS`` kinds a new one is counted through ``rare`` instead of getting a list.
    """

    def __init__(self, duration: Any, requests: Any, errors: Any, exclusion: Exclusion) -> None:
        self._duration, self._requests, self._errors = duration, requests, errors
        self.exclusion = exclusion
        self.kinds: dict[Kind, list[float]] = {}  # the lookup of the request path
        self._lists: dict[Kind, list[float]] = {}  # every kind's pending latencies
        # kind -> (its route, kept alive so that its id is too; its exclusion verdict)
        self._verdicts: dict[Kind, tuple[Any, bool | None]] = {}
        self._routes: dict[Kind, Any] = {}  # kind -> its route, kept alive (so its id is too)
        # (route, method, status, seconds, (exception type or None, exemplar or None, epoch s))
        self.rare: list[tuple[Any, str, int, float, tuple[Any, Any, float]]] = []
        self._lock = threading.Lock()  # a scrape from another thread, and the loop's own flush
        self._templates: dict[int, tuple[Any, str]] = {}  # id(route) -> (route, template)
        # (template, method, status, exception type) -> where such a request is counted
        self._sinks: dict[tuple[str, str, int, Any], Sink] = {}

    def record(self, key: Kind, route: Any, path: str, root: str | None, elapsed: float) -> None:
        """Record a request the request path did not find in ``kinds``: ``key`` as it keyed
        it (the id of ``route``, the raw method, the status), ``path`` and ``root`` (its
        ``root_path``) as the request came."""
        kind = canonical(route, key[1], key[2])
        entry = self._verdicts.get(kind)
        if entry is None or (kind[0] is not route and entry[0] is not route):  # (an id reused)
            if len(self._verdicts) >= MAX_KINDS:
                verdict = None  # not cached: checked on the path
            else:
                entry = (route, self._verdict(route, path, root))
                self._verdicts[kind] = entry
                verdict = entry[1]
        else:
            verdict = entry[1]
        if verdict or (verdict is None and self.excluded(path, root)):
            return  # not recorded
        pending = self.add(kind, route, elapsed)
        if verdict is False and pending is not None and kind == key:
            self.kinds.setdefault(key, pending)  # next time, straight from the request path

    def add(self, kind: Kind, route: Any, elapsed: float) -> list[float] | None:
        """Add ``elapsed`` seconds to ``kind``'s pending latencies (``route`` its route object
        or template); returns the list, or None past ``MAX_KINDS`` (counted one by one)."""
        pending = self._lists.get(kind)
        if pending is None:
            if len(self._lists) >= MAX_KINDS:
                self.rare.append((route, kind[1], kind[2], elapsed, (None, None, 0.0)))
                if len(self.rare) >= BATCH:
                    self.flush()
                return None
            self._routes.setdefault(kind, route)  # before the list: a flush finds it
            pending = self._lists.setdefault(kind, [])
        pending.append(elapsed)
        if len(pending) >= BATCH:  # memory stays bounded between scrapes
            self.flush()
        return pending

    def _verdict(self, route: Any, path: str, root: str | None) -> bool | None:
        """The exclusion verdict of a kind, from its template if ``path`` (its first request)
        is one that template serves; a router whose route templates leave out part of the path
        gets None, and each of its requests has its path checked."""
        template = self.template(route)
        verdict = self.exclusion.verdict(template)
        if verdict is None:
            return None
        relative = _relative(path, root)
        if "{" in template:
            served = relative.startswith(template.split("{", 1)[0])
        else:
            served = relative == template
        return verdict if served else None

    def excluded(self, path: str, root: str | None) -> bool:
        """Whether a request is excluded: ``path`` and ``root`` (its ``root_path``) as they
        were when it entered the middleware."""
        return self.exclusion.path(path, root)

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
        if method not in METHODS:
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
