"""tailguard.shard: routing cost per key for every strategy, and the keys a resize moves.

Two sections, each a table, then the targets:

1. **Routing, ns per key**: ``strategy.shard(key)`` for ``Modulo(8)`` (int ids, the guide's
   user-id sharding), ``StableHash(8)`` (str and int keys), ``JumpHash(8)`` (int ids, str
   keys) and ``JumpHash(1024)`` (its loop runs about ``ln n`` times), ``Rendezvous`` over 8
   named nodes (str keys), and ``ByMonth("events")`` on aware UTC datetimes; beside two
   floors: a method that returns its key (the cost of a call in a loop), and the guide's
   tenant sharding ``hash(key) % 8`` (wrong across processes, shown for its cost). Every case
   is an ``async def run()`` looping over the same 1,000 keys (seeded: ids drawn from
   ``[0, 10**9)``, ``tenant-<id>`` strings, datetimes over 2024), timed with the method of
   ``bench/_harness.py`` (interleaved repetitions, median and min), and reported per key
   (ns per call / 1,000). The "x Modulo" column divides by ``Modulo``'s median.
2. **Key movement**: the fraction of 100,000 sequential ids (20,000 with ``--quick``) whose
   shard changes when going from 4 to 5, 8 to 9 and 16 to 17 shards, per strategy
   (``Rendezvous`` grows from nodes ``node-0 .. node-{N-1}`` by ``node-N``), from
   ``tailguard.shard.movement``; beside the least any balanced scheme must move, 1/(N+1).

Run it with ``make bench`` (every benchmark), or just this one::

    .venv/bin/python -m bench shard              # ~20 s
    .venv/bin/python -m bench shard --quick      # a smoke test, a few seconds
    .venv/bin/python -m bench shard --markdown   # tables for docs/BENCHMARKS.md

The targets printed after the tables are goals, not assertions: the script exits 0 whatever
they say, and ``main()`` returns the results as a dict.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
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
    ratio,
    render_table,
)
from tailguard.shard import ByMonth, JumpHash, Modulo, Rendezvous, StableHash, Strategy, movement

__all__ = ["main"]

KEYS_PER_CALL = 1000
SEED = 20261127
SHARDS = 8
RESIZES = (4, 8, 16)  # N -> N + 1
MOVEMENT_KEYS, QUICK_MOVEMENT_KEYS = 100_000, 20_000
FLOOR, GUIDE, OURS = "floor", "guide", "tailguard"


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    key: str
    group: str
    label: str
    shard: Callable[[Any], object]
    keys: str  # "ids", "texts" or "times"


class _Identity:
    __slots__ = ()

    def shard(self, key: object) -> object:
        return key


def _guide_hash(key: str) -> int:
    return hash(key) % SHARDS


def specs() -> list[Spec]:
    nodes = [f"node-{i}" for i in range(SHARDS)]
    return [
        Spec("floor", FLOOR, "method returning its key (int ids)", _Identity().shard, "ids"),
        Spec("guide", GUIDE, "hash(key) % 8 (str keys; differs per process)", _guide_hash, "texts"),
        Spec("modulo", OURS, "Modulo(8).shard (int ids)", Modulo(SHARDS).shard, "ids"),
        Spec("stable_str", OURS, "StableHash(8).shard (str keys)", StableHash(SHARDS).shard, "texts"),
        Spec("stable_int", OURS, "StableHash(8).shard (int ids)", StableHash(SHARDS).shard, "ids"),
        Spec("jump_int", OURS, "JumpHash(8).shard (int ids)", JumpHash(SHARDS).shard, "ids"),
        Spec("jump_str", OURS, "JumpHash(8).shard (str keys)", JumpHash(SHARDS).shard, "texts"),
        Spec("jump_1024", OURS, "JumpHash(1024).shard (int ids)", JumpHash(1024).shard, "ids"),
        Spec("rendezvous", OURS, "Rendezvous(8 nodes).shard (str keys)", Rendezvous(nodes).shard, "texts"),
        Spec("by_month", OURS, 'ByMonth("events").shard (aware UTC datetimes)', ByMonth("events").shard, "times"),
    ]  # fmt: skip


def key_sets() -> dict[str, list[Any]]:
    rng = random.Random(SEED)
    ids = [rng.randrange(10**9) for _ in range(KEYS_PER_CALL)]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return {
        "ids": ids,
        "texts": [f"tenant-{i}" for i in ids],
        "times": [start + timedelta(seconds=rng.randrange(366 * 86400)) for _ in ids],
    }


def build(shard: Callable[[Any], object], keys: list[Any]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        for key in keys:
            shard(key)

    return run


def verify(spec: Spec, keys: list[Any]) -> None:
    """Every case answers for every key: an int in range, or a month's name."""
    for key in keys:
        value = spec.shard(key)
        if spec.key == "floor":
            ok = value == key
        elif spec.key == "by_month":
            ok = isinstance(value, str) and value.startswith("events_2024_")
        else:
            limit = 1024 if spec.key == "jump_1024" else SHARDS
            ok = isinstance(value, int) and 0 <= value < limit
        if not ok:
            raise AssertionError(f"{spec.key}: {key!r} -> {value!r}")


