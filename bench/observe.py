"""tailguard.observe: what the golden signals cost, over HTTP and per call, against the peers.

Three sections, each a table, then the targets:

1. **HTTP on loopback, requests/s.** One minimal Starlette app (``GET /items/{item_id}``
   answering a small JSON body) in four variants, each served by its own uvicorn subprocess
   (one worker, httptools, uvloop when installed, access log off) on a free 127.0.0.1 port:
   bare; ``app.add_middleware(GoldenSignals, registry=CollectorRegistry())``;
   prometheus-fastapi-instrumentator (``Instrumentator().instrument(app).expose(app)``, its
   defaults: it works on a plain Starlette app); starlette-exporter
   (``app.add_middleware(PrometheusMiddleware, group_paths=True)``, its default spelled out).
   All three label by route template. The load comes from this process: ``CONNECTIONS``
   keep-alive HTTP/1.1 connections on raw asyncio sockets (uvloop), each sending
   ``GET /items/<id>`` (ids varying) and reading the whole response before the next; a sample
   stops after ``HTTP_SECONDS`` or ``HTTP_REQUESTS`` requests. Samples are interleaved: each
   repetition runs one sample per variant, the starting variant rotating; we report the median
   and the best requests/s. Nothing is pinned to a CPU: client and servers share the machine's
   cores. At the end every instrumented variant's metrics endpoint is scraped: its request
   counter for the route template must equal the requests the client had answered, and no
   series may carry a raw path; otherwise the benchmark raises (it never compares against a
   peer that silently recorded nothing).
2. **``@monitor`` per call**, in process (``bench/_harness.py``'s method): bare
   ``await f()`` against ``@monitor("f", registry=reg)`` and the guide's hand-written
   decorator (``REQUEST_LATENCY.labels(endpoint).observe(...)`` and
   ``REQUEST_COUNT.labels(endpoint, "ok").inc()`` per call), and that decorator with its
   children bound once (a stricter floor); async and sync.
3. **``@profile_performance`` idle** (no call over its threshold, ``sample_rate`` 0): ns per
   call against the bare call, same run as section 2.

Run it with ``make bench`` (every benchmark), or just this one::

    .venv/bin/python -m bench observe              # ~1.5 min
    .venv/bin/python -m bench observe --quick      # a smoke test, ~10 s
    .venv/bin/python -m bench observe --markdown   # tables for docs/BENCHMARKS.md

The targets are goals, not assertions: the script exits 0 whatever they say, and ``main()``
returns the results as a dict.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import inspect
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from bench._harness import (
    Case,
    Settings,
    Stats,
    Target,
    eprint,
    header,
    measure,
    parse_args,
    ratio,
    render_table,
)
from bench._http import (
    ROUTE,
    VARIANTS,
    ServerProcess,
    fetch,
    load,
    running,
    server_loop,
    split_cpus,
)
from tailguard.observe import monitor

__all__ = ["main"]

BARE, OURS, PEERS = "bare", "tailguard", "peer"
CONNECTIONS = 32
HTTP_SECONDS, HTTP_REQUESTS, HTTP_WARMUP = 0.6, 20_000, 1.0
HTTP_REPS = 25  # at least: short samples, many of them, resist the bursts of a shared machine
QUICK_SECONDS, QUICK_REQUESTS, QUICK_WARMUP = 0.2, 3_000, 0.2


# -- section 1: HTTP ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Variant:
    key: str
    group: str
    label: str
    metrics_path: str | None  # its scrape endpoint
    counter: str  # the sample name of its request counter
    route_label: str  # the label carrying the route template


HTTP_VARIANTS: tuple[Variant, ...] = (
    Variant("bare", BARE, "bare Starlette app, no middleware", None, "", ""),
    Variant(
        "goldensignals",
        OURS,
        "GoldenSignals: app.add_middleware(GoldenSignals, registry=CollectorRegistry())",
        "/metrics/",
        "tailguard_http_requests_total",
        "route",
    ),
    Variant(
        "instrumentator",
        PEERS,
        "prometheus-fastapi-instrumentator: Instrumentator().instrument(app).expose(app)",
        "/metrics",
        "http_requests_total",
        "handler",
    ),
    Variant(
        "starlette_exporter",
        PEERS,
        "starlette-exporter: app.add_middleware(PrometheusMiddleware, group_paths=True)",
        "/metrics",
        "starlette_requests_total",
        "path",
    ),
)
assert tuple(v.key for v in HTTP_VARIANTS) == VARIANTS


@dataclasses.dataclass(frozen=True, slots=True)
class HttpPlan:
    seconds: float
    max_requests: int
    warmup: float
    connections: int = CONNECTIONS


@dataclasses.dataclass(slots=True)
class HttpResult:
    stats: dict[str, Stats]  # ns per request, one sample per repetition
    cpu: dict[str, list[float]]  # server CPU us per request, one per sample (Linux only)
    recorded: dict[str, int]  # requests counted by each variant's own metrics
    sent: dict[str, int]  # requests the client had answered 200, per variant
    loop: str
    # Per repetition, the variant's req/s over the bare app's in the same repetition (the
    # two samples seconds apart): the machine's drifts in speed cancel out of each ratio.
    paired: dict[str, list[float]]
    pinned: str  # how client and servers were placed on the CPUs
    reps: int

    def paired_median(self, key: str) -> float:
        return statistics.median(self.paired[key])


def recorded_requests(variant: Variant, text: str) -> int:
    """The variant's request count for ``ROUTE`` in a scrape; raises on a raw-path series."""
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name != variant.counter:
                continue
            route = sample.labels.get(variant.route_label, "")
            if route == ROUTE:
                total += sample.value
            elif route.startswith("/items/"):
                raise RuntimeError(f"{variant.key}: a series labelled by raw path {route!r}")
    return int(total)


