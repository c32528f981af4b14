"""``RedisStorage``: every check is one ``EVALSHA`` of a Lua script shipped in the package.

The script reads the server's clock (``TIME``), never the client's, so a fleet agrees on time;
it checks every limit of the key and records the request only if all admit it, atomically.
Keys share a ``{hash tag}``, so a multi-limit check lands on one Redis Cluster slot. A server
that lost its script cache (``NOSCRIPT``) gets the script again, transparently.
"""

from __future__ import annotations

import functools
import hashlib
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from tailguard.errors import BackendUnavailable
from tailguard.ratelimit.decision import Decision, Outcome, combine
from tailguard.ratelimit.storage.base import state_keys

if TYPE_CHECKING:
    from tailguard.ratelimit.algorithms import Algorithm

__all__ = ["RedisStorage", "script_source"]


@functools.cache
def script_source(name: str) -> str:
    """The Lua source run for algorithm ``name`` (the shared prologue + its rule)."""
    lua = resources.files("tailguard.ratelimit") / "lua"
    return (lua / "_head.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


_CONCURRENCY = (
    resources.files("tailguard.ratelimit") / "lua" / "concurrency_acquire.lua"
).read_text()


class RedisStorage:
    """Rate-limit state in Redis or a Redis Cluster (a ``redis.asyncio`` client).

    ``local_reject`` (default on): a key refused by Redis is refused again in this process,
    without a round trip, until its ``retry_after`` has passed (Envoy's local cache of
    over-limit keys); at most ``local_keys`` keys are remembered. Clock: ``time.monotonic``.
    """

    def __init__(
        self, client: Any, *, local_reject: bool = True, local_keys: int = 100_000
    ) -> None:
        self.client = client
        self._shas: dict[str, str] = {}
        self.local_reject = local_reject
        self._local_keys = local_keys
        # (state key prefix, limits, key, cost) -> (monotonic time until which it is refused,
        # the refusal). Limiters with the same prefix and limits share state, and refusals.
        self._refused: dict[tuple[str, str, str, int], tuple[float, Decision]] = {}

    async def _eval(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA the script, loading it first if the server does not know it."""
        sha = self._shas.get(name)
        if sha is None:
            sha = self._shas[name] = hashlib.sha1(source.encode()).hexdigest()
        try:
            return await self.client.evalsha(sha, len(keys), *keys, *args)
        except Exception as exc:
            if type(exc).__name__ != "NoScriptError" and "NOSCRIPT" not in str(exc):
                raise
            await self.client.script_load(source)
            return await self.client.evalsha(sha, len(keys), *keys, *args)

    @staticmethod
    def _static(algorithm: Algorithm) -> tuple[str, list[Any]]:
        """The script and the limit arguments of ``algorithm``, computed once and kept on it
        (not here: limiters come and go, a storage lives long)."""
        cached: tuple[str, list[Any]] | None = getattr(algorithm, "_redis_static", None)
        if cached is None:
            args: list[Any] = []
            for rate in algorithm.rates:
                args += [rate.limit, repr(rate.period), rate.capacity]
            cached = (script_source(algorithm.name), args)
            algorithm._redis_static = cached  # type: ignore[attr-defined]
        return cached

    async def apply(self, algorithm: Algorithm, key: str, cost: int, now: float | None) -> Decision:
        local = self.local_reject and now is None  # explicit times are for tests: no shortcut
        if local and self._refused:
            memo = (algorithm.key_head, algorithm.description, key, cost)
            remembered = self._refused.get(memo)
            if remembered is not None:
                left = remembered[0] - time.monotonic()
                if left > 0:
                    return remembered[1]._replace(retry_after=left)
                del self._refused[memo]
        decision = await self._apply(algorithm, key, cost, now)
        if local and not decision.allowed and decision.retry_after > 0:
            if len(self._refused) >= self._local_keys:
                del self._refused[next(iter(self._refused))]
            until = time.monotonic() + decision.retry_after
            memo = (algorithm.key_head, algorithm.description, key, cost)
            self._refused[memo] = (until, decision)
        return decision

    async def _apply(
        self, algorithm: Algorithm, key: str, cost: int, now: float | None
    ) -> Decision:
        source, limits = self._static(algorithm)
        args = ["" if now is None else repr(now), cost, *limits]
        try:
            reply = await self._eval(algorithm.name, source, state_keys(algorithm, key), args)
        except Exception as exc:
            raise BackendUnavailable("redis", f"{type(exc).__name__}: {exc}") from exc
        rates = algorithm.rates
        if len(rates) == 1:
            return Decision(reply[0] == 1, rates[0].limit, reply[1], reply[2] / 1e6, reply[3] / 1e6)
        outcomes: list[Outcome] = [
            (reply[i] == 1, None, reply[i + 1], reply[i + 2] / 1e6, reply[i + 3] / 1e6, 0.0)
            for i in range(0, len(reply), 4)
        ]
        return combine(rates, outcomes)

    # -- concurrency leases ------------------------------------------------------------------

    async def acquire_slot(
        self, key: str, limit: int, lease: float, token: str, now: float | None
    ) -> tuple[bool, int, float]:
        """Take a lease on one of ``limit`` slots: (acquired, in flight, retry after seconds)."""
        args = ["" if now is None else repr(now), limit, repr(lease), token]
        try:
            ok, in_flight, retry = await self._eval(
                "concurrency_acquire", _CONCURRENCY, [key], args
            )
        except Exception as exc:
            raise BackendUnavailable("redis", f"{type(exc).__name__}: {exc}") from exc
        return bool(ok), int(in_flight), float(retry)

    async def release_slot(self, key: str, token: str) -> None:
        try:
            await self.client.zrem(key, token)
        except Exception as exc:
            raise BackendUnavailable("redis", f"{type(exc).__name__}: {exc}") from exc

    def __repr__(self) -> str:
        return f"RedisStorage({type(self.client).__name__})"
