"""Shard strategies: which of ``n`` shards a key lives on. Sans-IO, pure, and the same answer
in every process (no per-process salt, no state).

::

    from tailguard.shard import JumpHash, Modulo, StableHash

    Modulo(4).shard(1234)              # user id % 4 -> 2: the guide's user-id sharding
    StableHash(8).shard("tenant-42")   # BLAKE2b-64 digest % 8: tenants, done right
    JumpHash(4).shard(1234)            # Lamping & Veach: growing 4 -> 5 moves only ~1/5

Every strategy follows the :class:`Strategy` protocol: ``n`` shards, numbered ``0 .. n-1``,
and ``shard(key) -> int``. :class:`~tailguard.shard.Rendezvous` (named, weighted nodes) follows
it too; :class:`~tailguard.shard.ByMonth` names a shard per calendar month instead.

How keys are read (see ``_keys.py`` for the digest):

* ``Modulo``: ``int`` ids only, ``id % n``. Growing ``n`` to ``n + 1`` moves about
  ``n / (n + 1)`` of the keys.
* ``StableHash``: any key (``int``, ``str``, ``bytes``), ``digest64(key) % n``; moves as much
  as ``Modulo`` on a resize, but spreads any key evenly.
* ``JumpHash``: an ``int`` is the paper's 64-bit key itself (taken modulo ``2**64``: a
  negative id is read in two's complement, as Guava's ``consistentHash(long)``); a ``str`` or
  ``bytes`` goes through ``digest64`` first. So ``shard(42)`` and ``shard("42")`` may differ:
  use one key type per table. Growing ``n`` to ``n + 1`` moves only ``1 / (n + 1)`` of the
  keys, all to the new shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from tailguard._digest import MASK64, Key, digest64
from tailguard.errors import ConfigurationError

__all__ = ["JumpHash", "Modulo", "StableHash", "Strategy", "check_count", "jump"]

K_contra = TypeVar("K_contra", contravariant=True)

_LCG = 2862933555777941757  # the paper's 64-bit linear congruential multiplier
_TWO_31 = float(1 << 31)


class Strategy(Protocol[K_contra]):
    """Maps a key to one of ``n`` shards, ``0 <= shard(key) < n``, deterministically."""

    @property
    def n(self) -> int:
        """How many shards there are."""
        ...

    def shard(self, key: K_contra, /) -> int:
        """The shard (``0 .. n-1``) that ``key`` lives on."""
        ...


def check_count(n: object, setting: str = "n") -> int:
    """``n`` if it is an int >= 1, else ``ConfigurationError`` naming ``setting``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigurationError(setting, n, "a number of shards, an int >= 1")
    return n


def jump(key: int, n: int) -> int:
    """Jump consistent hash (Lamping & Veach, 2014): the bucket in ``[0, n)`` of a 64-bit key.

    The paper's C++ loop, step for step: a 64-bit LCG ``key * 2862933555777941757 + 1`` and a
    jump ``(b + 1) * (2**31 / ((key >> 33) + 1))`` in double precision.
    """
    lcg, mask, two_31 = _LCG, MASK64, _TWO_31  # locals: this loop is the whole cost
    b, j = -1, 0
    while j < n:
        b = j
        key = (key * lcg + 1) & mask
        j = int((b + 1) * (two_31 / ((key >> 33) + 1)))  # an int under 2**31: exact as a double
    return b


def _not_an_int(strategy: str, key: object) -> TypeError:
    hint = "; use StableHash or JumpHash for text keys" if isinstance(key, str | bytes) else ""
    return TypeError(f"{strategy} shards int ids, not {type(key).__name__} {key!r}{hint}")


@dataclass(frozen=True, slots=True)
class Modulo:
    """``id % n``: the guide's sharding by user id. Only for ``int`` ids.

    Cheap and readable (shard 2 holds ids 2, 6, 10, ...), but a resize from ``n`` to ``n + 1``
    moves about ``n / (n + 1)`` of the rows.
    """

    n: int

    def __post_init__(self) -> None:
        check_count(self.n)

    def shard(self, key: int, /) -> int:
        """``key % n`` (never negative, whatever the sign of ``key``)."""
        if type(key) is not int and (isinstance(key, bool) or not isinstance(key, int)):
            raise _not_an_int("Modulo", key)
        return key % self.n


@dataclass(frozen=True, slots=True)
class StableHash:
    """``digest64(key) % n``: a stable digest (BLAKE2b-64), so every process agrees.

    This is the guide's tenant sharding done right: the guide used Python's ``hash()``, which
    is salted per process, so two instances sent one tenant to different shards. A resize
    moves about ``n / (n + 1)`` of the keys, as ``Modulo`` does.
    """

    n: int

    def __post_init__(self) -> None:
        check_count(self.n)

    def shard(self, key: Key, /) -> int:
        """The shard of ``key`` (``int``, ``str`` or ``bytes``), in ``[0, n)``."""
        return digest64(key) % self.n


@dataclass(frozen=True, slots=True)
class JumpHash:
    """Jump consistent hash over ``n`` numbered shards: no table, no memory, and a resize from
    ``n`` to ``n + 1`` moves only ``1 / (n + 1)`` of the keys, all onto the new shard.

    Shards must be numbered ``0 .. n-1`` and can only be added or removed at the end: to
    retire a shard in the middle, use :class:`~tailguard.shard.Rendezvous`.
    """

    n: int

    def __post_init__(self) -> None:
        check_count(self.n)

    def shard(self, key: Key, /) -> int:
        """The shard of ``key``: an ``int`` is the 64-bit key itself, text is digested."""
        if type(key) is int:
            return jump(key & MASK64, self.n)
        if isinstance(key, int) and not isinstance(key, bool):
            return jump(int(key) & MASK64, self.n)
        return jump(digest64(key), self.n)