async def verify_metrics(variant: Variant, server: ServerProcess) -> int:
    """Scrape the variant's endpoint: its counter must match what it answered."""
    if variant.metrics_path is None:
        return 0
    status, body = await fetch(server.port, variant.metrics_path)
    if status != 200:
        raise RuntimeError(f"{variant.key}: GET {variant.metrics_path} answered {status}")
    recorded = recorded_requests(variant, body.decode())
    if recorded <= 0 or recorded != server.sent:
        raise RuntimeError(
            f"{variant.key}: its metrics count {recorded} requests on {ROUTE}; "
            f"the client had {server.sent} answered: it did not record what it served"
        )
    return recorded


async def run_http(settings: Settings, plan: HttpPlan, reps: int) -> HttpResult:
    variants = {v.key: v for v in HTTP_VARIANTS}
    samples: dict[str, list[float]] = {key: [] for key in variants}
    counts: dict[str, int] = dict.fromkeys(variants, 0)
    cpu: dict[str, list[float]] = {key: [] for key in variants}
    split = split_cpus()
    server_cpus = None
    pinned = "client and servers share the machine's cores, nothing pinned"
    if split is not None:
        client_cpus, server_cpus = split
        os.sched_setaffinity(0, client_cpus)  # restored by run_http_section
        pinned = (
            f"client pinned to CPU {','.join(map(str, sorted(client_cpus)))}, servers to CPU "
            f"{','.join(map(str, sorted(server_cpus)))}"
        )
    with running(tuple(variants), server_cpus) as servers:
        await asyncio.gather(*(s.ready() for s in servers.values()))
        loops = {s.loop for s in servers.values()}

        async def sample(key: str, seconds: float) -> float:
            server = servers[key]
            if not server.alive():
                raise RuntimeError(f"{key}: server exited ({server.proc and server.proc.poll()})")
            gc.collect()
            cpu_before = server.cpu_seconds()
            try:
                got = await load(
                    server.port,
                    connections=plan.connections,
                    seconds=seconds,
                    max_requests=plan.max_requests,
                )
            except (OSError, asyncio.IncompleteReadError) as exc:
                raise RuntimeError(f"{key}: load failed: {exc!r}") from exc
            cpu_after = server.cpu_seconds()
            server.sent += got.sent
            if got.requests <= 0:
                raise RuntimeError(f"{key}: no request answered in a sample")
            counts[key] += got.requests
            if cpu_before is not None and cpu_after is not None:
                cpu[key].append((cpu_after - cpu_before) * 1e6 / got.sent)
            return got.seconds * 1e9 / got.requests

        eprint(f"observe: HTTP: warming up {len(variants)} servers ...")
        for key in variants:
            await sample(key, plan.warmup)
        counts = dict.fromkeys(variants, 0)
        cpu = {key: [] for key in variants}
        keys = list(variants)
        eprint(f"observe: HTTP: {len(keys)} variants x {reps} repetitions ...")
        for rep in range(reps):
            shift = rep % len(keys)
            for key in (*keys[shift:], *keys[:shift]):
                samples[key].append(await sample(key, plan.seconds))
            eprint(f"repetition {rep + 1}/{reps} done")
        recorded = {}
        for key, variant in variants.items():
            recorded[key] = await verify_metrics(variant, servers[key])
        sent = {key: s.sent for key, s in servers.items()}
    stats = {
        key: Stats(key, variants[key].group, counts[key], tuple(values))
        for key, values in samples.items()
    }
    paired = {  # ns per request: bare's over the variant's is the variant's req/s over bare's
        key: [b / v for b, v in zip(samples["bare"], values, strict=True)]
        for key, values in samples.items()
    }
    loop = "/".join(sorted(loops))
    return HttpResult(stats, cpu, recorded, sent, loop, paired, pinned, reps)


