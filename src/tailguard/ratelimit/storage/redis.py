"""``RedisStorage``: every check is one ``EVALSHA`` of a Lua script shipped in the package.

The script reads the server's clock (``TIME``), never the client's, so a fleet agrees on time;
it checks every limit of the key and records the request only if all admit it, atomically.
Keys share a ``{hash tag}``, so a multi-limit check lands on one Redis Cluster slot. A server
that lost its script cache (``NOSCRIPT``) gets the script again, transparently.
"""

from __future__ import annotations

import time
from dataclasses import replace
from importlib import resources
from typing import TYPE_CHECKING, Any

from tailguard.errors import BackendUnavailable
from tailguard.ratelimit.algorithms import Decision, Outcome, combine
from tailguard.ratelimit.storage.base import state_keys

if TYPE_CHECKING:
    from tailguard.ratelimit.algorithms import Algorithm

__all__ = ["RedisStorage", "script_source"]


def script_source(name: str) -> str:
    """The Lua source run for algorithm ``name`` (the shared prologue + its rule)."""
    lua = resources.files("tailguard.ratelimit") / "lua"
    return (lua / "_head.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


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
        self._scripts: dict[str, Any] = {}
        self.local_reject = local_reject
        self._local_keys = local_keys
        # (algorithm, key, cost) -> (monotonic time until which it is refused, the refusal)
        self._refused: dict[tuple[int, str, int], tuple[float, Decision]] = {}

    def _script(self, name: str) -> Any:
        script = self._scripts.get(name)
        if script is None:
            script = self._scripts[name] = self.client.register_script(script_source(name))
        return script

    async def apply(self, algorithm: Algorithm, key: str, cost: int, now: float | None) -> Decision:
        local = self.local_reject and now is None  # explicit times are for tests: no shortcut
        if local and self._refused:
            remembered = self._refused.get((id(algorithm), key, cost))
            if remembered is not None:
                left = remembered[0] - time.monotonic()
                if left > 0:
                    return replace(remembered[1], retry_after=left)
                del self._refused[(id(algorithm), key, cost)]
        decision = await self._apply(algorithm, key, cost, now)
        if local and not decision.allowed and decision.retry_after > 0:
            if len(self._refused) >= self._local_keys:
                del self._refused[next(iter(self._refused))]
            until = time.monotonic() + decision.retry_after
            self._refused[(id(algorithm), key, cost)] = (until, decision)
        return decision

    async def _apply(
        self, algorithm: Algorithm, key: str, cost: int, now: float | None
    ) -> Decision:
        args: list[Any] = ["" if now is None else repr(now), cost]
        for rate in algorithm.rates:
            args += [rate.limit, repr(rate.period), rate.capacity]
        try:
            reply = await self._script(algorithm.name)(keys=state_keys(algorithm, key), args=args)
        except Exception as exc:
            raise BackendUnavailable("redis", f"{type(exc).__name__}: {exc}") from exc
        outcomes = [
            Outcome(
                bool(reply[i]),
                None,
                int(reply[i + 1]),
                float(reply[i + 2]),
                float(reply[i + 3]),
                0.0,
            )
            for i in range(0, len(reply), 4)
        ]
        return combine(algorithm.rates, outcomes)

    # -- concurrency leases ------------------------------------------------------------------

    async def acquire_slot(
        self, key: str, limit: int, lease: float, token: str, now: float | None
    ) -> tuple[bool, int, float]:
        """Take a lease on one of ``limit`` slots: (acquired, in flight, retry after seconds)."""
        script = self._scripts.get("concurrency_acquire")
        if script is None:
            lua = resources.files("tailguard.ratelimit") / "lua" / "concurrency_acquire.lua"
            script = self._scripts["concurrency_acquire"] = self.client.register_script(
                lua.read_text()
            )
        args = ["" if now is None else repr(now), limit, repr(lease), token]
        try:
            ok, in_flight, retry = await script(keys=[key], args=args)
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
