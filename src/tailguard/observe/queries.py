"""``QueryCounter``: SQL statements per unit of work, and N+1 detection, on SQLAlchemy events.

::

    counter = QueryCounter(engine, threshold=5, on_n_plus_one="warn")
    async with counter.scope("GET /orders") as stats:
        await handler()
    stats.count, stats.by_shape, stats.n_plus_one

A statement's *shape* is its SQL with comments dropped, whitespace collapsed, literals and
placeholders turned into ``?`` and ``IN (?, ?, ?)`` / multi-row ``VALUES`` lists collapsed. An
N+1 finding is one query shape (``SELECT``; every shape with ``statements="all"``) executed
``threshold`` times or more in one scope, with at least ``threshold`` distinct parameter sets:
the loop that should have been one query. One execution is one statement however many rows
it sends: an ``executemany``, and the ``insertmanyvalues`` batches of one ORM flush (one per
row on SQLite with ``RETURNING``), count once. At the end of a scope, ``"warn"`` logs a warning
per finding on ``tailguard.observe.queries`` (production), ``"raise"`` raises
``NPlusOneDetected`` (tests), ``"ignore"`` only records.

Scopes live in a ``ContextVar``, so concurrent requests on one event loop never mix; a statement
outside every scope only adds to ``QueryCounter.total``.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from tailguard.errors import ConfigurationError, NPlusOneDetected
from tailguard.observe._shapes import is_read, parameters_key, statement_shape

__all__ = [
    "NPlusOne",
    "NPlusOneDetected",
    "QueryCounter",
    "QueryCounterMiddleware",
    "QueryStats",
    "ShapeStats",
    "Statements",
    "statement_shape",
]

OnNPlusOne = Literal["warn", "raise", "ignore"]
Statements = Literal["select", "all"]

_log = logging.getLogger("tailguard.observe.queries")
_MAX_DISTINCT = 10_000  # parameter-set hashes kept per shape and scope, to bound memory
_MAX_STATEMENTS = 10_000  # SQL strings kept per scope (a long-lived scope must not grow forever)


@dataclass
class ShapeStats:
    """One statement shape in one scope: ``count`` executions, ``distinct`` parameter sets."""

    count: int = 0
    keys: set[int] = field(default_factory=set, repr=False)

    @property
    def distinct(self) -> int:
        """Distinct parameter sets seen (counting stops at 10,000)."""
        return len(self.keys)


@dataclass(frozen=True)
class NPlusOne:
    """``shape`` ran ``count`` times in the scope ``scope``, with ``distinct`` parameter sets."""

    shape: str
    count: int
    scope: str
    distinct: int = 0

    def __str__(self) -> str:
        shape = self.shape if len(self.shape) <= 300 else self.shape[:297] + "..."
        return f"{self.count} x {shape} ({self.distinct} distinct parameter sets)"


@dataclass
class QueryStats:
    """What one scope executed: ``count`` statements, per shape in ``by_shape``, the SQL
    strings in order in ``statements`` (the first 10,000). ``flagged``: the shapes that can be
    findings, ``"select"`` (queries) or ``"all"``."""

    name: str
    threshold: int
    count: int = 0
    by_shape: dict[str, ShapeStats] = field(default_factory=dict)
    statements: list[str] = field(default_factory=list, repr=False)
    flagged: Statements = "select"

    @property
    def n_plus_one(self) -> list[NPlusOne]:
        """Shapes (queries only, unless ``flagged="all"``) run at least ``threshold`` times
        with ``threshold`` distinct parameter sets, the most frequent first."""
        found = [
            NPlusOne(shape, s.count, self.name, s.distinct)
            for shape, s in self.by_shape.items()
            if s.count >= self.threshold
            and s.distinct >= self.threshold
            and (self.flagged == "all" or is_read(shape))
        ]
        return sorted(found, key=lambda f: -f.count)

    def record(self, statement: str, shape: str, key: int) -> None:
        self.count += 1
        if len(self.statements) < _MAX_STATEMENTS:
            self.statements.append(statement)
        stats = self.by_shape.get(shape)
        if stats is None:
            stats = self.by_shape[shape] = ShapeStats()
        stats.count += 1
        if len(stats.keys) < _MAX_DISTINCT:
            stats.keys.add(key)


# One variable for every counter (ContextVars should not be created per instance): the active
# scopes of the current task, innermost last; each statement goes to its own counter's scopes.
_SCOPES: ContextVar[tuple[tuple[QueryCounter, QueryStats], ...]] = ContextVar(
    "tailguard_query_scopes", default=()
)


class QueryCounter:
    """Counts the statements ``engine`` sends to the database, per scope, and finds N+1 loops.

    ``threshold``: executions (and distinct parameter sets) of one shape that make a finding.
    ``on_n_plus_one``: ``"warn"`` (log), ``"raise"`` (``NPlusOneDetected``) or ``"ignore"``.
    ``statements``: ``"select"`` flags queries only; ``"all"`` also ``INSERT`` / ``UPDATE`` /
    ``DELETE`` shapes (an ORM flush of N objects is not one of them: it counts once).
    Use as a context manager, or call ``close()``, to detach from the engine.
    """

    def __init__(
        self,
        engine: Engine | AsyncEngine,
        *,
        threshold: int = 5,
        on_n_plus_one: OnNPlusOne = "warn",
        statements: Statements = "select",
        logger: logging.Logger | None = None,
    ) -> None:
        if threshold < 2:
            raise ConfigurationError("threshold", threshold, "an integer >= 2")
        if on_n_plus_one not in ("warn", "raise", "ignore"):
            raise ConfigurationError("on_n_plus_one", on_n_plus_one, "'warn', 'raise' or 'ignore'")
        if statements not in ("select", "all"):
            raise ConfigurationError("statements", statements, "'select' or 'all'")
        self.engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        self.threshold = threshold
        self.on_n_plus_one: OnNPlusOne = on_n_plus_one
        self.statements: Statements = statements
        self.logger = logger or _log
        self.total = 0  # every statement executed, in a scope or not
        self._everywhere: list[QueryStats] = []  # scopes opened with all_tasks=True
        # executemany executions already counted: SQLAlchemy sends the insertmanyvalues
        # batches of one execution (one per row on SQLite with RETURNING) with one context
        self._executions: weakref.WeakSet[Any] = weakref.WeakSet()
        self._listener = self._before_cursor_execute
        event.listen(self.engine, "before_cursor_execute", self._listener)

    def _before_cursor_execute(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        if executemany and context is not None:
            try:
                if context in self._executions:
                    return  # a further batch of an execution already counted
                self._executions.add(context)
            except TypeError:  # a context without weak references: count every batch
                pass
        self.total += 1
        scopes = _SCOPES.get()
        if not scopes and not self._everywhere:
            return
        shape = statement_shape(statement)
        key = parameters_key(parameters, executemany)
        for counter, stats in scopes:
            if counter is self:
                stats.record(statement, shape, key)
        for stats in self._everywhere:
            stats.record(statement, shape, key)

    def scope(self, name: str, *, all_tasks: bool = False) -> _Scope:
        """A unit of work named ``name`` (``with`` or ``async with``; yields ``QueryStats``).

        It sees the statements of the current task and of the tasks it starts; with
        ``all_tasks=True``, every statement on the engine while it is open (a whole test).
        """
        return _Scope(self, QueryStats(name, self.threshold, flagged=self.statements), all_tasks)

    def report(self, stats: QueryStats) -> None:
        """Act on ``stats``' findings as ``on_n_plus_one`` says (scopes call it at exit)."""
        findings = stats.n_plus_one
        if not findings or self.on_n_plus_one == "ignore":
            return
        if self.on_n_plus_one == "raise":
            raise NPlusOneDetected(findings)
        for finding in findings:
            self.logger.warning("N+1 queries in %r: %s", finding.scope, finding)

    def close(self) -> None:
        """Stop listening to the engine (idempotent)."""
        if event.contains(self.engine, "before_cursor_execute", self._listener):
            event.remove(self.engine, "before_cursor_execute", self._listener)

    def __enter__(self) -> QueryCounter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Scope:
    """The context manager ``QueryCounter.scope()`` returns."""

    def __init__(self, counter: QueryCounter, stats: QueryStats, all_tasks: bool) -> None:
        self.counter = counter
        self.stats = stats
        self.all_tasks = all_tasks
        self._token: Token[tuple[tuple[QueryCounter, QueryStats], ...]] | None = None

    def __enter__(self) -> QueryStats:
        if self.all_tasks:
            self.counter._everywhere.append(self.stats)
        else:
            self._token = _SCOPES.set((*_SCOPES.get(), (self.counter, self.stats)))
        return self.stats

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if self.all_tasks:
            self.counter._everywhere.remove(self.stats)
        elif self._token is not None:
            try:
                _SCOPES.reset(self._token)
            except ValueError:  # exited in another context than entered: drop just this scope
                _SCOPES.set(tuple(s for s in _SCOPES.get() if s[1] is not self.stats))
            self._token = None
        if exc_type is None or self.counter.on_n_plus_one == "warn":
            self.counter.report(self.stats)  # "raise" never hides the error on its way

    async def __aenter__(self) -> QueryStats:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.__exit__(exc_type, *rest)


_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[_Message, _Receive, _Send], Awaitable[None]]


class QueryCounterMiddleware:
    """Pure ASGI: one ``counter`` scope per HTTP request, named ``"GET /orders/{id}"`` (the
    route template, as the golden-signal metrics label it, mounts included; else the raw
    path)."""

    def __init__(self, app: _ASGIApp, *, counter: QueryCounter) -> None:
        from tailguard.observe.signals import UNMATCHED, route_template

        self.app = app
        self.counter = counter
        self._template = route_template
        self._unmatched = UNMATCHED

    async def __call__(self, scope: _Message, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        with self.counter.scope(f"{method} {scope.get('path', '')}") as stats:
            try:
                await self.app(scope, receive, send)
            finally:  # the router sets the route while the app runs
                template = self._template(scope, self.app)
                if template != self._unmatched:
                    stats.name = f"{method} {template}"
