"""The simulators' logic: the sampled behaviour, then both apps driven in process over ASGI."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from shop.simulators import (
    Behaviour,
    create_payments_app,
    create_recommendations_app,
    parse_behaviour,
)
from shop.simulators.recommendations import recommend

N = 20_000


def _quantile(xs: list[float], q: float) -> float:
    return sorted(xs)[int(q * len(xs))]


# --- Behaviour ---------------------------------------------------------------------------------


def test_latency_fits_median_and_p99() -> None:
    b = Behaviour(latency_median=0.02, latency_p99=0.08)
    rng = random.Random(42)
    xs = [b.sample(rng)[0] for _ in range(N)]
    assert _quantile(xs, 0.5) == pytest.approx(0.02, rel=0.1)
    assert _quantile(xs, 0.99) == pytest.approx(0.08, rel=0.1)


def test_p99_equal_to_median_is_constant() -> None:
    b = Behaviour(latency_median=0.05, latency_p99=0.05)
    rng = random.Random(1)
    assert {b.sample(rng)[0] for _ in range(100)} == {0.05}


def test_default_is_a_perfect_dependency() -> None:
    rng = random.Random(1)
    assert {Behaviour().sample(rng) for _ in range(100)} == {(0.0, "ok")}


def test_slow_multiplies_latency() -> None:
    fast = Behaviour(latency_median=0.01, latency_p99=0.03)
    slow = Behaviour(latency_median=0.01, latency_p99=0.03, slow=True, slow_factor=7)
    a, b = random.Random(3), random.Random(3)
    for _ in range(50):
        assert slow.sample(b)[0] == pytest.approx(7 * fast.sample(a)[0])


def test_outcome_rates() -> None:
    b = Behaviour(failure_rate=0.2, timeout_rate=0.1)
    rng = random.Random(7)
    outcomes = [b.sample(rng)[1] for _ in range(N)]
    assert outcomes.count("fail") / N == pytest.approx(0.2, abs=0.015)
    assert outcomes.count("hang") / N == pytest.approx(0.1, abs=0.015)


def test_same_seed_same_samples() -> None:
    b = Behaviour(latency_median=0.01, latency_p99=0.1, failure_rate=0.3, timeout_rate=0.3)
    a, c = random.Random(5), random.Random(5)
    assert [b.sample(a) for _ in range(200)] == [b.sample(c) for _ in range(200)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"latency_median": 0.08, "latency_p99": 0.02}, "latency_p99"),
        ({"latency_median": -1.0}, "latency_median"),
        ({"latency_p99": 0.1}, "latency_median"),
        ({"latency_median": float("nan")}, "latency_median"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"timeout_rate": -0.1}, "timeout_rate"),
        ({"failure_rate": 0.6, "timeout_rate": 0.6}, "failure_rate + timeout_rate"),
        ({"hang": -1.0}, "hang"),
        ({"slow_factor": 0.5}, "slow_factor"),
    ],
)
def test_invalid_behaviour_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("+", r"\+")):
        Behaviour(**kwargs)


def test_update_applies_a_partial_change() -> None:
    b = Behaviour()
    b.update({"latency_median": 0.01, "latency_p99": 0.05, "slow": True, "hang": 2})
    assert (b.latency_median, b.latency_p99, b.slow, b.hang) == (0.01, 0.05, True, 2.0)
    assert b.failure_rate == 0.0


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"latency": 0.1}, "latency"),
        ({"failure_rate": "high"}, "failure_rate"),
        ({"failure_rate": True}, "failure_rate"),
        ({"slow": 1}, "slow"),
        ({"failure_rate": 0.1, "latency_p99": 0.5}, "latency_median"),
    ],
)
def test_update_rejects_bad_changes_and_changes_nothing(
    changes: dict[str, object], name: str
) -> None:
    b = Behaviour(failure_rate=0.05)
    with pytest.raises(ValueError, match=name):
        b.update(changes)
    assert b == Behaviour(failure_rate=0.05)


def test_parse_behaviour() -> None:
    b = parse_behaviour("median=20ms, p99=80ms,fail=0.1,timeout=0.05,slow=1,hang=2s")
    assert b == Behaviour(
        latency_median=0.02,
        latency_p99=0.08,
        failure_rate=0.1,
        timeout_rate=0.05,
        slow=True,
        hang=2.0,
    )
    assert parse_behaviour("median=0.5s") == Behaviour(latency_median=0.5, latency_p99=0.5)
    assert parse_behaviour("") == Behaviour()
    assert parse_behaviour("slow=off,slow_factor=3").slow_factor == 3.0


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("median=20", "median=20"),
        ("bogus=1", "bogus"),
        ("fail=abc", "fail=abc"),
        ("fail", "'fail'"),
        ("slow=maybe", "slow=maybe"),
        ("median=80ms,p99=20ms", "latency_p99"),
        ("fail=2", "failure_rate"),
    ],
)
def test_parse_behaviour_names_the_bad_part(spec: str, names: str) -> None:
    with pytest.raises(ValueError, match=names):
        parse_behaviour(spec)


# --- payments ----------------------------------------------------------------------------------


@pytest.fixture
async def pay() -> AsyncIterator[httpx.AsyncClient]:
    async with _client(create_payments_app(Behaviour())) as client:
        yield client


def _client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim")


def _charge(key: str = "k1", amount: object = 1999, **extra: Any) -> dict[str, Any]:
    return {"idempotency_key": key, "amount_cents": amount, "user_id": 7, **extra}


async def test_charge_then_replay(pay: httpx.AsyncClient) -> None:
    first = await pay.post("/charges", json=_charge())
    assert first.status_code == 201
    body = first.json()
    assert body["id"].startswith("ch_")
    assert body["status"] == "succeeded"
    assert (body["idempotency_key"], body["amount_cents"], body["user_id"]) == ("k1", 1999, 7)
    assert body["currency"] == "usd"
    assert "created_at" in body
    replay = await pay.post("/charges", json=_charge())
    assert (replay.status_code, replay.json()) == (200, body)
    stats = (await pay.get("/admin/stats")).json()
    assert stats == {
        "requests": 2,
        "charges_attempted": 2,
        "replayed": 1,
        "failed": 0,
        "hung": 0,
    }


async def test_key_reused_with_another_amount(pay: httpx.AsyncClient) -> None:
    await pay.post("/charges", json=_charge(amount=100))
    r = await pay.post("/charges", json=_charge(amount=101))
    assert r.status_code == 409
    assert r.json() == {"detail": "idempotency key reused with a different amount"}


async def test_402_is_declined_and_replays_declined(pay: httpx.AsyncClient) -> None:
    r = await pay.post("/charges", json=_charge(amount=402))
    assert (r.status_code, r.json()["status"]) == (201, "declined")
    again = await pay.post("/charges", json=_charge(amount=402))
    assert (again.status_code, again.json()) == (200, r.json())


async def test_decline_rate() -> None:
    async with _client(create_payments_app(Behaviour(), decline_rate=1.0)) as client:
        r = await client.post("/charges", json=_charge())
    assert r.json()["status"] == "declined"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount_cents": 1, "user_id": 1}, "idempotency_key"),
        (_charge(key=""), "idempotency_key"),
        (_charge(key="x" * 201), "idempotency_key"),
        (_charge(amount=0), "amount_cents"),
        (_charge(amount="10"), "amount_cents"),
        (_charge(amount=True), "amount_cents"),
        (_charge(user_id=0), "user_id"),
        (_charge(user_id=1.5), "user_id"),
        (_charge(currency="dollars"), "currency"),
        ([1, 2], "JSON object"),
    ],
)
async def test_bad_charge_is_400_naming_the_field(
    pay: httpx.AsyncClient, body: object, field: str
) -> None:
    r = await pay.post("/charges", json=body)
    assert r.status_code == 400
    assert field in r.json()["detail"]
    assert (await pay.get("/charges")).json()["charges"] == []


async def test_body_that_is_not_json(pay: httpx.AsyncClient) -> None:
    r = await pay.post("/charges", content=b"{nope")
    assert (r.status_code, r.json()) == (400, {"detail": "body must be a JSON object"})
    assert (await pay.get("/admin/stats")).json()["requests"] == 1


async def test_void_before_charge_refuses_the_later_charge(pay: httpx.AsyncClient) -> None:
    v = await pay.post("/charges/k9/void")
    assert (v.status_code, v.json()["status"]) == (200, "voided")
    assert (await pay.post("/charges/k9/void")).json() == v.json()  # idempotent
    r = await pay.post("/charges", json=_charge(key="k9"))
    assert r.status_code == 409
    assert r.json()["detail"] == "voided"
    assert r.json()["charge"]["status"] == "voided"
    assert (await pay.get("/charges/k9")).json()["status"] == "voided"


async def test_void_after_charge_refunds(pay: httpx.AsyncClient) -> None:
    await pay.post("/charges", json=_charge(key="k2"))
    v = await pay.post("/charges/k2/void")
    assert (v.status_code, v.json()["status"]) == (200, "refunded")
    assert (await pay.post("/charges/k2/void")).json() == v.json()
    replay = await pay.post("/charges", json=_charge(key="k2"))
    assert (replay.status_code, replay.json()["status"]) == (200, "refunded")


async def test_void_of_a_declined_charge_keeps_it_declined(pay: httpx.AsyncClient) -> None:
    await pay.post("/charges", json=_charge(key="k3", amount=402))
    assert (await pay.post("/charges/k3/void")).json()["status"] == "declined"


async def test_list_get_and_reset(pay: httpx.AsyncClient) -> None:
    await pay.post("/charges", json=_charge(key="a"))
    await pay.post("/charges", json=_charge(key="b", amount=402))
    await pay.post("/charges", json=_charge(key="c"))
    await pay.post("/charges/c/void")
    await pay.post("/charges/d/void")
    listing = (await pay.get("/charges")).json()
    assert [c["idempotency_key"] for c in listing["charges"]] == ["a", "b", "c", "d"]
    assert listing["counts"] == {"succeeded": 1, "declined": 1, "refunded": 1, "voided": 1}
    assert (await pay.get("/charges/a")).json()["status"] == "succeeded"
    assert (await pay.get("/charges/zz")).status_code == 404
    assert (await pay.post("/admin/reset")).status_code == 200
    assert (await pay.get("/charges")).json()["charges"] == []
    assert (await pay.get("/admin/stats")).json()["requests"] == 0


async def test_key_with_a_slash(pay: httpx.AsyncClient) -> None:
    await pay.post("/charges", json=_charge(key="order/42"))
    assert (await pay.get("/charges/order/42")).json()["idempotency_key"] == "order/42"
    assert (await pay.post("/charges/order/42/void")).json()["status"] == "refunded"


async def test_failure_is_503_without_effect() -> None:
    async with _client(create_payments_app(Behaviour(failure_rate=1.0))) as client:
        r = await client.post("/charges", json=_charge())
        assert (r.status_code, r.json()) == (503, {"detail": "payment service unavailable"})
        assert (await client.get("/charges")).json()["charges"] == []
        assert (await client.get("/admin/stats")).json()["failed"] == 1
        assert (await client.get("/healthz")).json() == {"status": "ok"}  # never sampled


async def test_hang_answers_after_the_hang() -> None:
    app = create_payments_app(Behaviour(timeout_rate=1.0, hang=0.05))
    async with _client(app) as client:
        r = await client.post("/charges", json=_charge())
        assert r.status_code == 201
        assert (await client.get("/admin/stats")).json()["hung"] == 1


async def test_hang_records_the_charge_before_it_hangs() -> None:
    app = create_payments_app(Behaviour(timeout_rate=1.0, hang=30.0))
    async with _client(app) as client:
        pending = asyncio.create_task(client.post("/charges", json=_charge(key="h")))
        for _ in range(1000):
            found = await client.get("/charges/h")
            if found.status_code == 200:
                break
            await asyncio.sleep(0.001)
        assert found.json()["status"] == "succeeded"
        assert not pending.done()
        pending.cancel()  # the caller gives up: the charge stays
        with pytest.raises(asyncio.CancelledError):
            await pending
        assert (await client.get("/charges/h")).status_code == 200
        assert (await client.get("/admin/stats")).json()["hung"] == 1


async def test_same_seed_same_answers() -> None:
    async def statuses(seed: int) -> list[int]:
        app = create_payments_app(Behaviour(failure_rate=0.5), seed=seed, decline_rate=0.3)
        async with _client(app) as client:
            rs = [await client.post("/charges", json=_charge(key=str(i))) for i in range(30)]
        return [r.status_code if r.status_code != 201 else len(r.json()["status"]) for r in rs]

    assert await statuses(1) == await statuses(1)
    assert len(set(await statuses(1))) == 3  # 503, succeeded and declined all occur


async def test_admin_behaviour(pay: httpx.AsyncClient) -> None:
    assert (await pay.get("/admin/behaviour")).json() == Behaviour().to_dict()
    r = await pay.put("/admin/behaviour", json={"failure_rate": 1.0})
    assert (r.status_code, r.json()["failure_rate"]) == (200, 1.0)
    assert (await pay.post("/charges", json=_charge())).status_code == 503
    bad = await pay.put("/admin/behaviour", json={"failure": 0.5})
    assert bad.status_code == 400
    assert "failure" in bad.json()["detail"]
    bad = await pay.put("/admin/behaviour", json={"timeout_rate": 0.5})
    assert bad.status_code == 400
    assert "failure_rate + timeout_rate" in bad.json()["detail"]


def test_decline_rate_is_checked() -> None:
    with pytest.raises(ValueError, match="decline_rate"):
        create_payments_app(decline_rate=2.0)


# --- recommendations ---------------------------------------------------------------------------


@pytest.fixture
async def rec() -> AsyncIterator[httpx.AsyncClient]:
    async with _client(create_recommendations_app(Behaviour(), name="rec-2")) as client:
        yield client


async def test_recommendations(rec: httpx.AsyncClient) -> None:
    r = await rec.get("/recommendations/42")
    body = r.json()
    assert (r.status_code, body["user_id"], body["served_by"]) == (200, 42, "rec-2")
    ids = body["product_ids"]
    assert len(ids) == len(set(ids)) == 10
    assert all(1 <= i <= 500 for i in ids)
    again = (await rec.get("/recommendations/42")).json()["product_ids"]
    assert again == ids
    five = (await rec.get("/recommendations/42", params={"limit": 5})).json()["product_ids"]
    assert five == ids[:5]
    other = (await rec.get("/recommendations/43")).json()["product_ids"]
    assert other != ids
    assert (await rec.get("/admin/stats")).json()["requests"] == 4


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/recommendations/0", "user_id"),
        ("/recommendations/abc", "user_id"),
        ("/recommendations/1?limit=0", "limit"),
        ("/recommendations/1?limit=51", "limit"),
        ("/recommendations/1?limit=x", "limit"),
    ],
)
async def test_bad_recommendation_request(rec: httpx.AsyncClient, path: str, field: str) -> None:
    r = await rec.get(path)
    assert r.status_code == 400
    assert field in r.json()["detail"]


def test_recommendations_favour_popular_products() -> None:
    ids = [i for user in range(1, 201) for i in recommend(user, 10, 500)]
    assert sum(i <= 50 for i in ids) / len(ids) > 0.3  # uniform would give 0.1


def test_tiny_catalogue() -> None:
    assert sorted(recommend(5, 10, 3)) == [1, 2, 3]
    assert recommend(5, 50, 1) == [1]


async def test_recommender_failure_and_admin(rec: httpx.AsyncClient) -> None:
    await rec.put("/admin/behaviour", json={"failure_rate": 1.0})
    r = await rec.get("/recommendations/1")
    assert (r.status_code, r.json()) == (503, {"detail": "recommendation service unavailable"})
    assert (await rec.get("/admin/stats")).json() == {"requests": 1, "failed": 1, "hung": 0}
    assert (await rec.get("/healthz")).status_code == 200
