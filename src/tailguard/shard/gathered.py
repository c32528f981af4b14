"""``Gathered``: what a scatter-gather over the shards brought back, shard by shard, and
``ShardError``: the error a gather raises when it does not accept a partial result."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tailguard.errors import ConfigurationError, ShardError

__all__ = ["Gathered", "ShardError"]

R_co = TypeVar("R_co", covariant=True)
X = TypeVar("X")


@dataclass(frozen=True, slots=True)
class Gathered(Generic[R_co]):
    """The outcome of ``ShardRouter.gather``, in shard order.

    ``results`` maps each shard that answered to its value; ``errors`` each shard that did not
    to its exception (a per-shard timeout is a :class:`~tailguard.errors.DeadlineExceeded`);
    ``elapsed`` each shard to the seconds its call ran (from the moment it got a slot).
    ``complete`` is true when every shard asked answered.
    """

    results: Mapping[int, R_co]
    errors: Mapping[int, BaseException]
    elapsed: Mapping[int, float]

    @property
    def complete(self) -> bool:
        """True when no shard failed: the result covers every shard asked."""
        return not self.errors

    @property
    def failed(self) -> list[int]:
        """The shards that did not answer, in order."""
        return list(self.errors)

    def values(self) -> list[R_co]:
        """The values of the shards that answered, in shard order."""
        return list(self.results.values())

    def merged(
        self: Gathered[Iterable[X]],
        *,
        key: Callable[[X], Any] | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> list[X]:
        """The shards' rows as one list: concatenated in shard order, or, with ``key``,
        merged in ``key`` order.

        With ``key``, each shard's rows must already be sorted by it (``ORDER BY`` in the
        shard's query; ``reverse=True`` for descending): the merge is lazy (``heapq.merge``),
        so the top ``limit`` rows across ``s`` shards cost ``O(limit log s)``. ``limit`` keeps
        at most that many rows.
        """
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ConfigurationError("limit", limit, "None or an int >= 0")
        parts = self.results.values()
        rows: Iterable[X] = (
            itertools.chain.from_iterable(parts)
            if key is None
            else heapq.merge(*parts, key=key, reverse=reverse)
        )
        return list(rows if limit is None else itertools.islice(rows, limit))
