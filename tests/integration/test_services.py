"""The service fixtures of ``tests/services.py`` work against real servers."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio
from redis.asyncio.cluster import ClusterNode, RedisCluster
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.services import (
    REDIS_CLUSTER_SLOTS,
    RedisClusterInfo,
    ServiceUnavailable,
    free_port,
    postgres_reachable,
    prefixed_keyspace,
    redis_ping,
    require_service,
    resolve_database_url,
    resolve_redis_url,
    skip_or_fail,
    start_redis_cluster,
)


def _closed_port() -> int:
    """A loopback port with (very probably) nothing listening on it."""
    return free_port()


async def _select_one(database_url: str) -> tuple[int, str, str]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            one = (await connection.execute(text("SELECT 1"))).scalar_one()
            row = (await connection.execute(text("SELECT current_database(), current_user"))).one()
            return one, row[0], row[1]
    finally:
        await engine.dispose()


def _cluster_layout(port: int) -> dict[int, list[tuple[int, int]]]:
    """Master port -> its slot ranges, per ``CLUSTER SLOTS`` on the node at ``port``."""
    layout: dict[int, list[tuple[int, int]]] = {}
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) as client:
        for first, last, master, *replicas in client.execute_command("CLUSTER SLOTS"):
            assert replicas == [], "the cluster was asked for no replicas"
            layout.setdefault(int(master[1]), []).append((int(first), int(last)))
    return layout


def _assert_three_masters_cover_all_slots(info: RedisClusterInfo) -> None:
    ports = [port for _, port in info.startup_nodes]
    assert len(set(ports)) == 3
    for port in ports:  # every node has the same, complete view
        layout = _cluster_layout(port)
        assert sorted(layout) == sorted(ports)
        slots = sorted(
            slot for ranges in layout.values() for a, b in ranges for slot in range(a, b + 1)
        )
        assert slots == list(range(REDIS_CLUSTER_SLOTS)), "slots missing or assigned twice"
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5) as client:
            nodes = client.execute_command("CLUSTER NODES")
        assert len(nodes) == 3
        assert all("master" in node["flags"] for node in nodes.values())


# -- Redis -----------------------------------------------------------------------------------


async def test_redis_url_answers_ping(redis_url: str) -> None:
    assert redis_ping(redis_url)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_redis_set_get_round_trip(redis_url: str, redis_prefix: str) -> None:
    assert redis_prefix.startswith("tgtest:")
    assert redis_prefix.endswith(":")
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        key = f"{redis_prefix}greeting"
        assert await client.set(key, "héllo", ex=60) is True
        assert await client.get(key) == "héllo".encode()
        assert 0 < await client.ttl(key) <= 60
    finally:
        await client.aclose()


@pytest.fixture
def prefix_cleanup_check(redis_url: str) -> Iterator[dict[str, str]]:
    """Checks, after ``redis_prefix`` has been torn down, that only its keys are gone.

    Request it *before* ``redis_prefix``: fixtures are torn down in reverse order of setup,
    so this teardown runs after the prefix's. If that order ever changed, it would fail
    (keys still present), never pass by accident.
    """
    seen: dict[str, str] = {}
    yield seen
    with redis.Redis.from_url(redis_url) as client:
        leftover = list(client.scan_iter(match=f"{seen['prefix']}*"))
        outside = client.get(seen["outside"])
        client.delete(seen["outside"])
    assert leftover == []
    assert outside == b"keep me"


async def test_redis_prefix_deletes_its_keys_afterwards(
    prefix_cleanup_check: dict[str, str], redis_prefix: str, redis_url: str
) -> None:
    outside = f"tgtest-outside:{uuid.uuid4().hex}"
    prefix_cleanup_check.update(prefix=redis_prefix, outside=outside)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        await client.set(outside, "keep me", ex=60)
        await client.mset({f"{redis_prefix}{i}": i for i in range(20)})
        await client.hset(f"{redis_prefix}hash", mapping={"a": 1})
        assert len([k async for k in client.scan_iter(match=f"{redis_prefix}*")]) == 21
    finally:
        await client.aclose()


def test_prefixed_keyspace_deletes_many_keys_and_only_its_own(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        with prefixed_keyspace(redis_url) as prefix:
            client.mset({f"{prefix}{i}": i for i in range(1234)})  # more than one DEL batch
            near_miss = f"{prefix[:-1]}x"  # same text, but not under the ":" boundary
            client.set(near_miss, 1, ex=60)
            assert client.exists(f"{prefix}0", f"{prefix}1233") == 2
        try:
            assert list(client.scan_iter(match=f"{prefix}*")) == []
            assert client.get(near_miss) == b"1"
        finally:
            client.delete(near_miss)


@pytest.mark.slow
async def test_throwaway_redis_is_started_when_nothing_answers() -> None:
    unreachable = f"redis://127.0.0.1:{_closed_port()}/0"
    assert not redis_ping(unreachable)

    url, server = await asyncio.to_thread(require_service, resolve_redis_url, unreachable)
    assert server is not None
    try:
        assert url != unreachable
        assert url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.asyncio.Redis.from_url(url)
        try:
            await client.set("k", "v")
            assert await client.get("k") == b"v"
            info = await client.info("persistence")
            assert info["aof_enabled"] == 0
        finally:
            await client.aclose()
    finally:
        await asyncio.to_thread(server.stop)
    assert server.process.returncode is not None
    assert not redis_ping(url)
    assert not server.directory.exists()


# -- PostgreSQL ------------------------------------------------------------------------------


async def test_database_url_selects_one(database_url: str) -> None:
    assert database_url.startswith("postgresql+asyncpg://")
    one, database, _user = await _select_one(database_url)
    assert one == 1
    assert database == make_url(database_url).database


@pytest.mark.slow
async def test_throwaway_postgres_is_started_when_nothing_listens() -> None:
    unreachable = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/test"

    url, server = await asyncio.to_thread(require_service, resolve_database_url, [unreachable])
    assert server is not None
    try:
        assert url == f"postgresql+asyncpg://postgres@127.0.0.1:{server.port}/test"
        assert await _select_one(url) == (1, "test", "postgres")
    finally:
        await asyncio.to_thread(server.stop)
    assert await asyncio.to_thread(postgres_reachable, url) is not None
    assert not server.directory.exists()


# -- Redis Cluster ---------------------------------------------------------------------------


def test_redis_cluster_has_three_masters_covering_all_slots(
    redis_cluster: RedisClusterInfo, redis_cluster_urls: list[str]
) -> None:
    assert redis_cluster.url == redis_cluster_urls[0]
    assert redis_cluster_urls == [f"redis://127.0.0.1:{p}" for _, p in redis_cluster.startup_nodes]
    _assert_three_masters_cover_all_slots(redis_cluster)


async def test_redis_cluster_client_reaches_every_node(redis_cluster: RedisClusterInfo) -> None:
    cluster = RedisCluster(
        startup_nodes=[ClusterNode(h, p) for h, p in redis_cluster.startup_nodes]
    )
    try:
        await cluster.initialize()  # loads the slot map, so keys can be routed below
        keys_by_port: dict[int, str] = {}
        for i in range(1000):
            key = f"tgtest:cluster:{i}"
            node = cluster.get_node_from_key(key)
            assert node is not None
            keys_by_port.setdefault(int(node.port), key)
            if len(keys_by_port) == 3:
                break
        assert sorted(keys_by_port) == sorted(p for _, p in redis_cluster.startup_nodes)
        for port, key in keys_by_port.items():
            assert await cluster.set(key, f"on {port}") is True
        for port, key in keys_by_port.items():
            assert await cluster.get(key) == f"on {port}".encode()
    finally:
        await cluster.aclose()

    for port, key in keys_by_port.items():  # each key really lives on the node it maps to
        direct = redis.asyncio.Redis(host="127.0.0.1", port=port)
        try:
            assert await direct.get(key) == f"on {port}".encode()
        finally:
            await direct.aclose()


@pytest.mark.slow
def test_redis_cluster_without_redis_cli() -> None:
    cluster = require_service(
        lambda: start_redis_cluster(use_redis_cli=False), context="Redis Cluster unavailable: "
    )
    try:
        _assert_three_masters_cover_all_slots(cluster.info)
    finally:
        cluster.stop()
    assert all(process.returncode is not None for process in cluster.processes)
    assert not cluster.directory.exists()


# -- helpers ---------------------------------------------------------------------------------


def test_free_port_leaves_room_for_the_cluster_bus() -> None:
    port = free_port(bus_offset=10000)
    for candidate in (port, port + 10000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", candidate))


def test_unavailable_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no server"):
        skip_or_fail("no server")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no server"):
        skip_or_fail("no server")


def test_resolve_reports_what_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    unreachable = f"redis://127.0.0.1:{_closed_port()}/0"
    with pytest.raises(ServiceUnavailable, match=r"nothing answered PING.*redis-server is not"):
        resolve_redis_url(unreachable)


def test_require_service_passes_results_through_and_skips_on_unavailability(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert require_service(lambda x: x * 2, 21) == 42

    def broken() -> None:
        raise ServiceUnavailable("no binary")

    with pytest.raises(pytest.skip.Exception, match=r"^Thing: no binary$"):
        require_service(broken, context="Thing: ")


def test_redis_ping_needs_a_pong(redis_url: str) -> None:
    assert redis_ping(redis_url)
    assert not redis_ping(f"redis://127.0.0.1:{_closed_port()}/0")
    # AUTH with a password the default user does not have is answered with -ERR, not +OK
    parts = urlsplit(redis_url)
    host_port = parts.netloc.rpartition("@")[2]
    wrong = parts._replace(netloc=f":wrong-{uuid.uuid4().hex}@{host_port}").geturl()
    assert not redis_ping(wrong)