def run_http_section(settings: Settings, plan: HttpPlan) -> HttpResult:
    """On a uvloop event loop when installed: the client should cost less than the servers.
    This process' CPU affinity is what it was afterwards."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    reps = settings.reps if settings.quick else max(settings.reps, HTTP_REPS)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(run_http(settings, plan, reps))
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)


# -- sections 2 and 3: per call, in process -------------------------------------------------------

AsyncFn = Callable[[], Awaitable[int]]
SyncFn = Callable[[], int]
Run = Callable[[], Awaitable[int]]


async def f() -> int:
    return 1


def g() -> int:
    return 1


def guide_decorator(registry: CollectorRegistry) -> Callable[[str], Callable[[Any], Any]]:
    """The guide's hand-written decorator: module-level metrics, ``.labels()`` on every call."""
    request_latency = Histogram(
        "request_latency_seconds", "Request latency", ["endpoint"], registry=registry
    )
    request_count = Counter(
        "request_count", "Request count", ["endpoint", "status"], registry=registry
    )

    def track(endpoint: str) -> Callable[[Any], Any]:
        def decorate(fn: Any) -> Any:
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def wrapper(*args: Any, **kwargs: Any) -> Any:
                    start = time.perf_counter()
                    result = await fn(*args, **kwargs)
                    request_latency.labels(endpoint).observe(time.perf_counter() - start)
                    request_count.labels(endpoint, "ok").inc()
                    return result

                return wrapper

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                result = fn(*args, **kwargs)
                request_latency.labels(endpoint).observe(time.perf_counter() - start)
                request_count.labels(endpoint, "ok").inc()
                return result

            return sync_wrapper

        return decorate

    return track


def guide_bound_decorator(registry: CollectorRegistry) -> Callable[[str], Callable[[Any], Any]]:
    """The same decorator with its two children bound once, at decoration: the floor."""
    request_latency = Histogram(
        "bound_request_latency_seconds", "Request latency", ["endpoint"], registry=registry
    )
    request_count = Counter(
        "bound_request_count", "Request count", ["endpoint", "status"], registry=registry
    )

    def track(endpoint: str) -> Callable[[Any], Any]:
        latency = request_latency.labels(endpoint)
        count = request_count.labels(endpoint, "ok")

        def decorate(fn: Any) -> Any:
            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def wrapper(*args: Any, **kwargs: Any) -> Any:
                    start = time.perf_counter()
                    result = await fn(*args, **kwargs)
                    latency.observe(time.perf_counter() - start)
                    count.inc()
                    return result

                return wrapper

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                result = fn(*args, **kwargs)
                latency.observe(time.perf_counter() - start)
                count.inc()
                return result

            return sync_wrapper

        return decorate

    return track


def load_profile_performance() -> Callable[..., Any] | None:
    """``tailguard.observe.profile_performance``, or None while it does not exist."""
    try:
        from tailguard.observe import profile_performance
    except ImportError:
        return None
    return profile_performance


@dataclasses.dataclass(frozen=True, slots=True)
class CallSpec:
    key: str
    group: str
    label: str
    kind: str  # "async" or "sync"
    section: str  # "monitor" or "profile"
    decorate: Callable[[Any, str], Any]  # (function, name) -> decorated function


