"""The batched counting behind GoldenSignals equals observing each request one by one."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.routing import Route

from tailguard.observe import GoldenSignals, _names, signals
from tailguard.observe._http_recorder import BATCH
from tailguard.observe._names import LATENCY_BUCKETS


async def _endpoint(request: Any) -> None:  # pragma: no cover - never served
    return None


ROUTES = [Route("/users/{uid}", _endpoint), Route("/items/{iid}", _endpoint), None, "/custom"]
TEMPLATES = ["/users/{uid}", "/items/{iid}", "<unmatched>", "/custom"]
CLASSES = {200: "2xx", 201: "2xx", 404: "4xx", 503: "5xx"}

# A request: (route index, method, status, seconds). Seconds include every bound itself (a
# value equal to a bound belongs to that bucket: Prometheus' le), 0 and values past the last.
seconds_st = st.one_of(
    st.sampled_from([0.0, *LATENCY_BUCKETS, LATENCY_BUCKETS[-1] * 3]),
    st.floats(min_value=0.0, max_value=20.0, allow_nan=False),
)
request_st = st.tuples(
    st.integers(0, len(ROUTES) - 1),
    st.sampled_from(["GET", "POST", "BREW"]),
    st.sampled_from(sorted(CLASSES)),
    seconds_st,
)


class Clock:
    """``signals._perf`` for these tests: each request reads 0.0, then its own seconds."""

    def __init__(self) -> None:
        self.local = threading.local()

    def __call__(self) -> float:
        reads = self.local.reads
        return reads.pop()


async def app_of(scope: Any, receive: Any, send: Any) -> None:
    """Answers with the status the test put in the scope, the route set as routers do."""
    route = scope.pop("test_route")
    if isinstance(route, str):
        scope["path_template"] = route  # as Litestar leaves it
    elif route is not None:
        scope["route"] = route  # as Starlette's router leaves it
    await send({"type": "http.response.start", "status": scope["test_status"], "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _sent(message: Any) -> None:
    return None


def record(app: GoldenSignals, clock: Clock, requests: list[tuple[int, str, int, float]]) -> None:
    """Each request through the middleware's own request path (no event loop: nothing in it
    suspends, so one ``send(None)`` runs a request to its end)."""
    for i, method, status, seconds in requests:
        clock.local.reads = [seconds, 0.0]
        scope = {
            "type": "http",
            "path": "/x",
            "method": method,
            "test_route": ROUTES[i],
            "test_status": status,
        }
        coro = app(scope, None, _sent)
        try:
            coro.send(None)
        except StopIteration:
            continue
        raise AssertionError("the request suspended")  # pragma: no cover


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(signals, "_perf", clock)
    return clock


def expected(requests: list[tuple[int, str, int, float]]) -> CollectorRegistry:
    """prometheus_client, fed the same requests one by one."""
    reg = CollectorRegistry()
    hist = Histogram(
        "h", "h", ["route", "method", "status_class"], buckets=LATENCY_BUCKETS, registry=reg
    )
    count = Counter("c", "c", ["route", "method", "status_class"], registry=reg)
    errors = Counter("e", "e", ["route", "method", "error"], registry=reg)
    for i, method, status, seconds in requests:
        labels = (TEMPLATES[i], "other" if method == "BREW" else method, CLASSES[status])
        hist.labels(*labels).observe(seconds)
        count.labels(*labels).inc()
        if status >= 500:
            errors.labels(labels[0], labels[1], str(status)).inc()
    return reg


def samples(reg: CollectorRegistry, rename: dict[str, str]) -> dict[tuple[Any, ...], float]:
    out: dict[tuple[Any, ...], float] = {}
    for metric in reg.collect():
        for s in metric.samples:
            if s.name.endswith("_created"):
                continue
            name = s.name
            if name == _names.HTTP_IN_FLIGHT:
                continue  # not compared: nothing in flight here
            for ours, theirs in rename.items():
                if name.startswith(ours):
                    name = theirs + name[len(ours) :]
            out[(name, *sorted(s.labels.items()))] = s.value
    return out


def same(got: dict[tuple[Any, ...], float], want: dict[tuple[Any, ...], float]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key[0].endswith("_sum"):
            assert math.isclose(got[key], value, rel_tol=1e-9, abs_tol=1e-12), key
        else:
            assert got[key] == value, key


RENAME = {
    "tailguard_http_request_duration_seconds": "h",
    "tailguard_http_requests": "c",
    "tailguard_http_request_errors": "e",
}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(request_st, max_size=3 * BATCH // 2))
def test_counts_equal_observing_each_request(
    clock: Clock, requests: list[tuple[int, str, int, float]]
) -> None:
    registry = CollectorRegistry()
    app = GoldenSignals(app_of, registry=registry)
    record(app, clock, requests)
    same(samples(registry, RENAME), samples(expected(requests), {}))


def test_four_threads_recording_at_once_lose_nothing(clock: Clock) -> None:
    registry = CollectorRegistry()
    app = GoldenSignals(app_of, registry=registry)
    per_thread = [
        [(t % len(ROUTES), "GET", 200, 0.001 * (k % 50)) for k in range(20_000)] for t in range(4)
    ]
    threads = [threading.Thread(target=record, args=(app, clock, reqs)) for reqs in per_thread]
    stop = threading.Event()

    scraped: list[float] = []

    def scrape() -> None:  # flushes from another thread meanwhile
        while not stop.is_set():
            scraped.append(
                sum(
                    sample.value
                    for metric in registry.collect()
                    for sample in metric.samples
                    if sample.name == "tailguard_http_requests_total"
                )
            )

    scraper = threading.Thread(target=scrape)
    scraper.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    scraper.join()
    assert scraped == sorted(scraped)  # a counter never goes back between scrapes
    everything = [r for reqs in per_thread for r in reqs]
    same(samples(registry, RENAME), samples(expected(everything), {}))
