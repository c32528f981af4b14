"""The scenario client against loopback responders: bodies, headers, JSON, errors as values,
pooling, and the loopback-only rule."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tailguard.errors import ConfigurationError
from tailguard.loadtest import Client
from tailguard.loadtest._recorder import Recorder
from tailguard.loadtest.targets import check_host, parse_target
from tests.unit.loadtest.responders import Responder, free_port

pytestmark = pytest.mark.timeout(30)


async def test_get_and_post_json() -> None:
    with Responder(body=b'{"ok": true}', keep_paths=True) as server:
        async with Client(server.url, headers={"Authorization": "Bearer x"}) as client:
            got = await client.get("/products/7?full=1")
            posted = await client.post("/cart/items", json={"product_id": 7, "quantity": 2})
            raw = await client.put("/raw", data="text body")
    assert got.status == 200
    assert got.ok
    assert got.error is None
    assert got.json() == {"ok": True}
    assert got.headers["content-length"] == "12"
    assert got.text == '{"ok": true}'
    assert got.elapsed > 0
    assert server.paths == ["/products/7?full=1", "/cart/items", "/raw"]
    assert json.loads(server.bodies[1]) == {"product_id": 7, "quantity": 2}
    assert server.bodies[2] == b"text body"
    assert posted.ok
    assert raw.ok
    assert server.connections == 1  # one keep-alive connection for the three


@pytest.mark.parametrize(("chunked", "close"), [(True, False), (False, True)])
async def test_chunked_bodies_and_closed_connections(chunked: bool, close: bool) -> None:
    with Responder(body=b"x" * 10_000, chunked=chunked, close=close) as server:
        async with Client(server.url) as client:
            responses = [await client.get("/") for _ in range(3)]
    assert [len(r.content) for r in responses] == [10_000] * 3
    assert server.connections == (3 if close else 1)


async def test_errors_are_values_of_each_kind() -> None:
    with Responder(status=lambda path: 503 if path == "/down" else 200) as server:
        async with Client(server.url) as client:
            down = await client.get("/down")
    assert (down.status, down.ok, down.error) == (503, False, "status_503")
    async with Client(f"http://127.0.0.1:{free_port()}/") as client:
        refused = await client.get("/")
    assert (refused.status, refused.error) == (0, "connect")
    with Responder(hang=True) as server:
        async with Client(server.url, timeout=0.2) as client:
            hung = await client.get("/")
    assert (hung.status, hung.error) == (0, "timeout")
    assert 0.15 < hung.elapsed < 5


async def test_the_pool_caps_connections_and_requests_are_recorded_by_name() -> None:
    recorder = Recorder(start=time.perf_counter())
    with Responder(delay=0.02) as server:
        async with Client(server.url, connections=3, recorder=recorder) as client:
            await asyncio.gather(*(client.get(f"/p/{i}", name="GET /p/{id}") for i in range(12)))
            await client.get("/other")
    recorder.finish(time.perf_counter())
    assert server.connections == 3
    assert recorder.action("GET /p/{id}").stats.requests == 12
    assert recorder.action("GET /other").stats.requests == 1
    assert recorder.totals.histogram.total == 13


async def test_a_cancelled_request_releases_its_connection() -> None:
    with Responder(delay=5.0) as server:
        async with Client(server.url, connections=1) as client:
            task = asyncio.create_task(client.get("/"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            pool = next(iter(client._pools.values()))
            assert pool.size == 0


def test_only_loopback_unless_allowed() -> None:
    for url in (
        "http://127.0.0.1:8000/",
        "http://localhost/",
        "http://[::1]:81/x",
        "http://127.9.9.9/",
    ):
        parse_target(url)
    with pytest.raises(ConfigurationError, match=r"--allow-host example\.com"):
        parse_target("http://example.com/")
    with pytest.raises(ConfigurationError, match="loopback"):
        parse_target("http://10.0.0.1:8000/")
    assert parse_target("http://example.com:8080/a b", ["example.com"]).path == "/a%20b"
    check_host("api.internal", ["API.internal"])
    with pytest.raises(ConfigurationError, match="http://"):
        parse_target("https://127.0.0.1/")
    with pytest.raises(ConfigurationError, match="http://"):
        parse_target("127.0.0.1:8000")


async def test_a_scenario_cannot_wander_off_to_another_host() -> None:
    async with Client("http://127.0.0.1:1/") as client:
        with pytest.raises(ConfigurationError, match="loopback"):
            await client.get("http://example.com/steal")