def call_specs(profile: Callable[..., Any] | None, directory: str) -> list[CallSpec]:
    reg = CollectorRegistry()
    guide = guide_decorator(reg)
    bound = guide_bound_decorator(reg)

    def ours(fn: Any, name: str) -> Any:
        return monitor(name, registry=reg)(fn)

    def guides(fn: Any, name: str) -> Any:
        return guide(name)(fn)

    def bounds(fn: Any, name: str) -> Any:
        return bound(name)(fn)

    specs: list[CallSpec] = []
    for kind, call, name in (("async", "await f()", "f"), ("sync", "g()", "g")):
        specs += [
            CallSpec(f"bare_{kind}", BARE, call, kind, "monitor", lambda fn, _: fn),
            CallSpec(
                f"monitor_{kind}", OURS, f'@monitor("{name}", registry=reg)', kind, "monitor", ours
            ),
            CallSpec(
                f"guide_{kind}",
                PEERS,
                "guide's decorator: HISTOGRAM.labels(endpoint).observe(dt); "
                'COUNTER.labels(endpoint, "ok").inc()',
                kind,
                "monitor",
                guides,
            ),
            CallSpec(
                f"guide_bound_{kind}",
                PEERS,
                "the same, children bound once at decoration",
                kind,
                "monitor",
                bounds,
            ),
        ]
        if profile is not None:
            kwargs: dict[str, Any] = {"threshold": 0.5, "directory": directory}
            with contextlib.suppress(TypeError, ValueError):
                if "registry" in inspect.signature(profile).parameters:
                    kwargs["registry"] = reg

            def profiled(fn: Any, _: str, kwargs: dict[str, Any] = kwargs) -> Any:
                return profile(**kwargs)(fn)

            specs.append(
                CallSpec(
                    f"profile_{kind}",
                    OURS,
                    "@profile_performance(threshold=0.5, directory=tmp), idle",
                    kind,
                    "profile",
                    profiled,
                )
            )
    return specs


def as_run(fn: Any, kind: str) -> Run:
    """The case every row times: the one line a user writes, in an ``async def``."""
    if kind == "async":

        async def run_async() -> int:
            return await fn()  # type: ignore[no-any-return]

        return run_async

    async def run_sync() -> int:
        return fn()  # type: ignore[no-any-return]

    return run_sync


async def verify_call(spec: CallSpec) -> None:
    """Decorate a counting function: one call must call it once and return its 1."""
    calls = 0

    async def counting_async() -> int:
        nonlocal calls
        calls += 1
        return 1

    def counting_sync() -> int:
        nonlocal calls
        calls += 1
        return 1

    fn = counting_async if spec.kind == "async" else counting_sync
    result = await as_run(spec.decorate(fn, f"check_{spec.key}"), spec.kind)()
    if result != 1 or calls != 1:
        raise RuntimeError(
            f"{spec.key}: returned {result!r} after {calls} call(s); expected 1 and 1"
        )


async def run_calls(settings: Settings, specs: Sequence[CallSpec]) -> dict[str, Stats]:
    for spec in specs:
        await verify_call(spec)
    cases = []
    for spec in specs:
        fn = f if spec.kind == "async" else g
        name = "f" if spec.kind == "async" else "g"
        cases.append(Case(spec.key, spec.group, as_run(spec.decorate(fn, name), spec.kind)))
    eprint(f"observe: per call: timing {len(cases)} cases x {settings.reps} repetitions ...")
    return await measure(
        cases, reps=settings.reps, sample_seconds=settings.sample_seconds, progress=None
    )


@contextlib.contextmanager
def profile_directory() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="tgbench-profile-") as directory:
        yield directory


# -- report ---------------------------------------------------------------------------------------


def per_second(ns: float) -> float:
    return 1e9 / ns if ns > 0 else float("inf")


def http_targets(http: HttpResult) -> list[Target]:
    """Requests/s ratios: the median over the repetitions of each repetition's ratio (its two
    samples seconds apart); the ratio of the medians and of the best samples in the note."""
    s = http.stats
    ours = s["goldensignals"]

    def target(n: str, peer: str, name: str, threshold: float) -> Target:
        other = s[peer]
        paired = statistics.median(
            o / p for o, p in zip(http.paired["goldensignals"], http.paired[peer], strict=True)
        )
        return Target(
            f"{n}. HTTP: GoldenSignals req/s / {name} req/s (median of paired ratios)",
            paired,
            ">=",
            threshold,
            f"{per_second(ours.median):,.0f} vs {per_second(other.median):,.0f} req/s; "
            f"ratio of medians {ratio(other.median, ours.median):.2f}; on best samples "
            f"{ratio(other.best, ours.best):.2f}",
        )

    return [
        target("1", "bare", "bare app", 0.9),
        target("2", "instrumentator", "prometheus-fastapi-instrumentator", 1.3),
        target("3", "starlette_exporter", "starlette-exporter", 1.3),
    ]


