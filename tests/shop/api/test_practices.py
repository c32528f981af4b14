"""Each practice against its naive twin on the same route, on the embedded defaults."""

from __future__ import annotations

import httpx
import pytest

from shop.config import Naive
from tailguard.observe import NPlusOneDetected, QueryCounter
from tests.shop.conftest import ShopFactory, sign_in

HEAVY_BUYER = 1  # seeded users are skewed: user 1 is among the heaviest buyers


async def _orders_queries(shop: ShopFactory, **overrides: object) -> tuple[int, list[int], bool]:
    async with shop(**overrides) as (app, client):
        headers = await sign_in(client, HEAVY_BUYER)
        engine = app.state.services.extras["engine"]
        counter = QueryCounter(engine, threshold=5, on_n_plus_one="ignore")
        with counter, counter.scope("GET /users/{id}/orders", all_tasks=True) as stats:
            response = await client.get(f"/users/{HEAVY_BUYER}/orders?limit=20", headers=headers)
        assert response.status_code == 200
        ids = [o["id"] for o in response.json()["items"]]
        named = all(i["name"] for o in response.json()["items"] for i in o["items"])
        return stats.count, ids, named


async def test_eager_loading_reads_a_page_in_two_queries_and_its_twin_in_one_per_order(
    shop: ShopFactory, tmp_path: object
) -> None:
    eager, eager_ids, eager_named = await _orders_queries(shop)
    naive, naive_ids, naive_named = await _orders_queries(shop, naive=Naive.EAGER_LOADING.value)
    assert len(eager_ids) == 20
    assert eager_ids == naive_ids
    assert eager_named
    assert naive_named
    assert eager == 2
    assert naive >= 1 + 20  # one for the page, one per order for its items (and products)
    assert naive >= 10 * eager


async def test_the_n_plus_one_twin_is_what_query_counter_flags(shop: ShopFactory) -> None:
    async with shop(naive="eager_loading") as (app, client):
        headers = await sign_in(client, HEAVY_BUYER)
        engine = app.state.services.extras["engine"]
        counter = QueryCounter(engine, threshold=5, on_n_plus_one="raise")
        with counter, pytest.raises(NPlusOneDetected), counter.scope("orders", all_tasks=True):
            await client.get(f"/users/{HEAVY_BUYER}/orders?limit=20", headers=headers)


async def test_keyset_pages_follow_one_another_without_overlap(shop: ShopFactory) -> None:
    async with shop() as (_, client):
        headers = await sign_in(client, HEAVY_BUYER)
        first = (await client.get("/users/1/orders?limit=5", headers=headers)).json()
        cursor = first["next_cursor"]
        second = (
            await client.get(f"/users/1/orders?limit=5&cursor={cursor}", headers=headers)
        ).json()
        ids = [o["id"] for o in first["items"] + second["items"]]
        assert ids == sorted(ids, reverse=True)
        assert len(set(ids)) == 10
        assert int(cursor) == first["items"][-1]["id"]


async def _product_reads(client: httpx.AsyncClient, app: object, n: int) -> int:
    engine = app.state.services.extras["engine"]  # type: ignore[attr-defined]
    counter = QueryCounter(engine, on_n_plus_one="ignore")
    with counter, counter.scope("products", all_tasks=True) as stats:
        for _ in range(n):
            assert (await client.get("/products/7")).status_code == 200
    return stats.count


async def test_the_cache_serves_repeated_reads_and_its_twin_goes_to_the_database(
    shop: ShopFactory,
) -> None:
    async with shop() as (app, client):
        assert await _product_reads(client, app, 10) == 1
    async with shop(naive="cache") as (app, client):
        assert await _product_reads(client, app, 10) == 10


async def test_product_pages_carry_etags_and_answer_304(shop: ShopFactory) -> None:
    async with shop() as (_, client):
        first = await client.get("/products/7")
        assert "max-age=" in first.headers["cache-control"]
        etag = first.headers["etag"]
        again = await client.get("/products/7", headers={"If-None-Match": etag})
        assert again.status_code == 304
        headers = await sign_in(client, 1)
        private = await client.get("/users/1", headers=headers)
        assert "public" not in private.headers.get("cache-control", "")


