"""tailguard.balance: tail latency per strategy in a simulation, picker cost per pick beside
uhashring, and httpx against aiohttp through the balancer over real HTTP.

Three sections, each a table, then the targets:

1. **Simulation** (deterministic: a discrete-event simulation on a simulated clock, seeded; no
   real sleeps, so the figures are the same on every machine and every run). Four backends,
   each serving ``SLOTS`` requests at a time and queueing the rest FIFO (a semaphore, so
   queueing shows); service times are lognormal (median 10 ms, sigma 0.5, mean ~11.3 ms),
   the fourth backend 10x slower. Capacity is the sum of ``SLOTS / mean service time``;
   requests arrive open-loop (Poisson) at 70 % of it, each from a random client IP, and the
   same arrivals, IPs and service-time draws (common random numbers) are replayed for every
   strategy. Latency is measured from the intended send time (the arrival), queueing
   included, so coordinated omission cannot hide it. Pickers run bare (``pick(now=...)``,
   ``start``, ``finish(latency=...)``), without outlier ejection or retries: the strategy
   alone. ``Weighted`` has equal weights.
2. **Picker cost per pick** (ns): a synchronous loop of ``pick(now=t)`` over 4 endpoints
   (``IPHash`` with ``key=ip`` from 10,000 random IPs), beside uhashring's
   ``HashRing.get_node(ip)`` (ketama, 160 points per node) and a floor (a call to a function
   returning its argument). Interleaved repetitions, median and min. Then the mapping quality
   of the two consistent hashes on 10,000 IPs and 5 nodes: the busiest node's share over the
   mean share, and the fraction of IPs moved when one node is removed (ideal: 1/5).
3. **httpx vs aiohttp over HTTP**: three uvicorn servers (``bench/_http.py``, subprocesses on
   loopback ports, stopped on the way out), ``GET /items/{i}`` from ``CONCURRENCY`` coroutines
   per client for a fixed time per sample: ``httpx.AsyncClient`` with ``BalancedTransport``,
   ``BalancedSession`` (aiohttp), and each client bare (its own pool, the three URLs in turn
   by hand) to show what the balancer costs. Every client spreads over the same three servers
   at the same concurrency. Requests per second, and the client process' CPU time per request.
   The target (``BalancedSession`` at least ``TARGET`` x bare aiohttp's requests/s) is judged
   on ``PAIRS`` pairs of samples, bare and balanced back to back in the same run (which one
   goes first alternates): the median of the per-pair ratios, since the shared machine's load
   moves both samples of a pair alike.
4. **Python per request, in process**: the same two aiohttp cases over ``InstantSession``, a
   stand-in for ``ClientSession`` that answers at once, so only the Python around a request is
   timed (microseconds, with the harness's interleaved samples): what the balancer adds.

Run it with ``make bench`` (every benchmark), or just this one::

    .venv/bin/python -m bench balance --markdown
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import heapq
import itertools
import math
import random
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench._harness import (
    Case,
    Settings,
    Stats,
    Target,
    eprint,
    header,
    measure,
    parse_args,
    render_table,
)
from tailguard.balance import (
    Endpoint,
    IPHash,
    LeastConnections,
    Picker,
    PowerOfTwo,
    RoundRobin,
    Weighted,
)

SEED = 20240611
BACKENDS = 4
SLOTS = 4  # requests a backend serves at once
MEDIAN = 0.010  # seconds
SIGMA = 0.5
SLOW = 10.0  # the fourth backend's factor
LOAD = 0.70
REQUESTS, QUICK_REQUESTS = 20_000, 4_000
CONCURRENCY = 50
HTTP_SECONDS, QUICK_HTTP_SECONDS = 2.0, 0.6  # per httpx sample
PAIRS, PAIR_SECONDS = 12, 1.0  # aiohttp bare / BalancedSession pairs, seconds per sample
TARGET = 0.9  # BalancedSession's requests/s over bare aiohttp's, at least

SLOW_CAPACITY_SHARE = 1 / SLOW / (BACKENDS - 1 + 1 / SLOW)  # of the total capacity

STRATEGIES: dict[str, Callable[[list[Endpoint]], Picker]] = {
    "RoundRobin": RoundRobin,
    "LeastConnections": LeastConnections,
    "Weighted": Weighted,
    "IPHash": IPHash,
    "PowerOfTwo": lambda eps: PowerOfTwo(eps, seed=SEED),
}


# -- 1. the simulation ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimResult:
    strategy: str
    p50: float  # seconds
    p99: float
    p999: float
    slow_share: float  # fraction of requests sent to the slow backend


def workload(n: int) -> tuple[list[float], list[str], list[float], float]:
    """Arrival times (s), client IPs, service-time draws (the median-1 lognormal factor), and
    the arrival rate (requests/s): the same for every strategy."""
    rng = random.Random(SEED)
    mean = MEDIAN * math.exp(SIGMA**2 / 2)
    scales = [1.0] * (BACKENDS - 1) + [SLOW]
    capacity = sum(SLOTS / (mean * s) for s in scales)  # requests/s
    rate = LOAD * capacity
    t, arrivals = 0.0, []
    for _ in range(n):
        t += rng.expovariate(rate)
        arrivals.append(t)
    ips = [".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(n)]
    draws = [rng.lognormvariate(0.0, SIGMA) for _ in range(n)]
    return arrivals, ips, draws, rate


def simulate(strategy: str, n: int) -> SimResult:
    arrivals, ips, draws, _ = workload(n)
    endpoints = [Endpoint(f"b{i}") for i in range(BACKENDS)]
    scale = {ep: MEDIAN * (SLOW if i == BACKENDS - 1 else 1.0) for i, ep in enumerate(endpoints)}
    picker = STRATEGIES[strategy](endpoints)
    busy = dict.fromkeys(endpoints, 0)
    queues: dict[Endpoint, deque[int]] = {ep: deque() for ep in endpoints}
    chosen: list[Endpoint] = [endpoints[0]] * n
    latencies = [0.0] * n
    events: list[tuple[float, int, int]] = []  # (time, seq, request): completions
    seq = itertools.count()

    def serve(ep: Endpoint, i: int, now: float) -> None:
        busy[ep] += 1
        heapq.heappush(events, (now + scale[ep] * draws[i], next(seq), i))

    def complete(now: float, i: int) -> None:
        ep = chosen[i]
        latencies[i] = now - arrivals[i]
        picker.finish(ep, latency=latencies[i], now=now)
        busy[ep] -= 1
        if queues[ep]:
            serve(ep, queues[ep].popleft(), now)

    for i, at in enumerate(arrivals):
        while events and events[0][0] <= at:
            done_at, _, j = heapq.heappop(events)
            complete(done_at, j)
        ep = picker.pick(now=at, key=ips[i])
        picker.start(ep)
        chosen[i] = ep
        if busy[ep] < SLOTS:
            serve(ep, i, at)
        else:
            queues[ep].append(i)
    while events:
        done_at, _, j = heapq.heappop(events)
        complete(done_at, j)
    ordered = sorted(latencies)

    def q(p: float) -> float:
        return ordered[min(n - 1, int(p * n))]

    slow = sum(1 for ep in chosen if ep is endpoints[-1]) / n
    return SimResult(strategy, q(0.50), q(0.99), q(0.999), slow)


# -- 2. picker cost -------------------------------------------------------------------------


def _ips(n: int) -> list[str]:
    rng = random.Random(SEED + 1)
    return [".".join(str(rng.randrange(256)) for _ in range(4)) for _ in range(n)]


def time_sync(fn: Callable[[], object], n: int) -> float:
    """ns per call of ``fn`` over ``n`` calls."""
    clock = time.perf_counter_ns
    start = clock()
    for _ in itertools.repeat(None, n):
        fn()
    return (clock() - start) / n


def picker_cases() -> dict[str, Callable[[], object]]:
    from uhashring import HashRing

    ips = _ips(10_000)
    addresses = [f"http://10.0.0.{i}:8000" for i in range(1, BACKENDS + 1)]
    cases: dict[str, Callable[[], object]] = {}
    floor_keys = itertools.cycle(ips)

    def identity(x: object) -> object:
        return x

    cases["floor: f(key)"] = lambda: identity(next(floor_keys))
    for name, make in STRATEGIES.items():
        picker = make([Endpoint(a) for a in addresses])
        for ep in picker.endpoints:
            ep.observe(0.010, now=0.0)
        if name == "IPHash":
            keys = itertools.cycle(ips)
            cases[name] = lambda p=picker, k=keys: p.pick(now=1.0, key=next(k))  # type: ignore[misc]
        else:
            cases[name] = lambda p=picker: p.pick(now=1.0)  # type: ignore[misc]
    ring = HashRing(nodes=addresses)
    keys = itertools.cycle(ips)
    cases["uhashring get_node"] = lambda: ring.get_node(next(keys))
    return cases


def measure_pickers(settings: Settings) -> dict[str, list[float]]:
    cases = picker_cases()
    calls = {}
    for name, fn in cases.items():
        n = 1000
        while time_sync(fn, n) * n < settings.sample_seconds * 1e9 / 5:
            n *= 4
        calls[name] = n
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for rep in range(settings.reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            samples[name].append(time_sync(cases[name], calls[name]))
    return samples


def mapping_quality() -> dict[str, tuple[float, float]]:
    """(busiest share / mean share, fraction moved when one of 5 nodes goes) per library."""
    from uhashring import HashRing

    ips = _ips(10_000)
    nodes = [f"http://10.0.0.{i}:8000" for i in range(1, 6)]
    ours = IPHash(nodes)
    before = {ip: ours.pick(now=0.0, key=ip).address for ip in ips}
    ours.remove(nodes[2])
    ours_moved = sum(1 for ip in ips if ours.pick(now=0.0, key=ip).address != before[ip])
    ring = HashRing(nodes=nodes)
    ring_before = {ip: ring.get_node(ip) for ip in ips}
    ring.remove_node(nodes[2])
    ring_moved = sum(1 for ip in ips if ring.get_node(ip) != ring_before[ip])

    def peak(mapping: dict[str, str]) -> float:
        counts = [list(mapping.values()).count(n) for n in nodes]
        return max(counts) / (len(ips) / len(nodes))

    return {
        "tailguard IPHash": (peak(before), ours_moved / len(ips)),
        "uhashring HashRing": (peak(ring_before), ring_moved / len(ips)),
    }


# -- 3. httpx vs aiohttp over HTTP ------------------------------------------------------------


@contextlib.contextmanager
def three_servers() -> Iterator[list[Any]]:
    from bench._http import ServerProcess

    servers = [ServerProcess("bare") for _ in range(3)]
    try:
        for s in servers:
            s.start()
        yield servers
    finally:
        for s in servers:
            s.stop()


@dataclass(frozen=True, slots=True)
class Sample:
    """One closed-loop sample: requests per second, and the client process' CPU time per
    request (user + system, microseconds; servers excluded)."""

    rps: float
    cpu_us: float


async def closed_loop(get: Callable[[int], Awaitable[int]], seconds: float) -> Sample:
    """CONCURRENCY coroutines calling ``get`` back to back for ``seconds``."""
    count = 0
    stop_at = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal count
        i = w
        while time.perf_counter() < stop_at:
            status = await get(i)
            if status != 200:
                raise RuntimeError(f"status {status}")
            count += 1
            i += CONCURRENCY

    cpu = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    return Sample(count / elapsed, (time.process_time() - cpu) / max(count, 1) * 1e6)


BALANCED, BARE = "aiohttp + BalancedSession", "aiohttp bare"


async def run_http(settings: Settings) -> dict[str, list[Sample]]:
    """The httpx cases rotated over a few repetitions; then the aiohttp pair (the target) over
    more, shorter ones, each a bare sample and a balanced one back to back (which goes first
    alternates), so that each ratio compares two samples a second apart."""
    import aiohttp
    import httpx

    from tailguard.balance import BalancedSession, BalancedTransport

    seconds = QUICK_HTTP_SECONDS if settings.quick else HTTP_SECONDS
    reps = 1 if settings.quick else max(3, min(settings.reps, 5))
    pairs = 3 if settings.quick else PAIRS
    pair_seconds = QUICK_HTTP_SECONDS if settings.quick else PAIR_SECONDS
    with three_servers() as servers:
        await asyncio.gather(*(s.ready() for s in servers))
        urls = [f"http://127.0.0.1:{s.port}" for s in servers]
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        bal_httpx = httpx.AsyncClient(
            transport=BalancedTransport(
                urls, transport=lambda: httpx.AsyncHTTPTransport(limits=limits)
            )
        )
        bare_httpx = httpx.AsyncClient(limits=limits)
        bal_aiohttp = BalancedSession(urls)
        bare_aiohttp = aiohttp.ClientSession()

        async def g_bal_httpx(i: int) -> int:
            return (await bal_httpx.get(f"http://svc/items/{i}")).status_code

        async def g_bare_httpx(i: int) -> int:
            return (await bare_httpx.get(f"{urls[i % 3]}/items/{i}")).status_code

        async def g_bal_aiohttp(i: int) -> int:
            async with await bal_aiohttp.get(f"/items/{i}") as r:
                await r.read()
                return r.status

        async def g_bare_aiohttp(i: int) -> int:
            async with bare_aiohttp.get(f"{urls[i % 3]}/items/{i}") as r:
                await r.read()
                return r.status

        cases = {
            "httpx + BalancedTransport": g_bal_httpx,
            "httpx bare": g_bare_httpx,
            BALANCED: g_bal_aiohttp,
            BARE: g_bare_aiohttp,
        }
        samples: dict[str, list[Sample]] = {name: [] for name in cases}
        try:
            for fn in cases.values():  # warm-up: connections open, code paths hot
                await closed_loop(fn, 0.2)
            names = ["httpx + BalancedTransport", "httpx bare"]
            for rep in range(reps):
                for name in names if rep % 2 == 0 else names[::-1]:
                    samples[name].append(await closed_loop(cases[name], seconds))
                eprint(f"http: httpx repetition {rep + 1}/{reps} done")
            for pair in range(pairs):
                for name in (BARE, BALANCED) if pair % 2 == 0 else (BALANCED, BARE):
                    samples[name].append(await closed_loop(cases[name], pair_seconds))
            eprint(f"http: {pairs} aiohttp pairs done")
        finally:
            await bal_httpx.aclose()
            await bare_httpx.aclose()
            await bal_aiohttp.close()
            await bare_aiohttp.close()
    return samples


# -- 4. Python per request, in process ---------------------------------------------------------


class _Body:
    """The body of an answer that came with its headers (aiohttp's ``StreamReader`` surface
    that ``BalancedSession`` uses)."""

    __slots__ = ()

    def is_eof(self) -> bool:
        return True

    def exception(self) -> BaseException | None:
        return None

    def on_eof(self, callback: Callable[[], object]) -> None:
        callback()


class _Answer:
    """A 200 whose body is already in memory."""

    status = 200
    content = _Body()

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def __aenter__(self) -> _Answer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class InstantSession:
    """Stands in for ``aiohttp.ClientSession``: ``request`` answers at once, so a loop over it
    times only the Python around the request (what the balancer adds, or nothing)."""

    async def request(self, method: str, url: str, **kwargs: Any) -> _Answer:
        return _Answer()


async def measure_python(settings: Settings) -> dict[str, Stats]:
    """Microseconds per request: ``InstantSession`` bare (three URLs in turn by hand) and
    through ``BalancedSession`` (its defaults: PowerOfTwo, outlier detection, 3 attempts within
    a ``RetryBudget``), interleaved as the harness does."""
    from tailguard.balance import BalancedSession

    urls = ["http://10.0.0.1:8000", "http://10.0.0.2:8000", "http://10.0.0.3:8000"]
    session = InstantSession()
    balanced = BalancedSession(urls, session=session)  # type: ignore[arg-type]
    counter = itertools.count()

    async def bare() -> int:
        i = next(counter)
        async with await session.request("GET", f"{urls[i % 3]}/items/{i}") as r:
            return r.status

    async def through() -> int:
        i = next(counter)
        async with await balanced.get(f"/items/{i}") as r:
            return r.status

    return await measure(
        [Case("bare", "python", bare), Case("balanced", "python", through)],
        reps=settings.reps,
        sample_seconds=settings.sample_seconds,
    )


# -- the report -----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables and the targets; return the results."""
    settings = parse_args(
        argv,
        prog="python -m bench balance",
        description="tailguard.balance: strategies in simulation, picker cost, httpx vs aiohttp.",
    )
    md = settings.markdown
    n = QUICK_REQUESTS if settings.quick else REQUESTS
    sims = {name: simulate(name, n) for name in STRATEGIES}
    eprint("simulation done")
    pick = measure_pickers(settings)
    quality = mapping_quality()
    eprint("picker cost done")
    http = asyncio.run(run_http(settings))
    python = asyncio.run(measure_python(settings))
    eprint("python per request done")

    _, _, _, rate = workload(1)
    lines = header("tailguard.balance: strategies, picker cost, httpx vs aiohttp", settings)
    lines.append(
        f"Simulation: discrete-event on a simulated clock (deterministic, seed {SEED}); "
        f"{n:,} requests, Poisson arrivals at {LOAD:.0%} of capacity ({rate:,.0f} req/s); "
        f"{BACKENDS} backends x {SLOTS} slots, lognormal service (median {MEDIAN * 1000:g} ms, "
        f"sigma {SIGMA}), backend 4 {SLOW:g}x slower; latency from the intended send time"
    )
    pairs = len(http[BARE])
    lines.append(
        f"HTTP: 3 uvicorn servers (one worker each), {CONCURRENCY} concurrent coroutines per "
        f"client; every client spreads over the same 3 servers (bare: the three URLs in turn by "
        f"hand, i % 3; balanced: its picker), each with its own pool (aiohttp: a default "
        f"ClientSession; httpx: {CONCURRENCY} connections); httpx: "
        f"{len(http['httpx bare'])} interleaved samples of "
        f"{QUICK_HTTP_SECONDS if settings.quick else HTTP_SECONDS:g} s; aiohttp: {pairs} pairs "
        f"of {QUICK_HTTP_SECONDS if settings.quick else PAIR_SECONDS:g} s samples (bare and "
        f"balanced back to back, the first alternating); client and servers share the "
        f"machine's cores"
    )
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))

    def section(title: str, body: str) -> None:
        print(f"#### {title}\n" if md else f"{title}\n")
        print(body)
        print()

    rr = sims["RoundRobin"].p99
    section(
        "Simulation: latency per strategy at 70% load, one backend of four 10x slower",
        render_table(
            ["strategy", "p50 ms", "p99 ms", "p99.9 ms", "p99 / RoundRobin", "to slow backend"],
            [
                [
                    s.strategy,
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.p999),
                    f"{s.p99 / rr:.3f}x",
                    f"{s.slow_share:.1%}",
                ]
                for s in sims.values()
            ],
            markdown=md,
            align=["<", ">", ">", ">", ">", ">"],
        ),
    )
    most = SLOW_CAPACITY_SHARE / LOAD  # the share of requests the slow backend can serve
    overloaded = [s.strategy for s in sims.values() if s.slow_share > most]
    if overloaded:
        print(
            f"{', '.join(overloaded)} send the slow backend more requests than it can serve "
            f"(at most {most:.1%} of them at this load), so its queue grows for the whole run: "
            "their p99 grows with the run's length.\n"
        )
    floor = statistics.median(pick["floor: f(key)"])
    section(
        "Picker cost per pick (4 endpoints)",
        render_table(
            ["case", "ns/pick median", "min", "over floor"],
            [
                [
                    name,
                    f"{statistics.median(v):,.0f}",
                    f"{min(v):,.0f}",
                    "-" if name.startswith("floor") else f"{statistics.median(v) - floor:,.0f}",
                ]
                for name, v in pick.items()
            ],
            markdown=md,
            align=["<", ">", ">", ">"],
        ),
    )
    section(
        "Consistent hashing quality: 10,000 IPs over 5 nodes",
        render_table(
            ["library", "busiest node / mean", "moved when 1 of 5 removed (ideal 20%)"],
            [[name, f"{peak:.2f}", f"{moved:.1%}"] for name, (peak, moved) in quality.items()],
            markdown=md,
            align=["<", ">", ">"],
        ),
    )
    rps = {name: statistics.median(x.rps for x in v) for name, v in http.items()}
    section(
        f"httpx vs aiohttp through the balancer ({CONCURRENCY} concurrent, 3 servers)",
        render_table(
            ["client", "requests/s median", "min", "max", "client CPU us/request"],
            [
                [
                    name,
                    f"{rps[name]:,.0f}",
                    f"{min(x.rps for x in v):,.0f}",
                    f"{max(x.rps for x in v):,.0f}",
                    f"{statistics.median(x.cpu_us for x in v):,.1f}",
                ]
                for name, v in http.items()
            ],
            markdown=md,
            align=["<", ">", ">", ">", ">"],
        ),
    )
    # Each pair's two samples ran a second apart: their ratio cancels most of the drift of a
    # shared machine's load, which moves both; the median of the ratios is the figure judged.
    paired = [b.rps / a.rps for a, b in zip(http[BARE], http[BALANCED], strict=True)]
    ratio_rps = statistics.median(paired)
    print(
        f"aiohttp + BalancedSession / aiohttp bare, requests/s, per pair: "
        f"{', '.join(f'{r:.2f}' for r in paired)}; median {ratio_rps:.3f}, ratio of the "
        f"medians {rps[BALANCED] / rps[BARE]:.3f}; client CPU per request "
        f"{statistics.median(x.cpu_us for x in http[BALANCED]):.1f} us against "
        f"{statistics.median(x.cpu_us for x in http[BARE]):.1f} us bare.\n"
    )
    py_bare, py_bal = python["bare"], python["balanced"]
    section(
        "Python per request, in process: a session that answers at once (no I/O)",
        render_table(
            ["case", "us/request median", "min", "added over bare"],
            [
                [
                    "InstantSession bare (three URLs in turn)",
                    f"{py_bare.median / 1000:.2f}",
                    f"{py_bare.best / 1000:.2f}",
                    "-",
                ],
                [
                    "BalancedSession over InstantSession",
                    f"{py_bal.median / 1000:.2f}",
                    f"{py_bal.best / 1000:.2f}",
                    f"{(py_bal.median - py_bare.median) / 1000:.2f}",
                ],
            ],
            markdown=md,
            align=["<", ">", ">", ">"],
        ),
    )
    p2c, lc = sims["PowerOfTwo"].p99, sims["LeastConnections"].p99
    goals = [
        Target(
            "PowerOfTwo p99 / RoundRobin p99 (simulation)",
            p2c / rr,
            "<=",
            0.5,
            f"{ms(p2c)} ms vs {ms(rr)} ms",
        ),
        Target(
            "PowerOfTwo p99 / LeastConnections p99 (simulation)",
            p2c / lc,
            "<=",
            1.0,
            f"{ms(p2c)} ms vs {ms(lc)} ms; deterministic, so no tolerance",
        ),
        Target(
            "aiohttp / httpx requests/s, both through the balancer",
            rps[BALANCED] / rps["httpx + BalancedTransport"],
            ">=",
            1.0,
            "informational: which adapter to use",
        ),
        Target(
            "aiohttp + BalancedSession / aiohttp bare requests/s",
            ratio_rps,
            ">=",
            TARGET,
            f"{ratio_rps:.3f}: median of {pairs} paired samples, same run, {CONCURRENCY} "
            f"concurrent, 3 servers; {rps[BALANCED]:,.0f} vs {rps[BARE]:,.0f} req/s",
        ),
    ]
    if md:
        print("\n".join(f"- {t.line()}" for t in goals))
    else:
        print("Targets:")
        print("\n".join(f"  {t.line()}" for t in goals))
    return {
        "sims": sims,
        "pickers": {k: statistics.median(v) for k, v in pick.items()},
        "quality": quality,
        "http": rps,
        "http_ratio": ratio_rps,
        "python_us": {"bare": py_bare.median / 1000, "balanced": py_bal.median / 1000},
        "targets": [(t.description, t.value, t.passed) for t in goals],
    }


if __name__ == "__main__":
    main()
