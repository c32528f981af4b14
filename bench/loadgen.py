"""tailguard.loadtest against Locust, aiohttp and wrk: requests/s, accuracy, coordinated omission,
memory (issue #12).

Every load runs as its own process against a loopback responder in another
(``bench/_loadgen_responder.c``, compiled with gcc into a temp dir; a uvloop twin where gcc is
missing). On Linux with two CPUs or more the load generators run on the first CPU this process
may use and the responders on the others, as ``bench/_http.py`` splits them. Four sections:

1. **Requests/s**, same responder, same connections (64) and seconds for each tool, in
   interleaved rounds (the order rotating each round): ``tailguard loadtest URL --users 64``
   (one process, uvloop), Locust's ``FastHttpUser`` (one process, ``wait_time = constant(0)``,
   headless), a plain aiohttp loop (64 tasks, one session, uvloop) and ``wrk -t1 -c64``
   (``bench/_loadgen_tools.py`` says how each one's figures are read). Medians over the rounds;
   the ratios are medians of the per-round ratios.
2. **Accuracy**: our p50 and p99 against a responder that holds every answer 50 ms, next to
   the truth (50 ms plus the loopback round trip, measured separately).
3. **Coordinated omission**: a responder that stalls 1 s once every 5 s, driven at 200/s by
   our open model for 10 s, then by closed loops (``bench/_loadgen_latency.py`` has both).
4. **Memory**: our open model at 2,000 requests/s for 60 s (``--memory-seconds``), its
   resident set size read each time a second of the run closes (``bench/_loadgen_memory.py``).

Run it with ``make bench`` (every benchmark), or just this one::

    .venv/bin/python -m bench loadgen                  # ~3 min
    .venv/bin/python -m bench loadgen --quick          # a smoke test, ~45 s
    .venv/bin/python -m bench loadgen --markdown       # tables for docs/BENCHMARKS.md
    .venv/bin/python -m bench loadgen --sections memory --memory-seconds 600

The targets are goals, not assertions: the script exits 0 whatever they say, and ``main()``
returns the results as a dict.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench._harness import Settings, Target, eprint, header, render_table
from bench._http import split_cpus
from bench._loadgen_latency import accuracy, omission
from bench._loadgen_memory import memory
from bench._loadgen_responder import Behaviour, build
from bench._loadgen_tools import (
    Context,
    Sample,
    Section,
    aiohttp_loop,
    as_data,
    attempt,
    locust,
    ours,
    versions,
    wrk,
)

SECTIONS = ("throughput", "accuracy", "omission", "memory")
CONNECTIONS = 64
MEMORY_RATE = 2000.0  # requests/s


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    rounds: int
    seconds: int  # per throughput run
    accuracy_seconds: int
    omission_seconds: int
    memory_seconds: int
    sections: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Tool:
    key: str
    label: str
    command: str
    run: Callable[[str], Sample]


# -- 1. requests/s ----------------------------------------------------------------------------


def tools(ctx: Context, seconds: int) -> list[Tool]:
    n, s, cpus, d = CONNECTIONS, seconds, ctx.client, ctx.workdir
    return [
        Tool("ours", "tailguard", f"tailguard loadtest URL --users {n} --duration {s}s",
             lambda url: ours(url, users=n, seconds=s, workdir=d, cpus=cpus)),
        Tool("locust", "Locust", f"locust --headless -u {n} -r {n} -t {s}s --only-summary",
             lambda url: locust(url, users=n, seconds=s, workdir=d, cpus=cpus)),
        Tool("aiohttp", "aiohttp", f"{n} tasks: session.get(URL), read()",
             lambda url: aiohttp_loop(url, connections=n, seconds=s, cpus=cpus)),
        Tool("wrk", "wrk", f"wrk -t1 -c{n} -d{s}s --latency URL",
             lambda url: wrk(url, connections=n, seconds=s, cpus=cpus)),
    ]  # fmt: skip


Runs = dict[str, list[Sample | str]]


def throughput(ctx: Context, plan: Plan, md: bool, kind: str) -> Section:
    chosen = tools(ctx, plan.seconds)
    runs: Runs = {tool.key: [] for tool in chosen}
    responder = ctx.responder(Behaviour())
    try:
        responder.start()
        for i in range(plan.rounds):
            shift = i % len(chosen)
            for tool in (*chosen[shift:], *chosen[:shift]):
                runs[tool.key].append(attempt(tool.key, lambda t=tool: t.run(responder.url)))
            eprint(f"loadgen: throughput round {i + 1}/{plan.rounds} done")
    finally:
        responder.stop()
    return Section(
        f"1. Requests/s against one loopback responder ({kind}), {CONNECTIONS} connections, "
        f"{plan.seconds} s per run, {plan.rounds} interleaved round{'s' if plan.rounds != 1 else ''}",
        throughput_table(chosen, runs, md)
        + "\n\nreq/s, p50, p99: medians over the rounds, each as the tool itself reports it; "
        "(best): the best round; ours / tool: median of the per-round ratios of req/s. Ours "
        "also passes --max-requests 100000000 --quiet --json FILE; Locust runs a FastHttpUser "
        "with wait_time = constant(0) and one GET task, and its percentiles are whole "
        "milliseconds; the aiohttp loop runs on uvloop; wrk's percentiles include its "
        "after-the-run correction for coordinated omission (section 3).",
        throughput_targets(runs),
        {key: [as_data(s) for s in samples] for key, samples in runs.items()},
    )


def ok(samples: Sequence[Sample | str]) -> list[Sample]:
    return [s for s in samples if isinstance(s, Sample)]


def median_of(samples: Sequence[Sample | str], field: str) -> float:
    values = [getattr(s, field) for s in ok(samples)]
    return statistics.median(values) if values else math.nan


def paired(runs: Runs, a: str, b: str) -> float:
    """Median over the rounds of a's req/s over b's in the same round."""
    ratios = [
        x.rps / y.rps
        for x, y in zip(runs[a], runs[b], strict=True)
        if isinstance(x, Sample) and isinstance(y, Sample) and y.rps > 0
    ]
    return statistics.median(ratios) if ratios else math.nan


def throughput_table(chosen: Sequence[Tool], runs: Runs, md: bool) -> str:
    rows = []
    for tool in chosen:
        samples = runs[tool.key]
        good = ok(samples)
        if not good:
            rows.append([tool.label, f"`{tool.command}`", str(samples[0]), *[""] * 5])
            continue
        rows.append([
            tool.label,
            f"`{tool.command}`",
            f"{median_of(samples, 'rps'):,.0f}",
            f"{max(s.rps for s in good):,.0f}",
            f"{median_of(samples, 'p50_ms'):.2f}",
            f"{median_of(samples, 'p99_ms'):.2f}",
            f"{sum(s.errors for s in good)}",
            f"{paired(runs, 'ours', tool.key):.2f}x",
        ])  # fmt: skip
    headers = ["tool", "command", "req/s", "(best)", "p50 ms", "p99 ms", "errors", "ours / tool"]
    return render_table(headers, rows, markdown=md, align=["<", "<", ">", ">", ">", ">", ">", ">"])


def throughput_targets(runs: Runs) -> list[Target]:
    goals = []
    for key, label, threshold in (("locust", "Locust FastHttpUser", 5.0), ("wrk", "wrk -t1", 0.5)):
        ours_rps, peer_rps = median_of(runs["ours"], "rps"), median_of(runs[key], "rps")
        best = max((s.rps for s in ok(runs[key])), default=math.nan)
        ours_best = max((s.rps for s in ok(runs["ours"])), default=math.nan)
        goals.append(Target(
            f"req/s, tailguard 1 process / {label} (median of per-round ratios)",
            paired(runs, "ours", key), ">=", threshold,
            f"{ours_rps:,.0f} vs {peer_rps:,.0f} req/s; ratio of medians {ours_rps / peer_rps:.2f}; "
            f"on best runs {ours_best / best:.2f}",
        ))  # fmt: skip
    return goals


# -- the run ----------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Plan]:
    parser = argparse.ArgumentParser(
        prog="python -m bench loadgen",
        description="tailguard.loadtest against Locust, aiohttp and wrk: requests/s, accuracy, "
        "coordinated omission, memory.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="a smoke test: one short run of each")
    add("--markdown", action="store_true", help="print GitHub markdown tables")
    add("--rounds", type=int, default=None, help="throughput rounds (default 3)")
    add("--seconds", type=int, default=None, help="seconds per throughput run (default 5)")
    add("--memory-seconds", type=int, default=None, help="the memory run's (default 60)")
    add("--sections", default=",".join(SECTIONS), help=f"some of {','.join(SECTIONS)}")
    args = parser.parse_args(argv)
    sections = tuple(s for s in SECTIONS if s in args.sections.split(","))
    if not sections:
        parser.error(f"--sections: expected some of {','.join(SECTIONS)}")
    q = args.quick
    plan = Plan(
        rounds=max(1, args.rounds or (1 if q else 3)),
        seconds=max(1, args.seconds or (2 if q else 5)),
        accuracy_seconds=2 if q else 5,
        omission_seconds=5 if q else 10,
        memory_seconds=max(3, args.memory_seconds or (10 if q else 60)),
        sections=sections,
    )
    return args, plan


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables and the targets; return the results."""
    args, plan = parse(argv)
    md: bool = args.markdown
    started = time.perf_counter()
    split = split_cpus()
    sections: list[Section] = []
    with tempfile.TemporaryDirectory(prefix="tg-loadgen-") as tmp:
        workdir = Path(tmp)
        binary, why = build(workdir)
        if binary is None:
            eprint(f"loadgen: {why}; the responder is the Python twin (uvloop)")
        client, server = split or (None, None)
        ctx = Context(binary, client, server, workdir)
        kind = ctx.responder(Behaviour()).kind
        if "throughput" in plan.sections:
            sections.append(throughput(ctx, plan, md, kind))
        if "accuracy" in plan.sections:
            sections.append(accuracy(ctx, plan.accuracy_seconds, md))
        if "omission" in plan.sections:
            sections.append(omission(ctx, plan.omission_seconds, md))
        if "memory" in plan.sections:
            sections.append(memory(ctx, MEMORY_RATE, plan.memory_seconds, md))

    goals = [goal for section in sections for goal in section.goals]
    settings = Settings(plan.rounds, plan.seconds, md, args.quick)
    lines = [
        "tailguard.loadtest against Locust, aiohttp and wrk: requests/s, accuracy, "
        "coordinated omission, memory",
        header("", settings)[1],
        versions(binary is not None),
        f"every load its own process; {pinning(split)}; responder: {kind}"
        + (f" ({why})" if why else "")
        + (" [--quick]" if args.quick else ""),
    ]
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))
    for section in sections:
        print(f"#### {section.heading}\n" if md else f"{section.heading}\n")
        print(section.body)
        print()
    if md:
        print("\n".join(f"- {t.line()}" for t in goals))
    else:
        print("Targets:")
        print("\n".join(f"  {t.line()}" for t in goals))
    eprint(f"loadgen: done in {time.perf_counter() - started:.0f} s")
    results: dict[str, Any] = {"plan": dataclasses.asdict(plan)}
    results.update({key: s.data for key, s in zip(plan.sections, sections, strict=True)})
    results["targets"] = [t.as_dict() for t in goals]
    return results


def pinning(split: tuple[set[int], set[int]] | None) -> str:
    if split is None:
        return f"not pinned ({platform.system()}: no CPU affinity, or one CPU)"
    client, server = (",".join(map(str, sorted(cpus))) for cpus in split)
    return f"load generators pinned to CPU {client}, responders to CPU {server}"
