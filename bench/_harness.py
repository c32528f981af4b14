"""Shared timing helpers for the benchmarks in this package.

A benchmark module builds a list of :class:`Case` (a name and a zero-argument async callable),
hands it to :func:`measure`, and prints the result with :func:`render_table` and
:class:`Target` lines under :func:`header`. The method, the same for every benchmark:

* every case is timed as ``for _ in range(n): await run()`` in one coroutine, with
  ``time.perf_counter_ns``; the event loop gets one pass (``await asyncio.sleep(0)``) every
  :data:`CHUNK` calls, as it would between requests in a server, so that timer handles asyncio
  cancels are purged instead of piling up in its heap;
* ``n`` is calibrated per case so that one sample takes about ``sample_seconds``;
* a case with ``tasks > 1`` (a :class:`Case` field; default 1) is timed as ``n`` calls shared
  by that many coroutines gathered together (:func:`time_concurrent`), each looping as above,
  and reports the wall time divided by ``n``: the inverse of its throughput;
* cases are interleaved round-robin over ``reps`` repetitions (the starting case rotates each
  repetition), and we report the median and the minimum ns/call: the machine is shared and
  noisy, so a median over interleaved samples is fairer than one long run per case;
* the garbage collector stays on (allocation-heavy code pays for it in production too), but a
  full collection runs before every sample so that each starts from the same state.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CHUNK",
    "Case",
    "Settings",
    "Stats",
    "Target",
    "calibrate",
    "eprint",
    "header",
    "measure",
    "parse_args",
    "ratio",
    "render_table",
    "time_calls",
    "time_concurrent",
]

Run = Callable[[], Awaitable[object]]

CHUNK = 1000  # calls between two passes of the event loop


@dataclass(frozen=True, slots=True)
class Case:
    """One thing to time: ``run()`` is awaited ``n`` times per sample. ``name`` is the key
    results are filed under; ``label`` (default: the name) is what the table shows. With
    ``tasks > 1`` the ``n`` calls are shared by that many concurrent coroutines."""

    name: str
    group: str
    run: Run
    label: str = ""
    tasks: int = 1

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True, slots=True)
class Stats:
    """The samples of one case, in ns per call (one per repetition)."""

    name: str
    group: str
    calls: int
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)


@dataclass(frozen=True, slots=True)
class Settings:
    """Command-line settings shared by every benchmark."""

    reps: int
    sample_seconds: float
    markdown: bool
    quick: bool


def parse_args(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    reps: int = 15,
    sample_seconds: float = 0.06,
) -> Settings:
    """``--quick`` (3 short repetitions, a smoke test), ``--markdown``, ``--reps``, ``--sample-ms``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--quick", action="store_true", help="3 short repetitions: a smoke test")
    parser.add_argument("--markdown", action="store_true", help="print a GitHub markdown table")
    parser.add_argument("--reps", type=int, default=None, help=f"repetitions (default {reps})")
    parser.add_argument(
        "--sample-ms",
        type=float,
        default=None,
        help=f"target duration of one sample in ms (default {sample_seconds * 1000:g})",
    )
    args = parser.parse_args(argv)
    quick: bool = args.quick
    default_reps, default_seconds = (3, 0.01) if quick else (reps, sample_seconds)
    return Settings(
        reps=max(1, args.reps if args.reps is not None else default_reps),
        sample_seconds=args.sample_ms / 1000 if args.sample_ms is not None else default_seconds,
        markdown=args.markdown,
        quick=quick,
    )


async def time_calls(run: Run, n: int) -> int:
    """Nanoseconds taken by ``n`` sequential ``await run()``, with a loop pass every CHUNK."""
    chunks, rest = divmod(n, CHUNK)
    clock = time.perf_counter_ns
    yield_to_loop = asyncio.sleep
    start = clock()
    for _ in range(chunks):
        for _ in range(CHUNK):
            await run()
        await yield_to_loop(0)
    for _ in range(rest):
        await run()
    return clock() - start


