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
from tailguard.ratelimit.decision import Decision, Outcome, combine, new_decision
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


def _arg(value: bytes) -> bytes:
    """One bulk string of the Redis protocol."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


class _Static:
    """What every check of one algorithm sends: its script, the limit arguments, and the
    EVALSHA up to the keys, then from the cost on, encoded once."""

    __slots__ = ("_tails", "head", "limits", "source")

    def __init__(self, algorithm: Algorithm) -> None:
        self.source = script_source(algorithm.script)
        # As bytes: redis-py sends bytes as they are, and encodes anything else per call.
        self.limits: list[bytes] = []
        for rate in algorithm.rates:
            self.limits += [b"%d" % rate.limit, repr(rate.period).encode(), b"%d" % rate.capacity]
        sha = hashlib.sha1(self.source.encode()).hexdigest().encode()
        n_keys = len(algorithm.rates)
        # EVALSHA sha numkeys key... now("" = the server's TIME) cost limits...
        self.head = b"*%d\r\n$7\r\nEVALSHA\r\n" % (3 + n_keys + 2 + len(self.limits))
        self.head += _arg(sha) + _arg(b"%d" % n_keys)
        self._tails: dict[int, bytes] = {}

    def tail(self, cost: int) -> bytes:
        tail = self._tails.get(cost)
        if tail is None:
            tail = _arg(b"") + _arg(b"%d" % cost) + b"".join(map(_arg, self.limits))
            if len(self._tails) < 16:
                self._tails[cost] = tail
        return tail


def _no_script(exc: Exception) -> bool:
    """Whether the server answered that it does not know the script."""
    return type(exc).__name__ == "NoScriptError" or "NOSCRIPT" in str(exc)


def _plain_pool(client: Any) -> tuple[Any, tuple[type[BaseException], ...]]:
    """The connection pool of a plain ``redis.asyncio.Redis`` (pooled connections to one
    server, UTF-8 keys), whose checks can go pre-encoded, and its connection errors; ``None``
    for anything else (a cluster, a single-connection client, a subclass)."""
    try:
        from redis.asyncio import Redis
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # pragma: no cover - the redis extra is what brings this storage
        return None, ()
    if type(client) is not Redis or client.single_connection_client:
        return None, ()
    pool = client.connection_pool
    if str(pool.connection_kwargs.get("encoding", "utf-8")).lower().replace("-", "") != "utf8":
        return None, ()
    return pool, (RedisConnectionError,)


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
        self._shas: dict[str, bytes] = {}
        self.local_reject = local_reject
        self._local_keys = local_keys
        # (state key prefix, limits, key, cost) -> (monotonic time until which it is refused,
        # the refusal). Limiters with the same prefix and limits share state, and refusals.
        self._refused: dict[tuple[str, str, str, int], tuple[float, Decision]] = {}
        self._pool, self._connection_errors = _plain_pool(client)

    async def _eval_packed(self, static: _Static, keys: list[str], cost: int) -> Any:
        """EVALSHA sent pre-encoded on a pooled connection of a plain ``redis.asyncio.Redis``.

        It skips the client's per-command machinery (argument encoding, the retry wrapper,
        its own metrics), which costs more than the script on the server. A NOSCRIPT reply
        loads the script. A broken connection (a restarted server leaves every pooled one
        stale) is tried once more on a fresh one; if it broke after the server ran the
        script, that request counts twice."""
        parts = [static.head]
        for k in keys:
            kb = k.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(kb), kb))
        parts.append(static.tail(cost))
        packed = b"".join(parts)
        pool = self._pool
        reconnected = reloaded = False
        while True:
            conn = await pool.get_connection()
            try:
                # redis-py disconnects the connection itself on an error or a cancellation
                # mid-command, so a half-read reply never reaches the next user.
                await conn.send_packed_command(packed)
                return await conn.read_response()
            except self._connection_errors:
                if reconnected:
                    raise
                reconnected = True
            except Exception as exc:
                if reloaded or not _no_script(exc):
                    raise
                reloaded = True
                # On this connection: it just answered, where another may be stale.
                await conn.send_command("SCRIPT", "LOAD", static.source)
                await conn.read_response()
            finally:
                await pool.release(conn)

    async def _eval(self, name: str, source: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA the script, loading it first if the server does not know it."""
        sha = self._shas.get(name)
        if sha is None:
            sha = self._shas[name] = hashlib.sha1(source.encode()).hexdigest().encode()
        try:
            return await self.client.evalsha(sha, len(keys), *keys, *args)
        except Exception as exc:
            if not _no_script(exc):
                raise
            await self.client.script_load(source)
            return await self.client.evalsha(sha, len(keys), *keys, *args)

    @staticmethod
    def _static(algorithm: Algorithm) -> _Static:
        """The script, the limit arguments and the wire form of ``algorithm``'s checks,
        computed once and kept on it (not here: limiters come and go, a storage lives long)."""
        cached: _Static | None = getattr(algorithm, "_redis_static", None)
        if cached is None:
            cached = _Static(algorithm)
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
        static = self._static(algorithm)
        keys = state_keys(algorithm, key)
        try:
            if self._pool is not None and now is None:
                reply = await self._eval_packed(static, keys, cost)
            else:
                args = [b"" if now is None else repr(now), b"%d" % cost, *static.limits]
                reply = await self._eval(algorithm.script, static.source, keys, args)
        except Exception as exc:
            raise BackendUnavailable("redis", f"{type(exc).__name__}: {exc}") from exc
        rates = algorithm.rates
        if len(rates) == 1:
            return new_decision(
                Decision,
                (reply[0] == 1, rates[0].limit, reply[1], reply[2] / 1e6, reply[3] / 1e6, 0),
            )
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
