"""The two loads of ``bench/loadgen.py`` that run as Python programs of their own, each in its
own process (so that each has a core and an event loop to itself, as wrk and Locust do):

``python -m bench._loadgen_child aiohttp URL CONNECTIONS SECONDS``
    the plain aiohttp client loop: one ``ClientSession`` (``TCPConnector(limit=CONNECTIONS)``),
    CONNECTIONS tasks each awaiting ``GET URL`` and reading its body, back to back, on uvloop.
    Every task makes one untimed request first, so the connections are open before the clock
    starts. Prints one JSON line: requests, seconds, errors, p50_ms, p99_ms.

``python -m bench._loadgen_child memory URL RATE SECONDS CONNECTIONS``
    ``tailguard.loadtest.run(URL, rate=RATE, duration=SECONDS, connections=CONNECTIONS,
    max_requests=100_000_000)`` on uvloop (what ``tailguard loadtest URL --rate RATE`` runs),
    printing ``SECOND <t> <requests> <rss_bytes>`` as each second of the run closes (its
    ``on_second`` hook; the resident set size read from ``/proc/self/statm``), then one JSON
    line with the totals and the CPU seconds (user + system) the run took.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """This process' resident set size (Linux), or -1 where ``/proc`` is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return -1


def percentile(ordered: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of an ordered list."""
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def aiohttp_loop(url: str, connections: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def once() -> None:
            async with session.get(url) as response:
                await response.read()

        await asyncio.gather(*(once() for _ in range(connections)))
        start = clock()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal errors
            while clock() < deadline:
                sent = clock()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                latencies.append(clock() - sent)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = clock() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "errors": errors,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


async def memory_run(url: str, rate: float, seconds: float, connections: int) -> dict[str, Any]:
    from tailguard.loadtest import run
    from tailguard.loadtest.results import Second

    def on_second(second: Second) -> None:
        print(f"SECOND {second.t} {second.requests} {rss_bytes()}", flush=True)

    print(f"START {rss_bytes()}", flush=True)
    cpu = time.process_time()
    result = await run(
        url,
        rate=rate,
        duration=seconds,
        max_requests=100_000_000,  # the duration ends the run, not the default cap of 1,000,000
        connections=connections,
        on_second=on_second,
    )
    totals = result.to_dict()["totals"]
    return {
        "requests": totals["requests"],
        "seconds": result.duration_s,
        "errors": totals["errors"],
        "p50_ms": totals["latency_ms"]["p50"],
        "p99_ms": totals["latency_ms"]["p99"],
        "timeline": len(result.timeline),
        "cpu_s": time.process_time() - cpu,
    }


def main(argv: list[str]) -> None:
    try:
        import uvloop
    except ImportError:
        runner: Any = asyncio.run
    else:
        runner = uvloop.run
    mode, url, *rest = argv
    if mode == "aiohttp":
        out = runner(aiohttp_loop(url, int(rest[0]), float(rest[1])))
    elif mode == "memory":
        out = runner(memory_run(url, float(rest[0]), float(rest[1]), int(rest[2])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
