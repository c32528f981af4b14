"""Resilience policies on the success path: tailguard against its peers, in ns per call.

What is measured: the cost a policy adds to a call that succeeds at once, here
``async def f(): return 1``. Every case, the bare baseline included, is a zero-argument
``async def run()`` whose body is the one line a user would write (``return await f()``,
``return await policy.call(f)``, ``async with sem: return await f()``, ...), so the wrapper's
own frame is the same everywhere and cancels out of the "added" column (case minus baseline).
All cases run in one process, one event loop and one run, interleaved round-robin, and the
table reports the median (and min) ns/call; see ``bench/_harness.py`` for the method.

Before timing, every case is run once with a counting ``f`` to check that it calls ``f``
exactly once and returns its result.

Run it with ``make bench`` (every benchmark), or just this one::

    .venv/bin/python -m bench resilience              # ~20 s
    .venv/bin/python -m bench resilience --quick      # a smoke test, a few seconds
    .venv/bin/python -m bench resilience --markdown   # a table for docs/BENCHMARKS.md

The targets printed after the table are goals, not assertions: the script exits 0 whatever
they say, and ``main()`` returns the results as a dict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import aiobreaker
import purgatory
import stamina
import tenacity

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
from tailguard.resilience import (
    AdaptiveLimit,
    Bulkhead,
    CircuitBreaker,
    Fallback,
    Hedge,
    Pipeline,
    Retry,
    RetryBudget,
    Timeout,
)

__all__ = ["main"]

Fn = Callable[[], Awaitable[int]]
Run = Callable[[], Awaitable[int]]
Build = Callable[[Fn], Run]

BARE, OURS, PEERS = "bare", "tailguard", "peer"


async def f() -> int:
    """The guarded call: succeeds at once, never suspends."""
    return 1


# -- the cases: each builder takes the function to guard and returns run() ----------------------


def bare(fn: Fn) -> Run:
    async def run() -> int:
        return await fn()

    return run


def policy_call(make: Callable[[], Any]) -> Build:
    """``await policy.call(fn)`` for a fresh ``make()`` policy per build."""

    def build(fn: Fn) -> Run:
        policy = make()

        async def run() -> int:
            return await policy.call(fn)  # type: ignore[no-any-return]

        return run

    return build


def four_policies() -> Pipeline:
    return Pipeline(
        Timeout(1.0),
        Retry(attempts=3, budget=RetryBudget()),
        CircuitBreaker(),
        Bulkhead(max_concurrent=100, max_queue=50),
    )


def guard_decorator(fn: Fn) -> Run:
    guarded = four_policies()(fn)  # what ``@guard`` does to ``async def f``

    async def run() -> int:
        return await guarded()

    return run


def tenacity_retry(fn: Fn) -> Run:
    # On an ``async def``, tenacity's @retry wraps it in tenacity.AsyncRetrying.
    decorated = tenacity.retry(
        stop=tenacity.stop_after_attempt(3), wait=tenacity.wait_exponential_jitter()
    )(fn)

    async def run() -> int:
        return await decorated()

    return run


def stamina_retry(fn: Fn) -> Run:
    decorated = stamina.retry(on=Exception, attempts=3)(fn)

    async def run() -> int:
        return await decorated()

    return run


def aiobreaker_call(fn: Fn) -> Run:
    breaker = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=60))

    async def run() -> int:
        return await breaker.call_async(fn)  # type: ignore[no-any-return]

    return run


def purgatory_decorator(fn: Fn) -> Run:
    # purgatory's documented use: a factory, then ``@circuitbreaker("name")`` on the coroutine
    # function (the decorator looks the breaker up by name on every call).
    circuitbreaker = purgatory.AsyncCircuitBreakerFactory(default_threshold=5, default_ttl=60)
    decorated = circuitbreaker("bench")(fn)

    async def run() -> int:
        return await decorated()  # type: ignore[no-any-return]

    return run


def semaphore(fn: Fn) -> Run:
    sem = asyncio.Semaphore(100)

    async def run() -> int:
        async with sem:
            return await fn()

    return run


def asyncio_timeout(fn: Fn) -> Run:
    async def run() -> int:
        async with asyncio.timeout(1.0):
            return await fn()

    return run


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    key: str
    group: str
    label: str
    build: Build


SPECS: tuple[Spec, ...] = (
    Spec("baseline", BARE, "await f()", bare),
    Spec("timeout", OURS, "Timeout(1.0).call(f)", policy_call(lambda: Timeout(1.0))),
    Spec(
        "retry_budget",
        OURS,
        "Retry(attempts=3, budget=RetryBudget()).call(f)",
        policy_call(lambda: Retry(attempts=3, budget=RetryBudget())),
    ),
    Spec("retry", OURS, "Retry(attempts=3).call(f)", policy_call(lambda: Retry(attempts=3))),
    Spec("breaker", OURS, "CircuitBreaker().call(f)", policy_call(CircuitBreaker)),
    Spec(
        "bulkhead",
        OURS,
        "Bulkhead(max_concurrent=100, max_queue=50).call(f)",
        policy_call(lambda: Bulkhead(max_concurrent=100, max_queue=50)),
    ),
    Spec("fallback", OURS, "Fallback(0).call(f)", policy_call(lambda: Fallback(0))),
    Spec("adaptive", OURS, "AdaptiveLimit().call(f)", policy_call(AdaptiveLimit)),
    Spec("hedge", OURS, "Hedge(delay=1.0).call(f)", policy_call(lambda: Hedge(delay=1.0))),
    Spec(
        "pipeline",
        OURS,
        "Pipeline(Timeout, Retry+budget, CircuitBreaker, Bulkhead).call(f)",
        policy_call(four_policies),
    ),
    Spec("guard", OURS, "@guard (same 4-policy pipeline) on async def", guard_decorator),
    Spec(
        "tenacity",
        PEERS,
        "tenacity @retry(stop_after_attempt(3), wait_exponential_jitter())",
        tenacity_retry,
    ),
    Spec("stamina", PEERS, "stamina @retry(on=Exception, attempts=3)", stamina_retry),
    Spec(
        "aiobreaker",
        PEERS,
        "aiobreaker CircuitBreaker(5, 60 s).call_async(f)",
        aiobreaker_call,
    ),
    Spec(
        "purgatory",
        PEERS,
        'purgatory @AsyncCircuitBreakerFactory(5, 60)("bench")',
        purgatory_decorator,
    ),
    Spec("semaphore", PEERS, "async with asyncio.Semaphore(100)", semaphore),
    Spec("asyncio_timeout", PEERS, "async with asyncio.timeout(1.0)", asyncio_timeout),
)


async def verify(spec: Spec) -> None:
    """Run the case once with a counting ``f``: it must call it once and return its 1."""
    calls = 0

    async def counting() -> int:
        nonlocal calls
        calls += 1
        return 1

    result = await spec.build(counting)()
    if result != 1 or calls != 1:
        raise RuntimeError(
            f"{spec.label}: returned {result!r} after {calls} call(s) of f; expected 1 and 1"
        )


# -- report ---------------------------------------------------------------------------------


def targets(stats: dict[str, Stats]) -> list[Target]:
    """The issue's goals, judged on medians; each note also gives the ratio of the minimums,
    the figure least disturbed by other work on a shared machine."""
    median = {key: s.median for key, s in stats.items()}
    low = {key: s.best for key, s in stats.items()}
    added = {key: m - median["baseline"] for key, m in median.items()}
    added_low = {key: m - low["baseline"] for key, m in low.items()}

    def on_min(a: str, b: str, *, raw: bool = False) -> str:
        values = low if raw else added_low
        return f"; on minimums {ratio(values[a], values[b]):.2f}"

    breaker_vs_aiobreaker = ratio(added["breaker"], added["aiobreaker"])
    return [
        Target(
            "1. pipeline added / asyncio.timeout added",
            ratio(added["pipeline"], added["asyncio_timeout"]),
            "<",
            1.0,
            f"{added['pipeline']:.0f} ns vs {added['asyncio_timeout']:.0f} ns"
            + on_min("pipeline", "asyncio_timeout"),
        ),
        Target(
            "2. tenacity added / pipeline added",
            ratio(added["tenacity"], added["pipeline"]),
            ">=",
            10.0,
            f"{added['tenacity']:.0f} ns vs {added['pipeline']:.0f} ns"
            + on_min("tenacity", "pipeline"),
        ),
        Target(
            "3. tenacity added / Retry(budget) added",
            ratio(added["tenacity"], added["retry_budget"]),
            ">=",
            15.0,
            f"{added['tenacity']:.0f} ns vs {added['retry_budget']:.0f} ns"
            + on_min("tenacity", "retry_budget"),
        ),
        Target(
            "4. CircuitBreaker added / aiobreaker added",
            breaker_vs_aiobreaker,
            "<=",
            1.0,
            f"{added['breaker']:.0f} ns vs {added['aiobreaker']:.0f} ns; "
            f"aiobreaker adds {ratio(1.0, breaker_vs_aiobreaker):.1f}x ours"
            + on_min("breaker", "aiobreaker"),
        ),
        Target(
            "5. Bulkhead ns/call / asyncio.Semaphore ns/call",
            ratio(median["bulkhead"], median["semaphore"]),
            "<=",
            1.2,
            f"{median['bulkhead']:.0f} ns vs {median['semaphore']:.0f} ns"
            + on_min("bulkhead", "semaphore", raw=True),
        ),
    ]


def table(specs: Sequence[Spec], stats: dict[str, Stats], *, markdown: bool) -> str:
    base = stats["baseline"].median
    rows = [
        [
            spec.group,
            f"`{spec.label}`" if markdown else spec.label,
            f"{stats[spec.key].median:,.0f}",
            f"{stats[spec.key].best:,.0f}",
            f"{stats[spec.key].median - base:+,.0f}",
            f"{stats[spec.key].median / base:.2f}x",
        ]
        for spec in specs
    ]
    return render_table(
        ["group", "case", "ns/call", "min", "added ns", "x bare"],
        rows,
        markdown=markdown,
        align=["<", "<", ">", ">", ">", ">"],
    )


def results(settings: Settings, stats: dict[str, Stats], goals: list[Target]) -> dict[str, Any]:
    base = stats["baseline"].median
    labels = {spec.key: spec.label for spec in SPECS}
    return {
        "benchmark": "resilience",
        "python": sys.version,
        "settings": dataclasses.asdict(settings),
        "cases": {
            key: {
                "label": labels[key],
                "group": s.group,
                "calls_per_sample": s.calls,
                "median_ns": s.median,
                "min_ns": s.best,
                "added_ns": s.median - base,
                "x_bare": s.median / base,
            }
            for key, s in stats.items()
        },
        "targets": [t.as_dict() for t in goals],
    }


async def run_benchmark(settings: Settings) -> dict[str, Stats]:
    for spec in SPECS:
        await verify(spec)
    cases = [Case(spec.key, spec.group, spec.build(f), spec.label) for spec in SPECS]
    eprint(f"resilience: timing {len(cases)} cases x {settings.reps} repetitions ...")
    return await measure(
        cases, reps=settings.reps, sample_seconds=settings.sample_seconds, progress=eprint
    )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and the targets; return the results."""
    settings = parse_args(
        argv,
        prog="python -m bench resilience",
        description="Success-path overhead of tailguard.resilience policies and their peers.",
    )
    stats = asyncio.run(run_benchmark(settings))
    goals = targets(stats)
    title = "tailguard.resilience: success-path overhead per call (async def f(): return 1)"
    lines = header(title, settings)
    if settings.markdown:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))
    print(table(SPECS, stats, markdown=settings.markdown))
    print()
    if settings.markdown:
        print("\n".join(f"- {t.line()}" for t in goals))
    else:
        print("Targets:")
        print("\n".join(f"  {t.line()}" for t in goals))
    return results(settings, stats, goals)


if __name__ == "__main__":
    main()
