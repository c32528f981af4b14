"""``MemoryStorage``: rate-limit state in this process (the embedded default)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tailguard.ratelimit.decision import Decision, combine, new_decision

if TYPE_CHECKING:
    from tailguard.ratelimit.algorithms import Algorithm

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """A dict of ``storage key -> (expires_at, state)``; ``clock`` gives seconds."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, sweep_every: int = 10_000
    ) -> None:
        self.now = clock
        self._data: dict[str, tuple[float, Any]] = {}
        self._ops = 0
        self._sweep_every = sweep_every

    def __len__(self) -> int:
        return len(self._data)

    async def apply(self, algorithm: Algorithm, key: str, cost: int, now: float | None) -> Decision:
        return self.apply_now(algorithm, key, cost, self.now() if now is None else now)

    def apply_now(self, algorithm: Algorithm, key: str, cost: int, now: float) -> Decision:
        """The synchronous core of ``apply`` (one check, atomic by construction)."""
        data = self._data
        head = algorithm.key_head + key
        rates = algorithm.rates
        self._ops += 1
        if self._ops >= self._sweep_every:
            self._sweep(now)
        if len(rates) == 1:  # the common case, without lists or combine()
            k = head + algorithm.key_tails[0]
            record = data.get(k)
            state = record[1] if record is not None and record[0] > now else None
            o = algorithm.step(state, rates[0], now, cost)
            if o[0]:
                kept = o[1] if algorithm.keeps_outcome else algorithm.record(o[1], now, cost)
                data[k] = (now + o[5], kept)
            return new_decision(Decision, (o[0], rates[0].limit, o[2], o[3], o[4], 0))
        keys = [head + tail for tail in algorithm.key_tails]
        outcomes = []
        for rate, k in zip(rates, keys, strict=True):
            record = data.get(k)
            state = record[1] if record is not None and record[0] > now else None
            outcomes.append(algorithm.step(state, rate, now, cost))
        decision = combine(rates, outcomes)
        if decision.allowed:
            for k, o in zip(keys, outcomes, strict=True):
                data[k] = (now + o[5], algorithm.record(o[1], now, cost))
        return decision

    def _sweep(self, now: float) -> None:
        self._ops = 0
        for k in [k for k, (expires, _) in self._data.items() if expires <= now]:
            del self._data[k]

    # -- concurrency leases ------------------------------------------------------------------

    async def acquire_slot(
        self, key: str, limit: int, lease: float, token: str, now: float | None
    ) -> tuple[bool, int, float]:
        """Take a lease on one of ``limit`` slots: (acquired, in flight, retry after seconds)."""
        now = self.now() if now is None else now
        self._ops += 1
        if self._ops >= self._sweep_every:
            self._sweep(now)
        record = self._data.get(key)
        leases: dict[str, float] = record[1] if record is not None else {}
        for t in [t for t, expires in leases.items() if expires <= now]:
            del leases[t]
        if len(leases) < limit:
            leases[token] = now + lease
            self._data[key] = (max(leases.values()), leases)
            return True, len(leases), 0.0
        return False, len(leases), max(0.0, min(leases.values()) - now)

    async def release_slot(self, key: str, token: str) -> None:
        record = self._data.get(key)
        if record is not None:
            record[1].pop(token, None)
            if not record[1]:
                del self._data[key]

    def __repr__(self) -> str:
        return f"MemoryStorage(keys={len(self._data)})"
