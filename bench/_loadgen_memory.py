"""Section 4 of ``bench/loadgen.py``: our open model at a constant rate in a process of its own
(``python -m bench._loadgen_child memory``), its resident set size read as each second of the
run closes; where it starts, where it ends, and how fast it grows once warmed up.

Growth is judged after a warm-up (the first tenth of the run, at least 2 s: the allocator's
arenas, the connections' buffers and the interpreter's caches fill then) in bytes per request:
a generator that kept one Python float per request in a list would grow by at least 32 B per
request (an 8 B list slot and a 24 B float object, CPython 64-bit); the goal is an order of
magnitude under that. The child also reports the CPU time the run took.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import sys
from subprocess import SubprocessError
from typing import Any

from bench._harness import Target, render_table
from bench._loadgen_responder import Behaviour
from bench._loadgen_tools import Context, Section, run_child

__all__ = ["LIST_BYTES_PER_REQUEST", "MemoryRun", "memory"]

LIST_BYTES_PER_REQUEST = 32
BYTES_PER_REQUEST_GOAL = LIST_BYTES_PER_REQUEST / 10  # an order of magnitude under a list
CONNECTIONS = 100  # the open model's default cap
MIB = 1024 * 1024


@dataclasses.dataclass
class MemoryRun:
    """``before``: RSS (bytes) once imported, before the load; ``seconds``: (t, requests
    completed in that second, RSS at its close) for each whole second of the run."""

    rate: float
    duration: int
    before: int
    seconds: list[tuple[int, int, int]]
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    wall_s: float
    cpu_s: float

    @property
    def warm(self) -> int:
        """Seconds of warm-up: a tenth of the run, at least 2 (and 2 seconds short of it)."""
        return max(1, min(max(2, round(self.duration / 10)), len(self.seconds) - 2))

    @property
    def steady(self) -> list[tuple[int, int, int]]:
        """The seconds that closed at or after the end of the warm-up."""
        return [s for s in self.seconds if s[0] + 1 >= self.warm]

    @property
    def growth(self) -> int:
        """RSS bytes gained from the end of the warm-up to the end of the run."""
        steady = self.steady
        return steady[-1][2] - steady[0][2] if len(steady) > 1 else 0

    @property
    def steady_requests(self) -> int:
        return sum(s[1] for s in self.steady[1:])

    @property
    def bytes_per_request(self) -> float:
        return self.growth / self.steady_requests if self.steady_requests else math.nan

    @property
    def slope(self) -> float:
        """Least-squares slope of RSS over the steady seconds, KiB per minute."""
        steady = self.steady
        if len(steady) < 3:
            return math.nan
        return (
            statistics.linear_regression([s[0] for s in steady], [s[2] for s in steady]).slope
            * 60
            / 1024
        )

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.update(
            warm=self.warm,
            growth=self.growth,
            bytes_per_request=self.bytes_per_request,
            slope_kib_per_min=self.slope,
        )
        return out


def memory_run(url: str, rate: float, seconds: int, cpus: set[int] | None) -> MemoryRun:
    command = [
        sys.executable,
        "-m",
        "bench._loadgen_child",
        "memory",
        url,
        f"{rate:g}",
        str(seconds),
        str(CONNECTIONS),
    ]
    lines = run_child(command, cpus=cpus, timeout=seconds + 90).splitlines()
    before = next(int(line.split()[1]) for line in lines if line.startswith("START "))
    per_second = [
        tuple(map(int, line.split()[1:4])) for line in lines if line.startswith("SECOND ")
    ]
    totals = json.loads(lines[-1])
    return MemoryRun(
        rate, seconds, before, [(t, n, rss) for t, n, rss in per_second],
        totals["requests"], totals["errors"], totals["p50_ms"], totals["p99_ms"],
        totals["seconds"], totals["cpu_s"],
    )  # fmt: skip


def memory_rows(run: MemoryRun | str, md: bool) -> str:
    if isinstance(run, str):
        return run
    if not run.seconds:
        return "no whole second was recorded"
    by_t = {s[0]: s for s in run.seconds}
    last = run.seconds[-1][0]
    points = [("before the load (imports done)", None, run.before)]
    for label, t in (("first second", 0), ("end of warm-up", run.warm - 1),
                     ("middle", last // 2), ("end", last)):  # fmt: skip
        if t in by_t:
            points.append((label, t + 1, by_t[t][2]))
    peak = max(run.seconds, key=lambda s: s[2])
    points.append(("max", peak[0] + 1, peak[2]))
    rows = [
        [
            label,
            "-" if t is None else str(t),
            f"{rss / MIB:.2f}",
            f"{(rss - run.before) / 1024:+,.0f}",
        ]
        for label, t, rss in points
    ]
    table = render_table(
        ["point", "at s", "RSS MiB", "KiB vs before"], rows, markdown=md, align=["<", ">", ">", ">"]
    )
    rates = [s[1] for s in run.seconds[1:-1]] or [0]
    list_growth = LIST_BYTES_PER_REQUEST * run.steady_requests / MIB
    return table + (
        f"\n\n{run.requests:,} requests ({run.errors} errors), {statistics.median(rates):,} per second "
        f"(median), p50 {run.p50_ms:.3f} ms, p99 {run.p99_ms:.3f} ms. "
        f"After the warm-up: {run.growth / 1024:+,.0f} KiB over {run.steady_requests:,} requests "
        f"({run.bytes_per_request:.3f} B/request); least-squares slope {run.slope:+,.1f} KiB/min. "
        f"One float per request in a list would have grown {list_growth:,.1f} MiB over the same requests. "
        f"The generator used {run.cpu_s:.1f} s of CPU in {run.wall_s:.1f} s "
        f"({run.cpu_s / run.wall_s:.0%} of a core)."
    )


def memory_target(run: MemoryRun | str) -> Target:
    value = run.bytes_per_request if isinstance(run, MemoryRun) else math.nan
    note = (
        f"{run.growth / 1024:+,.0f} KiB over {run.steady_requests:,} requests after a {run.warm} s warm-up; "
        f"slope {run.slope:+,.1f} KiB/min; a list of floats: >= {LIST_BYTES_PER_REQUEST} B/request"
        if isinstance(run, MemoryRun)
        else run
    )
    return Target(
        f"memory, open model at {run.rate if isinstance(run, MemoryRun) else 0:,.0f}/s: RSS growth after warm-up, bytes per request",
        value, "<=", BYTES_PER_REQUEST_GOAL, note,
    )  # fmt: skip


def memory(ctx: Context, rate: float, seconds: int, md: bool) -> Section:
    responder = ctx.responder(Behaviour())
    run: MemoryRun | str
    try:
        responder.start()
        run = memory_run(responder.url, rate, seconds, ctx.client)
    except (RuntimeError, OSError, ValueError, KeyError, StopIteration, SubprocessError) as exc:
        run = f"failed: {exc}"
    finally:
        responder.stop()
    return Section(
        f"4. Memory: our open model at {rate:,.0f} requests/s for {seconds} s, resident set size "
        "each second",
        memory_rows(run, md),
        [memory_target(run)],
        run if isinstance(run, str) else run.as_dict(),
    )
