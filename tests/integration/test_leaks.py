"""Leak checks on real PostgreSQL and Redis: a request that forgets to close its connection,
session or pub/sub is caught; one that closes them passes, and so does a session fixture that
gives its connection back at teardown (the plugin checks after every fixture's teardown)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from tailguard.observe.leaks import ConnectionLeak, assert_no_leaks, checked_out, redis_in_use
from tailguard.observe.pytest_plugin import LeakCheckFactory


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=5)
    yield engine
    await engine.dispose()


async def test_forgotten_connection_is_caught(engine: AsyncEngine) -> None:
    async def leaky_request() -> Any:
        conn = await engine.connect()
        await conn.execute(text("SELECT 1"))
        return conn  # the handler forgot `await conn.close()`

    conn = await leaky_request()
    assert checked_out(engine) == 1
    with pytest.raises(ConnectionLeak, match=r"1 connection\(s\) still checked out of postgresql"):
        assert_no_leaks(engine)
    await conn.close()
    assert_no_leaks(engine)


async def test_forgotten_session_is_caught(engine: AsyncEngine) -> None:
    session = AsyncSession(engine)
    await session.execute(text("SELECT 1"))  # a transaction holds its connection until closed
    with pytest.raises(ConnectionLeak) as info:
        assert_no_leaks(engine)
    assert info.value.leaks == [(engine.url.render_as_string(hide_password=True), 1)]
    await session.close()

    async with AsyncSession(engine) as session:  # the fix
        await session.execute(text("SELECT 1"))
    assert_no_leaks(engine)


async def test_forgotten_pubsub_is_caught(redis_client: Any) -> None:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe("tgtest:leaks")  # a pub/sub keeps its own connection
    assert redis_in_use(redis_client) == 1
    with pytest.raises(ConnectionLeak, match=r"1 connection\(s\) still checked out of .*Redis"):
        assert_no_leaks(redis_client)
    await pubsub.aclose()
    await redis_client.ping()
    assert_no_leaks(redis_client)


async def test_fixture_passes_a_clean_request(
    engine: AsyncEngine,
    redis_client: Any,
    redis_prefix: str,
    no_leaked_connections: LeakCheckFactory,
) -> None:
    no_leaked_connections(engine, redis_client)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    await redis_client.set(f"{redis_prefix}clean", 1)


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """The usual session fixture: its connection goes back to the pool at teardown."""
    async with AsyncSession(engine) as session:
        yield session


async def test_a_session_fixture_is_no_leak(
    engine: AsyncEngine, session: AsyncSession, no_leaked_connections: LeakCheckFactory
) -> None:
    no_leaked_connections(engine)
    await session.execute(text("SELECT 1"))
    assert checked_out(engine) == 1  # still out at the end of the body: fine, until teardown


GENERATED_TESTS = """
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine


@pytest.fixture
async def engine():
    engine = create_async_engine("{url}")
    yield engine
    await engine.dispose()  # resets the pool's own count of checked-out connections


@pytest.fixture
async def session(engine):
    async with AsyncSession(engine) as session:
        yield session


async def test_session_fixture(engine, session, no_leaked_connections):
    no_leaked_connections(engine)
    await session.execute(text("SELECT 1"))


async def test_leak(engine, no_leaked_connections):
    no_leaked_connections(engine)
    conn = await engine.connect()
    await conn.execute(text("SELECT 1"))
    test_leak.conn = conn  # kept alive, so the leak is ours and not the GC's


async def test_failure_is_reported_once(engine, no_leaked_connections):
    no_leaked_connections(engine)
    conn = await engine.connect()
    await conn.execute(text("SELECT 1"))
    test_failure_is_reported_once.conn = conn
    assert False, "the real failure"
"""


def test_plugin_checks_after_teardown(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "test_generated.py").write_text(GENERATED_TESTS.replace("{url}", database_url))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tailguard.observe.pytest_plugin",
         "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", "-W", "ignore", "test_generated.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    out = result.stdout
    assert out.splitlines()[-1].startswith("1 failed, 2 passed, 1 error"), out
    assert "ERROR at teardown of test_leak " in out
    assert "1 connection(s) still checked out of postgresql+asyncpg://" in out
    assert "FAILED test_generated.py::test_failure_is_reported_once - AssertionError" in out
