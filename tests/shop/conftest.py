"""Fixtures for the shop's tests: the app run in-process (lifespan included) with an httpx
client over ASGI, on the embedded defaults in a temporary data directory unless told otherwise.

``shop`` (async context manager factory): ``async with shop(**settings) as (app, client):``
``sign_in(client, user_id)``: the Authorization header (and the session cookie, kept by the
client) of seeded user ``user_id``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shop.config import load_settings
from shop.entrypoints.app import create_app

ShopFactory = Callable[..., contextlib.AbstractAsyncContextManager[tuple[Any, httpx.AsyncClient]]]


@contextlib.asynccontextmanager
async def run_shop(
    data_dir: Path, **overrides: Any
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The shop on ``data_dir`` (migrated and seeded with the defaults on first use)."""
    # The relay's idle sweep would add a statement at random to the tests that count them;
    # commits still wake it at once.
    overrides.setdefault("relay_interval", 3600.0)
    settings = load_settings(data_dir=data_dir, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            yield app, client


@pytest.fixture(autouse=True)
def patient_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    """/readyz gives each dependency SHOP_READY_TIMEOUT (0.5 s); the tests check what it
    reports, not how fast, and a loaded CI machine may miss that: they give it 10 s."""
    monkeypatch.setenv("SHOP_READY_TIMEOUT", "10")


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory migrated and seeded once per session (the defaults), to copy from."""
    import asyncio

    from shop.adapters.db import Databases
    from shop.bootstrap import prepare_database

    data_dir = tmp_path_factory.mktemp("seeded")

    async def prepare() -> None:
        databases = Databases.from_settings(load_settings(data_dir=data_dir))
        try:
            await prepare_database(databases)
        finally:
            await databases.dispose()

    asyncio.run(prepare())
    return data_dir


@pytest.fixture
def shop(tmp_path: Path, seeded_sqlite: Path) -> ShopFactory:
    """``async with shop(**settings) as (app, client)``: a fresh shop in ``tmp_path``, on a copy
    of the session's seeded SQLite database unless ``database_url`` is given."""

    def factory(
        **overrides: Any,
    ) -> contextlib.AbstractAsyncContextManager[tuple[Any, httpx.AsyncClient]]:
        data_dir = overrides.pop("data_dir", None)
        if data_dir is None:
            data_dir = Path(tempfile.mkdtemp(dir=tmp_path, prefix="shop-"))
            if "database_url" not in overrides:
                for file in seeded_sqlite.glob("shop.db*"):
                    shutil.copy(file, data_dir / file.name)
        return run_shop(data_dir, **overrides)

    return factory


async def sign_in(client: httpx.AsyncClient, user_id: int) -> dict[str, str]:
    """Sign in as seeded user ``user_id``; returns the Authorization header."""
    response = await client.post(
        "/auth/token", data={"username": f"user{user_id}@shop.test", "password": "demo"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _run(factory: Callable[[], Awaitable[None]]) -> None:
    """Run a coroutine in a worker thread's own event loop (from a sync, module-scoped fixture,
    outside the loops pytest-asyncio manages)."""

    async def main() -> None:
        await factory()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, main()).result(timeout=60)


async def pg_admin(server: Any, statement: str) -> None:
    """Run ``statement`` outside a transaction (CREATE / DROP DATABASE) on ``server``."""
    engine = create_async_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


@contextlib.contextmanager
def fresh_databases(database_url: str, prefix: str, count: int) -> Iterator[list[str]]:
    """``count`` new PostgreSQL databases on the ``database_url`` server (URLs), dropped after."""
    server = make_url(database_url)
    names = [f"{prefix}_{uuid.uuid4().hex[:12]}_{i}" for i in range(count)]
    made: list[str] = []
    try:
        for name in names:
            _run(lambda name=name: pg_admin(server, f'CREATE DATABASE "{name}"'))
            made.append(name)
        yield [server.set(database=n).render_as_string(hide_password=False) for n in names]
    finally:
        for name in made:
            _run(
                lambda name=name: pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            )


@pytest.fixture(scope="module")
def shop_database(database_url: str) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database on the ``database_url`` server, for this module;
    the first shop started on it migrates and seeds it."""
    with fresh_databases(database_url, "shop_it", 1) as (url,):
        yield url


SETTLE_SECONDS = 30.0
"""Longest ``settle`` waits for the order events to be applied."""


async def settle(app: Any) -> None:
    """Wait until every outbox row is published and every event applied (the stock of
    confirmed and failed orders is settled by the event worker)."""
    svc = app.state.services
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    while True:
        backlog = 0
        for make_uow in svc.shards.targets:
            async with make_uow() as uow:
                backlog += await uow.outbox.backlog()
        if backlog == 0 and (await svc.stream.info()).settled:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"events not settled in {SETTLE_SECONDS} s (backlog {backlog})")
        await asyncio.sleep(0.02)
