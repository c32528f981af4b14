"""``movement(old, new, keys)``: what a resize relocates, and where each moved key goes.

::

    from tailguard.shard import JumpHash, Modulo, movement

    movement(Modulo(4), Modulo(5), range(100_000)).fraction     # 0.8: most rows move
    movement(JumpHash(4), JumpHash(5), range(100_000)).fraction   # ~0.2: only the new shard's

The result counts keys per ``(from, to)`` pair (the migration plan) and keeps a few sample
keys per pair; :func:`moves` walks the moved keys themselves lazily, so a migration can
stream millions of ids without holding them. Shards are compared by index, except between two
:class:`~tailguard.shard.Rendezvous`, which are compared by node name (a node that leaves the
middle of the list renumbers the others, but moves none of their keys).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tailguard.errors import ConfigurationError
from tailguard.shard.rendezvous import Rendezvous
from tailguard.shard.strategies import Strategy

__all__ = ["Move", "Movement", "moves", "movement"]

K = TypeVar("K")
Place = int | str  # a shard index, or a node name for Rendezvous
Pair = tuple[Place, Place]


@dataclass(frozen=True, slots=True)
class Move(Generic[K]):
    """One key that a resize relocates from shard ``source`` to shard ``target``."""

    key: K
    source: Place
    target: Place


@dataclass(frozen=True, slots=True)
class Movement(Generic[K]):
    """What a change of strategy does to a set of keys.

    ``total`` keys looked at, ``moved`` of them change shard; ``plan`` counts the moved keys
    per ``(source, target)`` pair, ``samples`` keeps the first few keys of each pair (in the
    order they came). Pairs are sorted.
    """

    total: int
    moved: int
    plan: Mapping[Pair, int] = field(default_factory=dict)
    samples: Mapping[Pair, tuple[K, ...]] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Share of the keys that move, ``0.0 .. 1.0`` (0.0 for no keys)."""
        return self.moved / self.total if self.total else 0.0

    def __str__(self) -> str:
        lines = [f"{self.moved:,} of {self.total:,} keys move ({self.fraction:.1%})"]
        for (source, target), count in self.plan.items():
            some = ", ".join(map(repr, self.samples.get((source, target), ())))
            lines.append(f"  {source} -> {target}: {count:,}" + (f" (e.g. {some})" if some else ""))
        return "\n".join(lines)


def _locator(old: Strategy[K], new: Strategy[K]) -> tuple[Callable[[K], Place], ...]:
    before: object = old  # mypy: a Strategy[K] may well be a Rendezvous
    after: object = new
    if isinstance(before, Rendezvous) and isinstance(after, Rendezvous):
        return before.node, after.node  # type: ignore[return-value]
    return old.shard, new.shard


def moves(old: Strategy[K], new: Strategy[K], keys: Iterable[K]) -> Iterator[Move[K]]:
    """Each key of ``keys`` whose shard differs between ``old`` and ``new``, lazily."""
    where_old, where_new = _locator(old, new)
    for key in keys:
        source, target = where_old(key), where_new(key)
        if source != target:
            yield Move(key, source, target)


def movement(
    old: Strategy[K], new: Strategy[K], keys: Iterable[K], *, samples: int = 3
) -> Movement[K]:
    """Count what going from ``old`` to ``new`` relocates among ``keys`` (one pass, lazily;
    memory is one counter per pair plus ``samples`` keys per pair)."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
        raise ConfigurationError("samples", samples, "an int >= 0 (keys kept per pair)")
    where_old, where_new = _locator(old, new)
    plan: dict[Pair, int] = {}
    kept: dict[Pair, list[K]] = {}
    total = moved = 0
    for key in keys:
        total += 1
        source, target = where_old(key), where_new(key)
        if source == target:
            continue
        moved += 1
        pair = (source, target)
        count = plan.get(pair, 0)
        plan[pair] = count + 1
        if count < samples:
            kept.setdefault(pair, []).append(key)
    order = sorted(plan)  # all ints, or all node names: never mixed
    return Movement(
        total,
        moved,
        {pair: plan[pair] for pair in order},
        {pair: tuple(kept[pair]) for pair in order if pair in kept},
    )
