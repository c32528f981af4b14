"""Fixtures for the stack's tests: real HAProxy, real PostgreSQL (a fresh ``shop_stack_<hex>``
database per module, created by the stack and dropped afterwards) and the suite's Redis under
a namespace of the module's own (its keys deleted afterwards). Every port is a free loopback
port; every stack is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shop.adapters.keys import namespace_prefixes
from shop.deploy import Stack, StackConfig
from shop.deploy.plan import find_haproxy
from tests.services import delete_prefixed_keys, skip_or_fail

SEED = {"seed_users": 30, "seed_products": 20, "seed_orders": 60}
"""A small catalogue: seeding takes well under a second."""


def _drop_database(server_url: str, name: str) -> None:
    async def drop() -> None:
        engine = create_async_engine(
            make_url(server_url).set(database="postgres"),
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
        )
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await engine.dispose()

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, drop()).result(timeout=60)


@pytest.fixture(scope="session")
def haproxy() -> str:
    """The haproxy binary (`make haproxy` installs it)."""
    try:
        return find_haproxy()
    except FileNotFoundError as exc:
        skip_or_fail(str(exc))


@pytest.fixture(scope="session")
def worker_available() -> bool:
    """True when this installation has ``shop worker`` (the stack then runs it)."""
    out = subprocess.run(
        [sys.executable, "-m", "shop.entrypoints.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return "worker" in out


@pytest.fixture(scope="module")
def stack_database(database_url: str) -> Iterator[str]:
    """The URL of a PostgreSQL database that does not exist yet (the stack creates it),
    dropped at the end of the module."""
    name = f"shop_stack_{uuid.uuid4().hex[:12]}"
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(database_url, name)


@pytest.fixture(scope="module")
def stack_namespace(redis_url: str) -> Iterator[str]:
    """A SHOP_NAMESPACE of the module's own; its Redis keys are deleted at the end."""
    namespace = f"st{uuid.uuid4().hex[:12]}"
    try:
        yield namespace
    finally:
        for prefix in namespace_prefixes(namespace):
            delete_prefixed_keys(redis_url, prefix)


@pytest.fixture(scope="module")
def stack_config(
    haproxy: str,
    worker_available: bool,
    stack_database: str,
    stack_namespace: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> StackConfig:
    """Two instances, one recommender, free ports, fast health checks (every 0.3 s, out after
    3 failures, back after 1), no automatic restart (a killed instance stays down until the
    test restarts it)."""
    return StackConfig(
        instances=2,
        recommenders=1,
        worker=worker_available,
        database_url=stack_database,
        redis_url=redis_url,
        namespace=stack_namespace,
        state_dir=tmp_path_factory.mktemp("stack"),
        port=0,
        stats_port=0,
        base_port=0,
        simulator_port=0,
        check_interval=0.3,
        fall=3,
        rise=1,
        autorestart=False,
        **SEED,
    )


@pytest.fixture(scope="module")
def stack(stack_config: StackConfig) -> Iterator[Stack]:
    """The module's running stack."""
    running = Stack(stack_config)
    try:
        running.start(timeout=90)
        yield running
    finally:
        running.stop()


def other_state_dir(config: StackConfig, tmp_path: Path) -> StackConfig:
    """The same stack in another state directory (a second stack on the same services)."""
    return replace(config, state_dir=tmp_path / "stack")


def get(
    url: str, *, headers: dict[str, str] | None = None, local_address: str | None = None
) -> httpx.Response:
    """GET ``url`` on a new connection (from ``local_address``), so HAProxy balances each."""
    transport = httpx.HTTPTransport(local_address=local_address)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(url, headers=headers)


def served_by(url: str, *, local_address: str | None = None) -> str:
    """The instance that answered a GET of ``url`` through HAProxy (``X-Served-By``)."""
    response = get(url, local_address=local_address)
    assert response.status_code == 200, response.text
    return response.headers["x-served-by"]


def sign_in(base_url: str, user_id: int) -> dict[str, str]:
    """Sign in as seeded user ``user_id`` at ``base_url``; the Authorization header."""
    response = httpx.post(
        base_url + "/auth/token",
        data={"username": f"user{user_id}@shop.test", "password": "demo"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
