"""Both simulators served by uvicorn in the test's loop, called over real loopback HTTP."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from shop.simulators import (
    Behaviour,
    create_payments_app,
    create_recommendations_app,
    serve_in_background,
)


async def _port_is_closed(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_both_simulators_over_http() -> None:
    payments = await serve_in_background(create_payments_app(Behaviour()))
    recommender = await serve_in_background(create_recommendations_app(Behaviour(), name="r1"))
    try:
        assert payments.url == f"http://127.0.0.1:{payments.port}"
        async with aiohttp.ClientSession() as http:
            for server in (payments, recommender):
                async with http.get(f"{server.url}/healthz") as r:
                    assert (r.status, await r.json()) == (200, {"status": "ok"})
            body = {"idempotency_key": "it-1", "amount_cents": 500, "user_id": 3}
            async with http.post(f"{payments.url}/charges", json=body) as r:
                assert r.status == 201
                assert (await r.json())["status"] == "succeeded"
            async with http.get(f"{recommender.url}/recommendations/3?limit=4") as r:
                rec = await r.json()
                assert (r.status, rec["served_by"], len(rec["product_ids"])) == (200, "r1", 4)
    finally:
        await payments.aclose()
        await recommender.aclose()
    assert await _port_is_closed(payments.port)
    assert await _port_is_closed(recommender.port)
    await payments.aclose()  # idempotent


async def test_close_with_a_request_hanging() -> None:
    app = create_payments_app(Behaviour(timeout_rate=1.0, hang=30.0))
    async with (
        await serve_in_background(app, grace=0) as server,
        aiohttp.ClientSession() as http,
    ):
        body = {"idempotency_key": "h", "amount_cents": 500, "user_id": 3}
        pending = asyncio.create_task(http.post(f"{server.url}/charges", json=body))
        for _ in range(1000):
            async with http.get(f"{server.url}/admin/stats") as r:
                if (await r.json())["hung"]:
                    break
            await asyncio.sleep(0.001)
        await server.aclose()  # does not wait out the 30 s hang
        assert await _port_is_closed(server.port)
        # The hang was cancelled after the grace period: uvicorn answers 500 or drops the line.
        try:
            response = await pending
        except aiohttp.ClientError:
            pass
        else:
            assert response.status == 500
            response.release()


async def test_busy_port_raises_oserror() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(OSError):
            await serve_in_background(create_payments_app(), port=busy.getsockname()[1])
