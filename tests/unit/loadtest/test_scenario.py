"""Scenarios: task weights, think time, on_start per user, user classes by weight, errors in
tasks; run against a loopback responder with the request cap as the bound."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import ClassVar

import pytest

from tailguard.errors import ConfigurationError
from tailguard.loadtest import User, between, constant, load_scenario, run, task
from tests.unit.loadtest.responders import Responder

pytestmark = pytest.mark.timeout(30)


class CountingClock:
    """Real time for the engine; think times are counted, not slept."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)


class Shop(User):
    calls: ClassVar[Counter[str]] = Counter()
    starts: ClassVar[Counter[int]] = Counter()

    @task(6)
    async def browse(self) -> None:
        Shop.calls["browse"] += 1
        await self.client.get("/products/1", name="GET /products/{id}")

    @task(3)
    async def add_to_cart(self) -> None:
        Shop.calls["add_to_cart"] += 1
        await self.client.post("/cart/items", json={"product_id": 1})

    @task
    async def purchase(self) -> None:
        Shop.calls["purchase"] += 1
        await self.client.post("/orders", json={})

    async def on_start(self) -> None:
        Shop.starts[self.index] += 1
        self.token = f"user-{self.index}"


@pytest.fixture(autouse=True)
def fresh_counts() -> None:
    Shop.calls.clear()
    Shop.starts.clear()


async def test_weights_are_respected_and_each_user_starts_once() -> None:
    with Responder() as server:
        result = await run(Shop, users=8, duration=20, max_requests=4000, host=server.url, seed=7)
    total = sum(Shop.calls.values())
    assert total >= 3900
    shares = {name: count / total for name, count in Shop.calls.items()}
    assert shares["browse"] == pytest.approx(0.6, abs=0.03)
    assert shares["add_to_cart"] == pytest.approx(0.3, abs=0.03)
    assert shares["purchase"] == pytest.approx(0.1, abs=0.02)
    assert dict(Shop.starts) == {i: 1 for i in range(8)}
    # requests are recorded under their name, else their task's
    assert set(result.actions) == {"GET /products/{id}", "add_to_cart", "purchase"}
    assert result.actions["GET /products/{id}"].requests == Shop.calls["browse"]
    assert result.totals.errors == 0
    assert result.model == "closed"
    assert result.settings["users"] == 8


class Thinker(User):
    wait_time = between(1, 5)

    @task
    async def look(self) -> None:
        await self.client.get("/")


async def test_think_time_follows_wait_time() -> None:
    clock = CountingClock()
    with Responder() as server:
        result = await run(
            Thinker, users=4, duration=20, max_requests=400, host=server.url, clock=clock
        )
    assert result.totals.requests >= 400
    assert len(clock.sleeps) >= 396  # one after every task (a user's last may be cut short)
    assert all(1.0 <= s <= 5.0 for s in clock.sleeps)
    assert 2.5 < sum(clock.sleeps) / len(clock.sleeps) < 3.5


def test_wait_time_helpers() -> None:
    class Fixed(User):
        wait_time = constant(2)

        @task
        async def t(self) -> None: ...

    class Number(Fixed):
        wait_time = 0.5  # type: ignore[assignment]

    class Function(Fixed):
        def wait_time(self) -> float:
            return self.index * 1.0

    class Client:  # a stand-in: these users never send
        pass

    assert Fixed(Client(), index=3).think_time() == 2.0  # type: ignore[arg-type]
    assert Number(Client()).think_time() == 0.5  # type: ignore[arg-type]
    assert Function(Client(), index=3).think_time() == 3.0  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        between(5, 1)


def test_tasks_must_be_async_and_weights_positive() -> None:
    with pytest.raises(ConfigurationError, match="async def"):
        task(lambda self: None)  # type: ignore[type-var]
    with pytest.raises(ConfigurationError, match="weight"):
        task(0)


class Admin(User):
    weight = 1

    @task
    async def audit(self) -> None:
        await self.client.get("/admin")


class Shopper(User):
    weight = 3

    @task
    async def shop(self) -> None:
        await self.client.get("/shop")


async def test_user_classes_are_mixed_by_weight() -> None:
    with Responder() as server:
        result = await run(
            [Admin, Shopper], users=8, duration=20, max_requests=800, host=server.url
        )
    assert set(result.actions) == {"audit", "shop"}
    share = result.actions["audit"].requests / result.totals.requests
    assert share == pytest.approx(0.25, abs=0.05)


class Broken(User):
    @task
    async def crash(self) -> None:
        await self.client.get("/")
        raise RuntimeError("bug in the scenario")


async def test_an_exception_in_a_task_counts_as_an_error_of_kind_other() -> None:
    with Responder() as server:
        result = await run(Broken, users=2, duration=20, max_requests=100, host=server.url)
    crash = result.actions["crash"]  # its GET (fine) and its exception (an error), each time
    assert crash.errors_by_kind == {"other": crash.requests // 2}
    assert crash.requests >= 100


async def test_the_open_model_runs_tasks_at_the_arrival_rate() -> None:
    with Responder() as server:
        result = await run(Shop, rate=400, duration=1.0, host=server.url, seed=3)
    assert result.model == "open"
    assert 350 <= sum(Shop.calls.values()) <= 410
    assert sum(Shop.starts.values()) >= 1
    assert result.settings["rate"] == 400


def test_load_scenario_finds_the_user_classes(tmp_path: Path) -> None:
    path = tmp_path / "scenario.py"
    path.write_text(
        "from tailguard.loadtest import User, task\n"
        "class Base(User):\n    pass\n"
        "class Real(Base):\n    host = 'http://127.0.0.1:1'\n"
        "    @task\n    async def go(self):\n        await self.client.get('/')\n"
    )
    classes = load_scenario(path)
    assert [cls.__name__ for cls in classes] == ["Real"]
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ConfigurationError, match="User subclass"):
        load_scenario(tmp_path / "empty.py")
    with pytest.raises(ConfigurationError, match="existing"):
        load_scenario(tmp_path / "missing.py")
