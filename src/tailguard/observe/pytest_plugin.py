"""pytest fixtures that fail a test which runs an N+1 loop or leaves a connection checked out.

::

    async def test_orders_page(engine, redis_client, query_counter, no_leaked_connections):
        counter = query_counter(engine)            # "raise" mode, one scope over the whole test
        no_leaked_connections(engine, redis_client)
        await list_orders(engine)                  # an N+1 loop here fails the test
        assert counter.total <= 3                  # statements the test ran, if you care

Enable as a plugin (``-p tailguard.observe.pytest_plugin``, or ``pytest_plugins`` in the root
conftest). The N+1 check then runs right after the test body, so a finding fails the test
itself, with the shapes and counts as the message. The leak check runs once every fixture of
the test is torn down (a ``with Session(engine) as s: yield s`` fixture has given its
connection back by then), so a leak shows as an error in teardown; the pools are watched by
their events from the ``no_leaked_connections(...)`` call on, so an engine fixture that
disposes its engine hides nothing.

Imported into a test module instead (``from tailguard.observe.pytest_plugin import
query_counter``), the fixtures work without the hooks: both checks run at their own teardown
and a finding shows as an error there. Fixtures tear down in the reverse order of their setup,
so request ``no_leaked_connections`` before the fixtures that hold connections.

Either way, a test that already failed (or errored in setup) is not reported twice: its checks
are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from tailguard.observe.leaks import ConnectionLeak, ConnectionWatch
from tailguard.observe.queries import NPlusOneDetected, QueryCounter, Statements

__all__ = [
    "LeakCheckFactory",
    "QueryCounterFactory",
    "no_leaked_connections",
    "query_counter",
]


class QueryCounterFactory(Protocol):
    def __call__(
        self,
        engine: Engine | AsyncEngine,
        *,
        threshold: int = 5,
        statements: Statements = "select",
    ) -> QueryCounter: ...


class LeakCheckFactory(Protocol):
    def __call__(self, *resources: Any) -> None: ...


@dataclass
class _State:
    """One test's checks. ``failures``: the session's failed reports when the first of them
    was set up; more now means this test failed already."""

    failures: int
    n_plus_one: list[Callable[[], None]] = field(default_factory=list)
    watches: list[ConnectionWatch] = field(default_factory=list)
    leaks_after_teardown: bool = False  # the teardown hook checks the leaks, not the fixture


_STATE = pytest.StashKey[_State]()


def _state(request: pytest.FixtureRequest) -> _State:
    stash: pytest.Stash = request.node.stash
    state = stash.get(_STATE, None)
    if state is None:
        state = stash[_STATE] = _State(request.session.testsfailed)
    return state


def _failed(session: pytest.Session, state: _State) -> bool:
    return session.testsfailed > state.failures


def _check_n_plus_one(state: _State) -> list[str]:
    checks, state.n_plus_one = state.n_plus_one, []  # each runs once
    problems = []
    for check in checks:
        try:
            check()
        except NPlusOneDetected as exc:
            problems.append(str(exc))
    return problems


def _check_leaks(state: _State, *, check: bool) -> list[str]:
    watches, state.watches = state.watches, []
    problems = []
    for watch in watches:
        try:
            if check:
                watch.check()
        except ConnectionLeak as exc:
            problems.append(str(exc))
        finally:
            watch.close()
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After a passing test body, run its N+1 checks: a finding fails the test."""
    result = yield  # a failing body raises on: its checks are skipped, as noise
    state = item.stash.get(_STATE, None)
    if state is not None:
        problems = _check_n_plus_one(state)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Once every fixture of a test that passed is torn down, run its leak checks."""
    state = item.stash.get(_STATE, None)
    if state is None:
        return (yield)
    state.leaks_after_teardown = True
    try:
        result = yield
    except BaseException:
        _check_leaks(state, check=False)
        raise
    problems = _check_leaks(state, check=not _failed(item.session, state))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return result


@pytest.fixture
def query_counter(request: pytest.FixtureRequest) -> Iterator[QueryCounterFactory]:
    """``query_counter(engine, threshold=5, statements="select")``: a ``QueryCounter`` in
    ``"raise"`` mode with a scope over the whole test (every task); an N+1 finding in it fails
    the test."""
    state = _state(request)
    counters: list[QueryCounter] = []

    def make(
        engine: Engine | AsyncEngine, *, threshold: int = 5, statements: Statements = "select"
    ) -> QueryCounter:
        counter = QueryCounter(
            engine, threshold=threshold, on_n_plus_one="raise", statements=statements
        )
        counters.append(counter)
        scope = counter.scope(request.node.nodeid, all_tasks=True)
        scope.__enter__()
        state.n_plus_one.append(lambda: scope.__exit__(None, None, None))
        return counter

    try:
        yield make
        problems = [] if _failed(request.session, state) else _check_n_plus_one(state)
    finally:
        state.n_plus_one.clear()
        for counter in counters:
            counter.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def no_leaked_connections(request: pytest.FixtureRequest) -> Iterator[LeakCheckFactory]:
    """``no_leaked_connections(engine, redis_client, ...)``: fail the test when any of them
    still has a connection checked out once the test's fixtures are torn down."""
    state = _state(request)

    def watch(*resources: Any) -> None:
        state.watches.append(ConnectionWatch(*resources))

    yield watch
    if not state.leaks_after_teardown:  # imported without the hooks: check now
        problems = _check_leaks(state, check=not _failed(request.session, state))
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)