async def time_routing(settings: Settings, cases_specs: Sequence[Spec]) -> dict[str, Stats]:
    keys = key_sets()
    for spec in cases_specs:
        verify(spec, keys[spec.keys])
    cases = [Case(s.key, s.group, build(s.shard, keys[s.keys]), s.label) for s in cases_specs]
    eprint(f"shard: timing {len(cases)} cases x {settings.reps} repetitions ...")
    return await measure(
        cases, reps=settings.reps, sample_seconds=settings.sample_seconds, progress=eprint
    )


def growth(name: str, size: int) -> tuple[Strategy[int], Strategy[int]]:
    if name == "Modulo":
        return Modulo(size), Modulo(size + 1)
    if name == "StableHash":
        return StableHash(size), StableHash(size + 1)
    if name == "JumpHash":
        return JumpHash(size), JumpHash(size + 1)
    nodes = [f"node-{i}" for i in range(size + 1)]
    return Rendezvous(nodes[:size]), Rendezvous(nodes)


STRATEGIES = ("Modulo", "StableHash", "JumpHash", "Rendezvous")


def measure_movement(count: int) -> dict[str, dict[int, float]]:
    eprint(f"shard: key movement over {count:,} ids ...")
    ids = range(count)
    return {
        name: {size: movement(*growth(name, size), ids, samples=0).fraction for size in RESIZES}
        for name in STRATEGIES
    }


def routing_table(specs_: Sequence[Spec], stats: dict[str, Stats], *, markdown: bool) -> str:
    base = stats["modulo"].median
    rows = [
        [
            spec.group,
            f"`{spec.label}`" if markdown else spec.label,
            f"{stats[spec.key].median / KEYS_PER_CALL:,.0f}",
            f"{stats[spec.key].best / KEYS_PER_CALL:,.0f}",
            f"{stats[spec.key].median / base:.2f}x",
        ]
        for spec in specs_
    ]
    return render_table(
        ["group", "case", "ns/key", "min", "x Modulo"],
        rows,
        markdown=markdown,
        align=["<", "<", ">", ">", ">"],
    )


def movement_table(moved: dict[str, dict[int, float]], *, markdown: bool) -> str:
    heads = ["strategy", *(f"{n} -> {n + 1}" for n in RESIZES)]
    rows = [[name, *(f"{moved[name][n]:.1%}" for n in RESIZES)] for name in STRATEGIES]
    rows.append(["least possible, 1/(N+1)", *(f"{1 / (n + 1):.1%}" for n in RESIZES)])
    return render_table(heads, rows, markdown=markdown, align=["<", ">", ">", ">"])


