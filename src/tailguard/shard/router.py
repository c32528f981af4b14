"""``ShardRouter``: a key to its shard's engine, a session on the right shard, and
scatter-gather across every shard with a concurrency bound and per-shard timeouts.

::

    from tailguard.shard import JumpHash, ShardRouter

    router = ShardRouter(JumpHash(4), engines)      # engines[i] serves shard i
    async with router.session(user_id) as session:  # an AsyncSession on user_id's shard
        session.add(Order(user_id=user_id, ...))
        await session.commit()

    async def newest(engine, shard):
        async with engine.connect() as conn:
            result = await conn.execute(select(Order).order_by(Order.created_at.desc()).limit(10))
            return result.all()

    gathered = await router.gather(newest, timeout=0.5)   # 0.5 s per shard
    top = gathered.merged(key=lambda row: row.created_at, reverse=True, limit=10)
    if not gathered.complete:
        log.warning("partial result, shards %s failed", gathered.failed)

Targets are anything: SQLAlchemy ``AsyncEngine`` objects (``session`` needs those), URLs,
clients. SQLAlchemy is imported only when ``session`` is first used.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from tailguard.errors import ConfigurationError, DeadlineExceeded
from tailguard.shard.gathered import Gathered, ShardError
from tailguard.shard.strategies import Strategy

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["ShardRouter"]

K = TypeVar("K")
T = TypeVar("T")
R = TypeVar("R")

Task = asyncio.Task[Any]


def _check_concurrency(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError("concurrency", value, "None or an int >= 1 (shards at once)")
    return value


def _check_timeout(value: object) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError("timeout", value, "None or a number of seconds > 0")
    return float(value)


class ShardRouter(Generic[K, T]):
    """Routes keys to ``targets[strategy.shard(key)]`` and fans calls out to every shard.

    ``targets`` holds one target per shard, in shard order: as many as ``strategy.n``.
    ``concurrency`` (shards queried at once) and ``timeout`` (seconds per shard) are the
    defaults of :meth:`gather`; ``None`` means unbounded.
    """

    def __init__(
        self,
        strategy: Strategy[K],
        targets: Sequence[T],
        *,
        concurrency: int | None = None,
        timeout: float | None = None,
    ) -> None:
        n = getattr(strategy, "n", None)
        if not isinstance(n, int) or not callable(getattr(strategy, "shard", None)):
            raise ConfigurationError(
                "strategy", strategy, "a strategy with n shards (Modulo, StableHash, JumpHash, "
                "Rendezvous); ByMonth names shards by month and needs no router"
            )  # fmt: skip
        if isinstance(targets, str | bytes) or len(targets) != n:
            count = len(targets) if not isinstance(targets, str | bytes) else "a string of"
            raise ConfigurationError(
                "targets", f"{count} targets", f"{n}, one per shard of {strategy!r}"
            )
        self.strategy: Strategy[K] = strategy
        self.targets: tuple[T, ...] = tuple(targets)
        self.concurrency = _check_concurrency(concurrency)
        self.timeout = _check_timeout(timeout)

    def __repr__(self) -> str:
        return f"ShardRouter({self.strategy!r}, {len(self.targets)} targets)"

    def __len__(self) -> int:
        return len(self.targets)

    def shard(self, key: K) -> int:
        """The shard number of ``key``."""
        return self.strategy.shard(key)

    def target(self, key: K) -> T:
        """The target (engine) serving ``key``."""
        return self.targets[self.strategy.shard(key)]

    def split(self, keys: Iterable[K]) -> dict[int, list[K]]:
        """``keys`` grouped by shard (shards in order, keys in the order given): one batch
        per shard, for bulk writes and ``WHERE id IN (...)`` reads."""
        groups: dict[int, list[K]] = {}
        shard = self.strategy.shard
        for key in keys:
            groups.setdefault(shard(key), []).append(key)
        return dict(sorted(groups.items()))

    def session(self, key: K, **options: Any) -> AbstractAsyncContextManager[AsyncSession]:
        """``async with router.session(key) as s``: an ``AsyncSession`` on ``key``'s shard.

        ``options`` go to ``AsyncSession`` (e.g. ``expire_on_commit=False``); the target
        must be an ``AsyncEngine`` (or an ``AsyncConnection``).
        """
        return self.session_at(self.strategy.shard(key), **options)

    @asynccontextmanager
    async def session_at(self, shard: int, **options: Any) -> AsyncIterator[AsyncSession]:
        """``async with router.session_at(2) as s``: an ``AsyncSession`` on shard 2."""
        from sqlalchemy.ext.asyncio import AsyncSession

        bind: Any = self.targets[self._index(shard)]
        async with AsyncSession(bind, **options) as session:
            yield session

    def _index(self, shard: object) -> int:
        if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < len(self):
            raise ConfigurationError("shard", shard, f"a shard number in [0, {len(self)})")
        return shard

    async def gather(
        self,
        fn: Callable[[T, int], Awaitable[R]],
        *,
        shards: Iterable[int] | None = None,
        concurrency: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per shard, not for the whole gather
        return_partial: bool = True,
    ) -> Gathered[R]:
        """Run ``await fn(target, shard)`` on every shard (or on ``shards``) concurrently.

        At most ``concurrency`` run at once (default: the router's, else all); each gets
        ``timeout`` seconds once it has a slot (default: the router's, else none), and
        fails with ``DeadlineExceeded`` past it. With ``return_partial`` (the default) a
        failed shard is reported in ``Gathered.errors`` and the others still answer; without
        it the first failure cancels the others and raises :class:`ShardError`. Cancelling
        the gather cancels every shard's call and waits for them to finish.
        """
        chosen = (
            list(range(len(self))) if shards is None else sorted({self._index(s) for s in shards})
        )
        limit = _check_concurrency(concurrency) or self.concurrency or max(1, len(chosen))
        per_shard = _check_timeout(timeout) if timeout is not None else self.timeout
        slots = asyncio.Semaphore(limit)
        loop = asyncio.get_running_loop()
        elapsed: dict[int, float] = {}
        targets = self.targets

        async def one(shard: int) -> R:
            async with slots:
                start = loop.time()
                try:
                    if per_shard is None:
                        return await fn(targets[shard], shard)
                    scope = asyncio.timeout(per_shard)
                    try:
                        async with scope:
                            return await fn(targets[shard], shard)
                    except TimeoutError as exc:
                        if scope.expired():
                            raise DeadlineExceeded(f"shard {shard}", per_shard) from exc
                        raise
                finally:
                    elapsed[shard] = loop.time() - start

        tasks = {shard: asyncio.create_task(one(shard)) for shard in chosen}
        if not tasks:
            return Gathered({}, {}, {})
        try:
            await _wait(tasks, fail_fast=not return_partial)
        finally:
            await _cancel_unfinished(tasks.values())
        results: dict[int, R] = {}
        errors: dict[int, BaseException] = {}
        for shard, task in tasks.items():
            error = _error(task, shard)
            if error is None:
                results[shard] = task.result()
            else:
                errors[shard] = error
        return Gathered(results, errors, dict(sorted(elapsed.items())))


def _error(task: Task, shard: int) -> BaseException | None:
    """The task's exception (marking it retrieved), or None if it returned."""
    if task.cancelled():
        return asyncio.CancelledError(f"shard {shard} was cancelled")
    return task.exception()


async def _wait(tasks: dict[int, asyncio.Task[R]], *, fail_fast: bool) -> None:
    """Wait for every task; with ``fail_fast``, raise ``ShardError`` at the first failure."""
    if not fail_fast:
        await asyncio.wait(tasks.values())
        return
    shard_of = {task: shard for shard, task in tasks.items()}
    pending: set[Task] = set(tasks.values())
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        failures = [(shard_of[t], e) for t in done if (e := _error(t, shard_of[t])) is not None]
        if failures:
            shard, error = min(failures, key=lambda f: f[0])
            raise ShardError(shard, error) from error


async def _cancel_unfinished(tasks: Iterable[Task]) -> None:
    """Cancel what still runs and wait for it; mark every outcome retrieved (no warnings)."""
    unfinished = [task for task in tasks if not task.done()]
    for task in unfinished:
        task.cancel()
    if unfinished:
        await asyncio.wait(unfinished)
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()
