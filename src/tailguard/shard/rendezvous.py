"""``Rendezvous``: highest-random-weight hashing over named, optionally weighted nodes.

Every node scores every key; the key lives on the node with the highest score. Adding a node
moves only the keys the new node now wins (about ``1 / (N + 1)`` of them); removing one moves
only the keys it held, whatever its place in the list: unlike ``JumpHash``, any node can leave.
``ranked(key)`` gives the whole preference order, for replicas or failover.

The score of node ``i`` for a key is ``mix64(digest64(key) ^ seed_i)``, where ``seed_i`` is
the node name's ``digest64`` and ``mix64`` the SplitMix64 finalizer (a bijection that spreads
every input bit over the output). With weights it is the weighted-rendezvous score
``-w_i / ln(u)``, ``u`` the 64-bit score read as a float in ``(0, 1)``: node ``i`` then wins
a share ``w_i / sum(w)`` of the keys.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from tailguard._digest import MASK64, Key, digest64
from tailguard.errors import ConfigurationError

__all__ = ["Rendezvous", "mix64"]

_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_UNIT = 2.0**-53  # one step of a 53-bit float in [0, 1)
_log = math.log


def mix64(x: int) -> int:
    """SplitMix64's finalizer: a bijection on 64-bit ints with full avalanche."""
    x = ((x ^ (x >> 30)) * _M1) & MASK64
    x = ((x ^ (x >> 27)) * _M2) & MASK64
    return x ^ (x >> 31)


class Rendezvous:
    """Rendezvous (HRW) hashing over named nodes: ``Rendezvous(["db-a", "db-b", "db-c"])``,
    or weighted: ``Rendezvous({"db-a": 1.0, "db-big": 2.0})`` (weights > 0, any unit).

    ``shard(key)`` is the index of the winning node in ``nodes``; ``node(key)`` its name. Keys
    are ``int``, ``str`` or ``bytes``, all digested (``42`` and ``"42"`` are one key). Cost:
    one digest and ``N`` integer mixes per key.
    """

    __slots__ = ("_pairs", "_seeds", "n", "nodes", "weights")

    def __init__(self, nodes: Iterable[str] | Mapping[str, float]) -> None:
        if isinstance(nodes, str | bytes):
            raise ConfigurationError("nodes", nodes, "a list of node names, not one string")
        if isinstance(nodes, Mapping):
            names = tuple(nodes)
            weights = tuple(nodes.values())
        else:
            names = tuple(nodes)
            weights = (1.0,) * len(names)
        if not names:
            raise ConfigurationError("nodes", list(names), "at least one node")
        for name in names:
            if not isinstance(name, str) or not name:
                raise ConfigurationError("nodes", name, "node names as non-empty str")
        if len(set(names)) != len(names):
            duplicates = sorted({x for x in names if names.count(x) > 1})
            raise ConfigurationError("nodes", duplicates, "unique node names")
        for name, weight in zip(names, weights, strict=True):
            if (
                isinstance(weight, bool)
                or not isinstance(weight, int | float)
                or not math.isfinite(weight)
                or weight <= 0
            ):
                raise ConfigurationError(f"weight of {name!r}", weight, "a finite number > 0")
        self.nodes: tuple[str, ...] = names
        self.weights: tuple[float, ...] = tuple(float(w) for w in weights)
        self.n: int = len(names)
        self._seeds = tuple(digest64(name) for name in names)
        uniform = len(set(self.weights)) == 1
        # Equal weights: the integer score alone decides (exact, and cheaper than the log).
        self._pairs: tuple[tuple[int, float], ...] | None = (
            None if uniform else tuple(zip(self._seeds, self.weights, strict=True))
        )

    def __repr__(self) -> str:
        if self._pairs is None:
            return f"Rendezvous({list(self.nodes)!r})"
        return f"Rendezvous({dict(zip(self.nodes, self.weights, strict=True))!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rendezvous):
            return NotImplemented
        return (self.nodes, self.weights) == (other.nodes, other.weights)

    def __hash__(self) -> int:
        return hash((self.nodes, self.weights))

    def _scores(self, key: Key) -> list[int] | list[float]:
        """Every node's score for ``key``, in ``nodes`` order: exact ints when unweighted."""
        h = digest64(key)
        if self._pairs is None:
            return [mix64(h ^ seed) for seed in self._seeds]
        return [
            -weight / _log(((mix64(h ^ seed) >> 11) + 0.5) * _UNIT) for seed, weight in self._pairs
        ]

    def shard(self, key: Key, /) -> int:
        """Index in ``nodes`` of the node that holds ``key``."""
        h = digest64(key)
        best, best_score = 0, -1.0
        if self._pairs is None:
            m1, m2, mask = _M1, _M2, MASK64
            top = -1
            for i, seed in enumerate(self._seeds):
                x = h ^ seed  # mix64 inlined: this loop is the whole cost of a lookup
                x = ((x ^ (x >> 30)) * m1) & mask
                x = ((x ^ (x >> 27)) * m2) & mask
                x ^= x >> 31
                if x > top:
                    best, top = i, x
            return best
        for i, (seed, weight) in enumerate(self._pairs):
            score = -weight / _log(((mix64(h ^ seed) >> 11) + 0.5) * _UNIT)
            if score > best_score:
                best, best_score = i, score
        return best

    def node(self, key: Key) -> str:
        """Name of the node that holds ``key``."""
        return self.nodes[self.shard(key)]

    def ranked(self, key: Key) -> list[str]:
        """Every node, from the one that holds ``key`` to the last resort: the first ``r``
        are where ``r`` replicas go, and where ``key`` moves when the first ones leave."""
        scores: list[float] = list(self._scores(key))
        # A stable sort: on a tie the earlier node comes first, as in ``shard``.
        order = sorted(range(self.n), key=scores.__getitem__, reverse=True)
        return [self.nodes[i] for i in order]