def call_targets(calls: dict[str, Stats], specs: Sequence[CallSpec]) -> list[Target]:
    goals = []
    for spec in specs:
        if spec.section != "profile":
            continue
        s, base = calls[spec.key], calls[f"bare_{spec.kind}"]
        added = s.median - base.median
        goals.append(
            Target(
                f"4. @profile_performance idle, {spec.kind}: added ns per call",
                added,
                "<",
                1000,
                f"{s.median:,.0f} vs {base.median:,.0f} ns bare, {ratio(s.median, base.median):.2f}x"
                f"; on minimums {s.best - base.best:,.0f} ns added",
            )
        )
    return goals


def monitor_comparisons(calls: dict[str, Stats]) -> list[str]:
    """@monitor's added ns over the guide's: reported, the issue sets no threshold."""
    lines = []
    for kind in ("async", "sync"):
        base = calls[f"bare_{kind}"]
        added = {
            key: calls[f"{key}_{kind}"].median - base.median
            for key in ("monitor", "guide", "guide_bound")
        }
        low = {
            key: calls[f"{key}_{kind}"].best - base.best
            for key in ("monitor", "guide", "guide_bound")
        }
        for peer, words in (("guide", "guide's decorator"), ("guide_bound", "pre-bound guide")):
            lines.append(
                f"[INFO] @monitor added / {words} added, {kind}: "
                f"{ratio(added['monitor'], added[peer]):.2f} (lower is better; "
                f"{added['monitor']:,.0f} ns vs {added[peer]:,.0f} ns; on minimums "
                f"{ratio(low['monitor'], low[peer]):.2f})"
            )
    return lines


def http_table(http: HttpResult, *, markdown: bool) -> str:
    base = http.stats["bare"]
    rows = []
    for v in HTTP_VARIANTS:
        s = http.stats[v.key]
        rows.append(
            [
                v.group,
                f"`{v.label}`" if markdown else v.label,
                f"{per_second(s.median):,.0f}",
                f"{per_second(s.best):,.0f}",
                f"{s.median / 1000:,.1f}",
                f"{(s.median - base.median) / 1000:+,.1f}",
                f"{http.paired_median(v.key):.2f}x",
                f"{ratio(base.median, s.median):.2f}x",
                cpu_cell(http.cpu[v.key]),
                f"{http.recorded[v.key]:,}" if v.metrics_path else "-",
            ]
        )
    return render_table(
        [
            "group",
            "variant",
            "req/s",
            "(best)",
            "us/req",
            "added us",
            "x bare, paired",
            "x bare, medians",
            "server CPU us/req",
            "recorded",
        ],
        rows,
        markdown=markdown,
        align=["<", "<", ">", ">", ">", ">", ">", ">", ">", ">"],
    )


def cpu_cell(values: Sequence[float]) -> str:
    return f"{statistics.median(values):,.1f}" if values else "-"


def calls_table(
    calls: dict[str, Stats], specs: Sequence[CallSpec], section: str, *, markdown: bool
) -> str:
    rows = []
    for spec in specs:
        if spec.section != section and spec.group != BARE:
            continue
        s, base = calls[spec.key], calls[f"bare_{spec.kind}"]
        rows.append(
            [
                spec.kind,
                spec.group,
                f"`{spec.label}`" if markdown else spec.label,
                f"{s.median:,.0f}",
                f"{s.best:,.0f}",
                f"{s.median - base.median:+,.0f}",
                f"{s.median / base.median:.2f}x",
            ]
        )
    return render_table(
        ["kind", "group", "case", "ns/call", "min", "added ns", "x bare"],
        rows,
        markdown=markdown,
        align=["<", "<", "<", ">", ">", ">", ">"],
    )


def versions() -> str:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "?"

    return ", ".join(
        f"{name} {version(name)}"
        for name in (
            "starlette",
            "uvicorn",
            "httptools",
            "uvloop",
            "prometheus-client",
            "prometheus-fastapi-instrumentator",
            "starlette-exporter",
        )
    )


