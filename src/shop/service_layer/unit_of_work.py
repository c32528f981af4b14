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
    """``async with uow:`` opens a session; leaving it without ``commit()`` rolls back."""

    def __init__(
        self,
        session_factory: Callable[[], AsyncSession],
        *,
        on_outbox: Callable[[], None] | None = None,
    ) -> None:
        self._factory = session_factory
        self._on_outbox = on_outbox
        self._committed: list[Event] = []
        self.session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        session = self.session = self._factory()
        self.users = UserRepository(session)
        self.products = ProductRepository(session)
        self.orders = OrderRepository(session)
        self.idempotency = IdempotencyRepository(session)
        self.outbox = OutboxRepository(session)
        self.effects = EffectsRepository(session)
        self._committed = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self.session = self.session, None
        if session is None:
            return
        # close() ends the transaction (rolling back what was not committed) and detaches the
        # objects with their loaded state, which the caller may still read; rollback() would
        # expire them first.
        await session.close()

    def _session(self) -> AsyncSession:
        if self.session is None:
            raise RuntimeError("the unit of work is not open: use `async with uow:`")
        return self.session

    async def commit(self) -> None:
        """Make the transaction's changes durable, with the outbox rows of its integration
        events; a failed commit drops its events (what they say did not happen)."""
        session = self._session()
        events = list(self._drain())
        written = await self.outbox.add(events)
        await session.commit()
        self._committed.extend(events)
        if written and self._on_outbox is not None:
            self._on_outbox()

    async def rollback(self) -> None:
        """Drop the transaction's changes and the events they produced."""
        list(self._drain())
        await self._session().rollback()

    async def flush(self) -> None:
        """Send pending changes (to learn generated ids) without committing."""
        await self._session().flush()

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
