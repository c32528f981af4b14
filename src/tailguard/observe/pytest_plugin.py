"""pytest fixtures that fail a test which runs an N+1 loop or leaves a connection checked out.

::

    async def test_orders_page(engine, redis_client, query_counter, no_leaked_connections):
        counter = query_counter(engine)            # "raise" mode, one scope over the whole test
        no_leaked_connections(engine, redis_client)
        await list_orders(engine)                  # an N+1 loop here fails the test
        assert counter.total <= 3                  # statements the test ran, if you care

Enable as a plugin (``-p tailguard.observe.pytest_plugin``, or ``pytest_plugins`` in the root
conftest): the checks then run right after the test body, so a finding fails the test itself,
with the shapes and counts as the message. Imported into a test module instead (``from
tailguard.observe.pytest_plugin import query_counter``), the fixtures work without the hook:
the checks run at their teardown and a finding shows as an error in teardown. Either way a
test that already failed is not reported twice.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from typing import Any, Protocol

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from tailguard.observe.leaks import ConnectionLeak, assert_no_leaks
from tailguard.observe.queries import NPlusOneDetected, QueryCounter

__all__ = [
    "LeakCheckFactory",
    "QueryCounterFactory",
    "no_leaked_connections",
    "query_counter",
]


class QueryCounterFactory(Protocol):
    def __call__(self, engine: Engine | AsyncEngine, *, threshold: int = 5) -> QueryCounter: ...


class LeakCheckFactory(Protocol):
    def __call__(self, *resources: Any) -> None: ...


class _Check:
    """A check that runs once: after the test body (plugin hook) or at fixture teardown."""

    def __init__(self, run: Callable[[], None]) -> None:
        self._run = run
        self.done = False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self._run()


_CHECKS = pytest.StashKey[list[_Check]]()


def _run_checks(checks: list[_Check]) -> list[str]:
    problems = []
    for check in checks:
        try:
            check()
        except (NPlusOneDetected, ConnectionLeak) as exc:
            problems.append(str(exc))
    return problems


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After a passing test body, run its checks: a finding fails the test."""
    checks = item.stash.get(_CHECKS, [])
    try:
        result = yield
    except BaseException:
        for check in checks:  # the test failed already: its checks would only add noise
            check.done = True
        raise
    problems = _run_checks(checks)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return result


def _checks(request: pytest.FixtureRequest) -> list[_Check]:
    checks: list[_Check] = request.node.stash.setdefault(_CHECKS, [])
    return checks


@pytest.fixture
def query_counter(request: pytest.FixtureRequest) -> Iterator[QueryCounterFactory]:
    """``query_counter(engine, threshold=5)``: a ``QueryCounter`` in ``"raise"`` mode with a
    scope over the whole test (every task); an N+1 finding in it fails the test."""
    checks = _checks(request)
    counters: list[QueryCounter] = []

    def make(engine: Engine | AsyncEngine, *, threshold: int = 5) -> QueryCounter:
        counter = QueryCounter(engine, threshold=threshold, on_n_plus_one="raise")
        counters.append(counter)
        scope = counter.scope(request.node.nodeid, all_tasks=True)
        scope.__enter__()
        checks.append(_Check(lambda: scope.__exit__(None, None, None)))
        return counter

    try:
        yield make
        problems = _run_checks(checks)
    finally:
        for counter in counters:
            counter.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def no_leaked_connections(request: pytest.FixtureRequest) -> Iterator[LeakCheckFactory]:
    """``no_leaked_connections(engine, redis_client, ...)``: fail the test when any of them
    still has a connection checked out at its end."""
    checks = _checks(request)

    def watch(*resources: Any) -> None:
        checks.append(_Check(lambda: assert_no_leaks(*resources)))

    yield watch
    problems = _run_checks(checks)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