def targets(moved: dict[str, dict[int, float]]) -> list[Target]:
    goals = []
    for n in RESIZES:
        goals.append(
            Target(
                f"JumpHash {n} -> {n + 1}: fraction moved",
                moved["JumpHash"][n],
                "<=",
                round(1.5 / (n + 1), 4),
                f"1.5/(N+1); the least possible is {1 / (n + 1):.3f}",
            )
        )
    for n in RESIZES:
        goals.append(
            Target(
                f"Modulo {n} -> {n + 1}: fraction moved",
                moved["Modulo"][n],
                ">=",
                0.7,
                f"the contrast: N/(N+1) = {n / (n + 1):.3f}",
            )
        )
    return goals


def infos(stats: dict[str, Stats]) -> list[str]:
    """Cost ratios per key: reported, the issue sets no threshold."""
    med = {key: s.median for key, s in stats.items()}
    low = {key: s.best for key, s in stats.items()}
    pairs = [
        ("jump_int", "modulo", "JumpHash(8) int / Modulo(8)"),
        ("jump_str", "modulo", "JumpHash(8) str / Modulo(8)"),
        ("stable_str", "modulo", "StableHash(8) str / Modulo(8)"),
        ("rendezvous", "modulo", "Rendezvous(8 nodes) / Modulo(8)"),
        ("by_month", "modulo", "ByMonth / Modulo(8)"),
        ("stable_str", "guide", "StableHash(8) / the guide's hash() % 8, str keys"),
    ]
    return [
        f"[INFO] {words}, ns per key: {ratio(med[a], med[b]):.2f} "
        f"({med[a] / KEYS_PER_CALL:,.0f} ns vs {med[b] / KEYS_PER_CALL:,.0f} ns; "
        f"on minimums {ratio(low[a], low[b]):.2f})"
        for a, b, words in pairs
    ]


def results(
    settings: Settings,
    stats: dict[str, Stats],
    moved: dict[str, dict[int, float]],
    goals: list[Target],
    labels: dict[str, str],
) -> dict[str, Any]:
    return {
        "benchmark": "shard",
        "python": sys.version,
        "settings": dataclasses.asdict(settings),
        "cases": {
            key: {
                "label": labels[key],
                "group": s.group,
                "calls_per_sample": s.calls,
                "median_ns": s.median / KEYS_PER_CALL,
                "min_ns": s.best / KEYS_PER_CALL,
            }
            for key, s in stats.items()
        },
        "movement": {
            name: {f"{n}->{n + 1}": f for n, f in row.items()} for name, row in moved.items()
        },
        "targets": [t.as_dict() for t in goals],
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables and the targets; return the results."""
    settings = parse_args(
        argv,
        prog="python -m bench shard",
        description="Routing cost per key of tailguard.shard strategies, and resize movement.",
    )
    cases_specs = specs()
    stats = asyncio.run(time_routing(settings, cases_specs))
    moved = measure_movement(QUICK_MOVEMENT_KEYS if settings.quick else MOVEMENT_KEYS)
    goals = targets(moved)
    count = QUICK_MOVEMENT_KEYS if settings.quick else MOVEMENT_KEYS
    title = "tailguard.shard: routing cost per key, and the keys a resize moves"
    lines = header(title, settings)
    sections = [
        f"1. Routing, ns per key (loops of {KEYS_PER_CALL:,} keys; 8 shards unless named)",
        f"2. Key movement: share of {count:,} sequential ids that change shard on N -> N + 1",
    ]
    md = settings.markdown
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))
    print(f"#### {sections[0]}\n" if md else f"{sections[0]}\n")
    print(routing_table(cases_specs, stats, markdown=md))
    print()
    print(f"#### {sections[1]}\n" if md else f"{sections[1]}\n")
    print(movement_table(moved, markdown=md))
    print()
    bullet = "- " if md else "  "
    if not md:
        print("Targets:")
    print("\n".join(f"{bullet}{t.line()}" for t in goals))
    print("\n".join(f"{bullet}{line}" for line in infos(stats)))
    return results(settings, stats, moved, goals, {s.key: s.label for s in cases_specs})


if __name__ == "__main__":
    main()