def results(
    settings: Settings,
    plan: HttpPlan,
    http: HttpResult,
    calls: dict[str, Stats],
    specs: Sequence[CallSpec],
    profile_available: bool,
    goals: list[Target],
    info: list[str],
    profiles: int,
) -> dict[str, Any]:
    return {
        "benchmark": "observe",
        "python": sys.version,
        "settings": dataclasses.asdict(settings),
        "http_plan": dataclasses.asdict(plan),
        "http": {
            v.key: {
                "label": v.label,
                "group": v.group,
                "requests": http.stats[v.key].calls,
                "requests_per_second": per_second(http.stats[v.key].median),
                "best_requests_per_second": per_second(http.stats[v.key].best),
                "paired_ratio_to_bare": http.paired_median(v.key),
                "samples_ns_per_request": list(http.stats[v.key].samples),
                "server_cpu_us_per_request": list(http.cpu[v.key]),
                "recorded": http.recorded[v.key],
                "answered": http.sent[v.key],
            }
            for v in HTTP_VARIANTS
        },
        "calls": {
            spec.key: {
                "label": spec.label,
                "group": spec.group,
                "kind": spec.kind,
                "calls_per_sample": calls[spec.key].calls,
                "median_ns": calls[spec.key].median,
                "min_ns": calls[spec.key].best,
                "added_ns": calls[spec.key].median - calls[f"bare_{spec.kind}"].median,
            }
            for spec in specs
        },
        "profile_performance": "available" if profile_available else "not available",
        "profiles_written": profiles,
        "comparisons": info,
        "targets": [t.as_dict() for t in goals],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables and the targets; return the results."""
    settings = parse_args(
        argv,
        prog="python -m bench observe",
        description="tailguard.observe: GoldenSignals over HTTP, @monitor and "
        "@profile_performance per call, against their peers.",
    )
    plan = (
        HttpPlan(QUICK_SECONDS, QUICK_REQUESTS, QUICK_WARMUP)
        if settings.quick
        else HttpPlan(HTTP_SECONDS, HTTP_REQUESTS, HTTP_WARMUP)
    )
    started = time.perf_counter()
    profile = load_profile_performance()
    with profile_directory() as directory:
        specs = call_specs(profile, directory)
        calls = asyncio.run(run_calls(settings, specs))
        profiles = sum(1 for p in Path(directory).rglob("*") if p.is_file())
    http = run_http_section(settings, plan)
    goals = http_targets(http) + call_targets(calls, specs)
    info = monitor_comparisons(calls)

    md = settings.markdown
    title = "tailguard.observe: GoldenSignals requests/s over HTTP; @monitor and @profile_performance per call"
    lines = header(title, settings)
    lines.insert(2, versions())
    lines.append(
        f"HTTP: {http.reps} interleaved samples per variant (starting variant rotating), "
        f"each <= {plan.seconds:g} s or {plan.max_requests:,} requests, after a "
        f"{plan.warmup:g} s warm-up; {plan.connections} keep-alive connections from one "
        f"client process; each server one uvicorn worker (httptools, {http.loop or server_loop()}); "
        f"{http.pinned}"
    )
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))

    def section(heading: str, body: str) -> None:
        print(f"#### {heading}\n" if md else f"{heading}\n")
        print(body)
        print()

    section(
        f"1. HTTP on loopback: Starlette GET {ROUTE} (small JSON), requests/s by variant; "
        "every middleware labels by route template",
        http_table(http, markdown=md)
        + "\n\nx bare, paired: the median over the repetitions of the variant's req/s over the "
        "bare app's in the same repetition (samples seconds apart, so the machine's drifts in "
        "speed cancel out); x bare, medians: the ratio of the two medians.\n"
        "us/req: wall time per request (1 / req/s); server CPU us/req: the server "
        "process' user + system CPU time per request, median over the samples (from /proc, "
        "10 ms ticks), the figure least disturbed by the client sharing the cores.\n"
        "recorded: the request count each variant's own /metrics reports for "
        f"{ROUTE}; checked equal to the requests the client had answered (warm-up included).",
    )
    section(
        "2. @monitor per call, in process: added ns over the bare call, against the guide's "
        "hand-written decorator",
        calls_table(calls, specs, "monitor", markdown=md),
    )
    if profile is None:
        section("3. @profile_performance idle, per call", "profile_performance: not available")
    else:
        section(
            "3. @profile_performance idle (no call over threshold, sample_rate 0), per call, "
            "same run as section 2",
            calls_table(calls, specs, "profile", markdown=md)
            + f"\n\nprofiles written during the run: {profiles}"
            + (" (idle: no call went over the threshold)" if profiles == 0 else " (NOT idle)"),
        )
    if md:
        print("\n".join(f"- {t.line()}" for t in goals))
        print("\n".join(f"- {line}" for line in info))
    else:
        print("Targets:")
        print("\n".join(f"  {t.line()}" for t in goals))
        print("\n".join(f"  {line}" for line in info))
    eprint(f"observe: done in {time.perf_counter() - started:.0f} s")
    return results(settings, plan, http, calls, specs, profile is not None, goals, info, profiles)


if __name__ == "__main__":
    main()
