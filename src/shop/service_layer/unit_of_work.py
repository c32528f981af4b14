"""The unit of work: one database transaction, its repositories, and the events it produced."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Protocol, Self

from sqlalchemy.ext.asyncio import AsyncSession

from shop.adapters.effects import EffectsRepository
from shop.adapters.outbox import OutboxRepository
from shop.adapters.repository import (
    IdempotencyRepository,
    OrderRepository,
    ProductRepository,
    UserRepository,
)
from shop.domain.events import Event

__all__ = ["SqlAlchemyUnitOfWork", "UnitOfWork"]


class UnitOfWork(Protocol):
    """What a handler needs: repositories, commit, rollback, and the events to publish.

    ``commit()`` writes the integration events of the aggregates it saw to the outbox in the
    same transaction; ``collect_new_events()`` then yields every event of that commit.
    """

    users: UserRepository
    products: ProductRepository
    orders: OrderRepository
    idempotency: IdempotencyRepository
    outbox: OutboxRepository
    effects: EffectsRepository
    primary_committed: bool

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def flush(self) -> None: ...

    def collect_new_events(self) -> Iterator[Event]: ...


class SqlAlchemyUnitOfWork:
    """``async with uow:`` opens a session; leaving it without ``commit()`` rolls back.

    With ``shard_factory`` (a user's shard, when users live apart from the catalogue) it opens
    two: users, orders, idempotency answers and the outbox on the shard; products, stock and
    the event worker's effects on the primary. ``commit()`` then commits the primary first: a
    failure in between leaves stock reserved for an order that does not exist (released by
    the caller, or found by a sweep), never an order without its reservation.
    """

    def __init__(
        self,
        session_factory: Callable[[], AsyncSession],
        *,
        shard_factory: Callable[[], AsyncSession] | None = None,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self._factory = session_factory
        self._shard_factory = shard_factory
        self._on_outbox = on_outbox
        self._committed: list[Event] = []
        self.session: AsyncSession | None = None
        self.shard_session: AsyncSession | None = None
        self.primary_committed = False
        """True once a split unit of work committed the primary and not yet the shard."""

    @property
    def split(self) -> bool:
        """True when the user's data and the catalogue are in two transactions."""
        return self._shard_factory is not None

    async def __aenter__(self) -> Self:
        session = self.session = self._factory()
        shard = self.shard_session = (
            self._shard_factory() if self._shard_factory is not None else session
        )
        self.users = UserRepository(shard)
        self.products = ProductRepository(session)
        self.orders = OrderRepository(shard)
        self.idempotency = IdempotencyRepository(shard)
        self.outbox = OutboxRepository(shard)
        self.effects = EffectsRepository(session)
        self._committed = []
        self.primary_committed = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self.session = self.session, None
        shard, self.shard_session = self.shard_session, None
        # close() ends the transaction (rolling back what was not committed) and detaches the
        # objects with their loaded state, which the caller may still read; rollback() would
        # expire them first.
        try:
            if shard is not None and shard is not session:
                await shard.close()
        finally:
            if session is not None:
                await session.close()

    def _sessions(self) -> tuple[AsyncSession, AsyncSession]:
        if self.session is None or self.shard_session is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self.session, self.shard_session

    async def commit(self) -> None:
        """Make the transaction's changes durable, with the outbox rows of its integration
        events; a failed commit drops its events (what they say did not happen)."""
        session, shard = self._sessions()
        events = list(self._drain())
        written = await self.outbox.add(events)
        await session.commit()
        if shard is not session:
            self.primary_committed = True  # the shard's part may still fail: see the class
            await shard.commit()
        self._committed.extend(events)
        if written and self._on_outbox is not None:
            self._on_outbox()

    async def rollback(self) -> None:
        """Drop the transaction's changes and the events they produced."""
        list(self._drain())
        session, shard = self._sessions()
        await session.rollback()
        if shard is not session:
            await shard.rollback()

    async def flush(self) -> None:
        """Send pending changes (to learn generated ids) without committing."""
        session, shard = self._sessions()
        await session.flush()
        if shard is not session:
            await shard.flush()

    def collect_new_events(self) -> Iterator[Event]:
        """The events of what was committed, each once."""
        while self._committed:
            yield self._committed.pop(0)

    def _drain(self) -> Iterator[Event]:
        for repo in (self.users, self.products, self.orders):
            for obj in repo.seen:
                events: list[Any] = getattr(obj, "events", None) or []
                while events:
                    yield events.pop(0)