async def time_concurrent(run: Run, n: int, tasks: int) -> int:
    """Nanoseconds taken by ``n`` calls of ``run`` shared by ``tasks`` gathered coroutines (as
    even shares), each awaiting its calls back to back with a loop pass every CHUNK."""
    if tasks <= 1:
        return await time_calls(run, n)
    share, extra = divmod(n, tasks)
    shares = [share + (1 if i < extra else 0) for i in range(tasks)]
    clock = time.perf_counter_ns
    start = clock()
    await asyncio.gather(*(time_calls(run, count) for count in shares if count))
    return clock() - start


async def calibrate(run: Run, seconds: float, tasks: int = 1) -> int:
    """How many calls of ``run`` take about ``seconds`` (this doubles as a warm-up)."""
    target = seconds * 1e9
    n = 1
    while True:
        elapsed = await time_concurrent(run, n, tasks)
        if elapsed >= target / 5:
            return max(1, math.ceil(n * target / elapsed))
        n *= 10 if elapsed < target / 100 else 2


async def measure(
    cases: Sequence[Case],
    *,
    reps: int,
    sample_seconds: float,
    progress: Callable[[str], object] | None = None,
) -> dict[str, Stats]:
    """Time every case ``reps`` times, round-robin; return the stats by case name."""
    calls: dict[str, int] = {}
    for case in cases:
        calls[case.name] = await calibrate(case.run, sample_seconds, case.tasks)
    samples: dict[str, list[float]] = {case.name: [] for case in cases}
    for rep in range(reps):
        shift = rep % len(cases)
        for case in (*cases[shift:], *cases[:shift]):
            n = calls[case.name]
            gc.collect()
            await asyncio.sleep(0)
            samples[case.name].append(await time_concurrent(case.run, n, case.tasks) / n)
        if progress is not None:
            progress(f"repetition {rep + 1}/{reps} done")
    return {
        case.name: Stats(case.name, case.group, calls[case.name], tuple(samples[case.name]))
        for case in cases
    }


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or infinity when the denominator is not positive."""
    return numerator / denominator if denominator > 0 else math.inf


def header(title: str, settings: Settings) -> list[str]:
    """Title, interpreter, platform, date and method settings, one line each."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    impl = platform.python_implementation()
    quick = " [--quick]" if settings.quick else ""
    return [
        title,
        f"Python {platform.python_version()} ({impl}), {platform.platform()}, "
        f"{os.cpu_count()} CPUs, {now}",
        f"median (and min) of {settings.reps} interleaved samples per case, "
        f"~{settings.sample_seconds * 1000:g} ms each{quick}",
    ]


Align = Literal["<", ">"]


def render_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    markdown: bool,
    align: Sequence[Align] | None = None,
) -> str:
    """A plain-text table (columns padded) or a GitHub markdown table."""
    aligns: Sequence[Align] = align if align is not None else ["<"] * len(headers)
    if markdown:
        rule = ["---:" if a == ">" else ":---" for a in aligns]
        lines = [headers, rule, *rows]
        return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
    widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            f"{c:{a}{w}}" for c, a, w in zip(cells, aligns, widths, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


@dataclass(frozen=True, slots=True)
class Target:
    """A goal stated as ``value <op> threshold``, printed as one PASS/FAIL line."""

    description: str
    value: float
    op: Literal["<", "<=", ">=", "=="]
    threshold: float
    note: str = ""

    @property
    def passed(self) -> bool:
        if self.op == "<":
            return self.value < self.threshold
        if self.op == "<=":
            return self.value <= self.threshold
        if self.op == "==":
            return self.value == self.threshold
        return self.value >= self.threshold

    def as_dict(self) -> dict[str, object]:
        """The target as data, for a benchmark's returned results."""
        return {
            "description": self.description,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "passed": self.passed,
        }

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        note = f"  ({self.note})" if self.note else ""
        return (
            f"[{verdict}] {self.description}: {self.value:.2f} {self.op} {self.threshold:g}{note}"
        )


def eprint(message: str) -> None:
    """Progress goes to stderr, so that ``--markdown`` output can be redirected as is."""
    print(message, file=sys.stderr, flush=True)