async def test_a_price_change_evicts_the_cached_product(shop: ShopFactory) -> None:
    async with shop() as (app, client):
        before = (await client.get("/products/7")).json()
        admin = {"X-Admin-Token": app.state.admin_token}
        changed = await client.patch(
            "/admin/products/7", json={"price_cents": before["price_cents"] + 100}, headers=admin
        )
        assert changed.status_code == 200, changed.text
        after = (await client.get("/products/7")).json()
        assert after["price_cents"] == before["price_cents"] + 100
        refused = await client.patch("/admin/products/7", json={"price_cents": 1})
        assert refused.status_code == 403


async def test_a_profile_edit_evicts_the_cached_profile(shop: ShopFactory) -> None:
    async with shop() as (_, client):
        headers = await sign_in(client, 2)
        assert (await client.get("/users/2", headers=headers)).status_code == 200
        edited = await client.patch("/users/2", json={"name": "Grace H."}, headers=headers)
        assert edited.status_code == 200
        assert (await client.get("/users/2", headers=headers)).json()["name"] == "Grace H."


async def test_tokens_guard_user_data(shop: ShopFactory) -> None:
    async with shop() as (_, client):
        assert (await client.get("/users/1")).status_code == 401
        headers = await sign_in(client, 1)
        for path in ("/users/2", "/users/2/orders", "/users/2/dashboard"):
            assert (await client.get(path, headers=headers)).status_code == 403
        wrong = await client.post(
            "/auth/token", data={"username": "user1@shop.test", "password": "x"}
        )
        assert wrong.status_code == 401


async def test_the_cart_is_rate_limited_per_user_with_headers(shop: ShopFactory) -> None:
    async with shop(cart_rate="3/minute") as (_, client):
        one, two = await sign_in(client, 1), await sign_in(client, 2)
        answers = [(await client.get("/cart", headers=one)).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        refused = await client.get("/cart", headers=one)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-policy"] == '"cart";q=3;w=60'
        assert (await client.get("/cart", headers=two)).status_code == 200  # others unaffected
    async with shop(cart_rate="3/minute", naive="rate_limit") as (_, client):
        one = await sign_in(client, 1)
        assert {(await client.get("/cart", headers=one)).status_code for _ in range(6)} == {200}


async def test_readyz_reports_dependencies_and_the_naive_twins(shop: ShopFactory) -> None:
    async with shop(naive="cache,breaker") as (_, client):
        ready = await client.get("/readyz")
        body = ready.json()
        assert ready.status_code == 200
        assert body["ready"]
        assert body["naive"] == ["breaker", "cache"]
        assert body["degraded"] == []
        assert set(body["dependencies"]) >= {"database", "sessions", "payments", "recommender"}
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert 'tailguard_http_requests_total{method="GET",route="/readyz"' in metrics.text
        assert 'name="database"' in metrics.text  # the pool's saturation is watched
        assert 'tailguard_db_statements_total{name="database"}' in metrics.text


async def test_readyz_is_503_without_the_database(shop: ShopFactory) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    async with shop() as (app, client):
        extras = app.state.services.extras
        real = extras["engine"]
        extras["engine"] = create_async_engine("sqlite+aiosqlite:////nonexistent/dir/shop.db")
        try:
            ready = await client.get("/readyz")
        finally:
            await extras["engine"].dispose()
            extras["engine"] = real
        assert ready.status_code == 503, ready.text
        assert not ready.json()["ready"]
        assert ready.json()["dependencies"]["database"].startswith("down")
        assert (await client.get("/readyz")).status_code == 200


async def _slow_recommender(app: object, client: httpx.AsyncClient, seconds: float) -> None:
    servers = app.state.services.extras["servers"]["recommenders"]  # type: ignore[attr-defined]
    async with httpx.AsyncClient() as direct:
        for server in servers:
            r = await direct.put(
                f"{server.url}/admin/behaviour",
                json={"latency_median": seconds, "latency_p99": seconds},
            )
            assert r.status_code == 200, r.text


async def test_a_slow_recommender_falls_back_within_the_timeout(shop: ShopFactory) -> None:
    async with shop(recommendation_timeout=0.05) as (app, client):
        headers = await sign_in(client, 5)
        await _slow_recommender(app, client, 0.5)
        board = (await client.get("/users/5/dashboard", headers=headers)).json()
        assert board["recommendations_source"] in ("popular", "cached")
        assert board["recommendations"]
        assert board["user"]["id"] == 5
    async with shop(recommendation_timeout=0.05, naive="timeouts") as (app, client):
        headers = await sign_in(client, 5)
        await _slow_recommender(app, client, 0.2)
        board = (await client.get("/users/5/dashboard", headers=headers)).json()
        assert board["recommendations_source"] == "live"  # it waited for the slow answer
