"""The demo's stack: one seeded database copied per shop, the simulators, shops on demand.

``async with Lab(out) as lab:`` seeds a SQLite database once, starts the payment gateway and
three recommender replicas (separate processes whose behaviour the experiments change through
``PUT /admin/behaviour``), and stops everything it started on the way out. ``lab.shop(...)``
starts a shop (``shop serve``) on its own copy of the database, with the given settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from lab.processes import Process, environment, free_port, shop_command, wait_ready
from lab.real import RealServices

__all__ = ["Lab", "Shop"]

SECRET = "lab-demo-secret-" + "x" * 32
"""One JWT secret for every shop of a run: the lab mints the users' tokens itself."""
REPLICAS = 3
_COUNTER = re.compile(r"^(?P<name>[a-z_]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>[0-9.eE+-]+)$")


@dataclass
class Shop:
    """A running shop: its process and what the lab knows of it."""

    name: str
    process: Process
    naive: str
    data_dir: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.process.url


class Lab:
    """The processes of one demo run, under ``out`` (logs and data)."""

    def __init__(
        self,
        out: Path,
        *,
        users: int = 1000,
        products: int = 500,
        orders: int = 20_000,
        real: RealServices | None = None,
    ):
        self.out = out
        self.real = real
        """PostgreSQL and Redis for every shop (``--real``), or None: the embedded defaults."""
        self.users, self.products, self.orders = users, products, orders
        self.processes: list[Process] = []
        self.base = out / "base"
        self.payments: Process | None = None
        self.recommenders: list[Process] = []
        self.http: aiohttp.ClientSession | None = None
        self.heavy_users: list[int] = []
        """Seeded users with at least 20 orders (a full page), the heaviest first."""

    async def __aenter__(self) -> Lab:
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            await self._seed()
            await self._simulators()
            self.http = aiohttp.ClientSession()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop every process this lab started (newest first)."""
        if self.http is not None:
            await self.http.close()
            self.http = None
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.real is not None:
            await self.real.aclose()

    async def _seed(self) -> None:
        from sqlalchemy import text

        from shop.adapters.db import create_engine
        from shop.adapters.schema import migrate
        from shop.adapters.seed import seed
        from shop.config import load_settings

        if self.base.exists():
            shutil.rmtree(self.base)
        database_url = None if self.real is None else await self.real.create_base()
        engine = create_engine(load_settings(data_dir=self.base, database_url=database_url))
        try:
            await migrate(engine)
            await seed(engine, users=self.users, products=self.products, orders=self.orders)
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text(
                        "SELECT user_id FROM orders GROUP BY user_id HAVING count(*) >= 20"
                        " ORDER BY count(*) DESC, user_id LIMIT 20"
                    )
                )
                self.heavy_users = [int(r[0]) for r in rows]
        finally:
            await engine.dispose()

    def _start(self, name: str, args: list[str], env: Mapping[str, str], port: int) -> Process:
        process = Process(name, args, port=port, env=env, log=self.out / "logs" / f"{name}.log")
        self.processes.append(process)
        return process

    async def _simulators(self) -> None:
        port = free_port()
        self.payments = self._start(
            "payments",
            [
                *shop_command(),
                "payments",
                "--port",
                str(port),
                "--behaviour",
                "median=10ms,p99=40ms",
            ],
            {},
            port,
        )
        for i in range(REPLICAS):
            port = free_port()
            self.recommenders.append(
                self._start(
                    f"recommender-{i + 1}",
                    [
                        *shop_command(),
                        "recommendations",
                        "--port",
                        str(port),
                        "--behaviour",
                        "median=20ms,p99=60ms",
                        "--seed",
                        str(i),
                        "--name",
                        f"recommender-{i + 1}",
                    ],
                    {},
                    port,
                )
            )
        await asyncio.gather(*(wait_ready(p) for p in [self.payments, *self.recommenders]))

    async def shop(self, name: str, *, naive: str = "", **settings: Any) -> Shop:
        """Start a shop on a copy of the seeded database; ``naive``: its SHOP_NAIVE."""
        assert self.payments is not None
        data_dir = self.out / "shops" / f"{name}-{uuid.uuid4().hex[:6]}"
        data_dir.mkdir(parents=True)
        real: dict[str, Any] = {"database_url": None, "redis_url": None}
        if self.real is None:
            for file in self.base.glob("shop.db*"):
                shutil.copy(file, data_dir / file.name)
        else:
            url, namespace = await self.real.copy()
            real = {
                "database_url": url,
                "redis_url": self.real.redis_url,
                "namespace": namespace,
                # No `shop worker` runs in the demo: each shop applies its own order events.
                "events_worker": "embedded",
            }
        merged: dict[str, Any] = {
            **real,
            "data_dir": data_dir,
            "secret_key": SECRET,
            "admin_token": SECRET,
            "payments_urls": [self.payments.url],
            "recommendations_urls": [r.url for r in self.recommenders],
            "cart_rate": "100000/second",
            "naive": naive,
            **settings,
        }
        port = free_port()
        process = self._start(
            f"shop-{name}",
            [*shop_command(), "serve", "--no-prepare", "--port", str(port)],
            environment(**merged),
            port,
        )
        await wait_ready(process)
        return Shop(name, process, naive, data_dir, merged)

    async def stop(self, shop: Shop) -> None:
        """Stop one shop (the others go on); drop its database when it has its own."""
        shop.process.stop()
        with contextlib.suppress(ValueError):
            self.processes.remove(shop.process)
        if self.real is not None and shop.settings.get("database_url"):
            await self.real.drop(shop.settings["database_url"])

    # -- the simulators ------------------------------------------------------------------

    async def behave(self, process: Process, **changes: Any) -> None:
        """Change a simulator's behaviour (``latency_median``, ``failure_rate``, ``slow``...)."""
        assert self.http is not None
        async with self.http.put(f"{process.url}/admin/behaviour", json=changes) as response:
            if response.status != 200:
                raise RuntimeError(f"{process.name}: {response.status} {await response.text()}")

    async def recommenders_behave(self, **changes: Any) -> None:
        """The same change on every recommender replica."""
        await asyncio.gather(*(self.behave(r, **changes) for r in self.recommenders))

    async def stats(self, process: Process) -> dict[str, Any]:
        """A simulator's counters (``GET /admin/stats``)."""
        assert self.http is not None
        async with self.http.get(f"{process.url}/admin/stats") as response:
            found: dict[str, Any] = await response.json()
            return found

    async def reset_simulators(self) -> None:
        """Healthy defaults again, counters and charges cleared."""
        assert self.http is not None
        assert self.payments is not None
        await self.behave(
            self.payments,
            latency_median=0.010,
            latency_p99=0.040,
            failure_rate=0.0,
            timeout_rate=0.0,
            slow=False,
        )
        await self.recommenders_behave(
            latency_median=0.020, latency_p99=0.060, failure_rate=0.0, timeout_rate=0.0, slow=False
        )
        for process in [self.payments, *self.recommenders]:
            async with self.http.post(f"{process.url}/admin/reset") as response:
                await response.read()

    # -- the shops' metrics --------------------------------------------------------------

    async def counters(self, shop: Shop) -> dict[str, float]:
        """The shop's Prometheus samples, ``name{labels}`` to value."""
        assert self.http is not None
        async with self.http.get(f"{shop.url}/metrics") as response:
            text = await response.text()
        found: dict[str, float] = {}
        for line in text.splitlines():
            match = _COUNTER.match(line)
            if match:
                key = match["name"] + (f"{{{match['labels']}}}" if match["labels"] else "")
                found[key] = float(match["value"])
        return found

    async def statements(self, shop: Shop) -> float:
        """Database statements the shop has sent so far."""
        return (await self.counters(shop)).get(
            'tailguard_db_statements_total{name="database"}', 0.0
        )


def token(user_id: int, session: str | None = None) -> str:
    """A bearer token for seeded user ``user_id`` (every shop of the lab shares the secret)."""
    from shop.adapters.sessions import new_session_id
    from shop.entrypoints.auth import issue_token

    return issue_token(SECRET, user_id, session or new_session_id(), 3600.0)


@contextlib.asynccontextmanager
async def shops(lab: Lab, *specs: tuple[str, str, dict[str, Any]]) -> AsyncIterator[list[Shop]]:
    """Start shops ``(name, naive, settings)`` at once; stop them at the end of the block."""
    started = await asyncio.gather(*(lab.shop(n, naive=v, **s) for n, v, s in specs))
    try:
        yield list(started)
    finally:
        for one in started:
            await lab.stop(one)
