"""The shop over HTTP: each practice on against its naive twin (``SHOP_NAIVE``), issue #11.

Three endpoints, each measured on the shop with every practice on and on its naive twin:

* ``GET /products/{id}`` (no sign-in), on against ``SHOP_NAIVE=cache``; product ids drawn
  Zipf-like (s = 1.1 over the 500 seeded products, popularity ranks shuffled over the ids);
* ``GET /users/{id}/orders?limit=20``, on against ``SHOP_NAIVE=eager_loading``, over the
  signed-in users among 1..50 whose first page is full (20 orders or more); plus the database
  statements one such request sends, counted in process: ``shop.service_layer.views.orders_page``
  run through ``shop.bootstrap.bootstrap`` on the same database, inside a
  ``tailguard.observe.QueryCounter`` on its engine (median over those users);
* ``GET /users/{id}/dashboard``, on against ``SHOP_NAIVE=concurrency``, over users 1..50, with
  every recommender replica answering after a constant ``BRANCH_MS`` (100 ms): the slowest of
  the dashboard's three branches. Every answer is checked to carry live recommendations (a
  fallback would skip the 100 ms and flatter the figure). The dashboard runs twice: under the
  plan's load (the target's figure), and at ``LIGHT`` (4) connections, where the one worker is
  not busy, to tell what the branches' concurrency gives from what the load adds.

Each database runs the same plan: SQLite (the embedded default, a file in a temp dir) and
PostgreSQL (a throwaway database ``shop_bench_<hex>`` created on the local server through an
AUTOCOMMIT connection and dropped at the end; skipped, with the reason, when no server
answers). Per database, the shop runs in separate server processes (``bench/_shop_server.py``:
``create_app(load_settings())`` under uvicorn, one worker, access log off), one per variant:
the practice-on one migrates and seeds the defaults (1,000 users, 500 products, 20,000 orders)
at start and serves the whole plan; each naive twin starts on the same database without
preparing it, serves its one endpoint, and stops. The recommender replicas (3) and the payment
gateway are ``shop.simulators`` apps in one more process, passed to every shop through
``SHOP_RECOMMENDATIONS_URLS`` / ``SHOP_PAYMENTS_URLS``; ``SHOP_RECOMMENDATION_TIMEOUT=1.0`` so
the dashboard's timeout never cuts the 100 ms; ``SHOP_CART_RATE=100000/second``. All the shops
share one ``SHOP_SECRET_KEY``, so the tokens of users 1..50, signed in once through
``POST /auth/token`` at the start, are valid on every one of them.

The load: a closed loop of ``CONCURRENCY`` keep-alive HTTP/1.1 connections on raw asyncio
sockets (uvloop) from this process, each sending its next request when the previous answer is
read, requests spread round-robin over the users (and ids). A sample stops after
``--seconds`` or ``MAX_REQUESTS`` requests; each (endpoint, variant) gets a warm-up sample, then
``--reps`` timed samples, on and naive alternating (on/naive, naive/on, ...). We report the
median requests/s over the samples, p50 and p99 over all their latencies pooled, and the server
process' CPU time per request. On Linux the client (and the simulators, which inherit its
affinity) is pinned to the first CPU, the shops to the others; PostgreSQL runs where the
scheduler puts it.

    .venv/bin/python -m bench shop              # ~3 min
    .venv/bin/python -m bench shop --quick      # a smoke test, ~1 min
    .venv/bin/python -m bench shop --markdown   # the tables for docs/BENCHMARKS.md
    .venv/bin/python -m bench shop --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

The targets are goals, not assertions: the script exits 0 whatever they say, and ``main()``
returns the results as a dict.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import getpass
import math
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench._harness import Settings, Target, eprint, header, ratio, render_table
from bench._http import fetch, server_loop, split_cpus

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
USERS = 50  # users 1..USERS sign in and share the load
PRODUCTS = 500  # the seeded catalogue
PRODUCT_SKEW = 1.1  # Zipf exponent of the product draws (the seed's)
ORDERS_PAGE = 20
CONCURRENCY = 32  # connections of the closed loop
LIGHT = 4  # connections of the light-load dashboard rows
MAX_REQUESTS = 200_000  # per sample, whatever its duration
BRANCH_MS = 100.0  # the recommenders' constant latency: the dashboard's slowest branch
REPLICAS = 3
SECONDS, REPS, WARMUP = 3.0, 3, 1.0
QUICK_SECONDS, QUICK_REPS, QUICK_WARMUP = 2.0, 1, 0.5
START_WITHIN = 90.0  # seconds a shop may take to migrate, seed and answer
STALLED = 30.0  # seconds past a sample's end after which its unanswered requests fail it
QUERY_USERS = 5  # heavy users whose /orders page is counted in process

# Targets (issue #11)
QUERIES_FACTOR = 10.0  # eager loading cuts statements per /orders page by at least this
CACHE_FACTOR = 3.0  # the cached product read serves at least this many times the req/s
DASHBOARD_SLACK_MS = 10.0  # concurrent dashboard p50 <= slowest branch + this


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    key: str  # the name its results are filed under
    route: str  # which request list it sends
    label: str
    naive: str  # the SHOP_NAIVE of its twin
    connections: int | None = None  # None: the plan's concurrency


ENDPOINTS = (
    Endpoint("products", "products", "GET /products/{id}", "cache"),
    Endpoint("orders", "orders", f"GET /users/{{id}}/orders?limit={ORDERS_PAGE}", "eager_loading"),
    Endpoint("dashboard", "dashboard", "GET /users/{id}/dashboard", "concurrency"),
    # The same at a light load: what the branches' concurrency gives when the one worker is
    # not busy (informational; the target is judged under the plan's concurrency).
    Endpoint("dashboard_light", "dashboard", "GET /users/{id}/dashboard", "concurrency", LIGHT),
)


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    seconds: float
    reps: int
    warmup: float
    concurrency: int = CONCURRENCY
    max_requests: int = MAX_REQUESTS


# -- the load client ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One timed sample: ``answered`` 200s in ``seconds``, their latencies (seconds);
    ``errors`` answers that were not 200; ``fallbacks`` 200s without what ``expect`` asked."""

    answered: int
    seconds: float
    latencies: list[float]
    errors: int
    fallbacks: int
    server_cpu: float | None  # seconds of server CPU during the sample

    @property
    def per_second(self) -> float:
        return self.answered / self.seconds if self.seconds > 0 else 0.0


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    at = lowered.find(b"\r\ncontent-length:")
    if at < 0:
        raise RuntimeError(f"response without content-length: {head[:200]!r}")
    start = at + len(b"\r\ncontent-length:")
    return int(lowered[start : lowered.index(b"\r\n", start)])


def get_request(path: str, token: str | None = None) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


async def drive(
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    seconds: float,
    max_requests: int,
    expect: bytes = b"",
    cpu: Callable[[], float | None] = lambda: None,
) -> Sample:
    """A closed loop: ``concurrency`` keep-alive connections, each sending ``requests[i]`` (i
    stepping by ``concurrency`` from its own index) and reading the whole answer before the
    next, until ``seconds`` have passed or ``max_requests`` were sent. Connections open before
    the clock starts and close after it stops."""
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    latencies: list[float] = []
    remaining = max_requests
    errors = fallbacks = 0
    clock = time.perf_counter
    n = len(requests)

    async def worker(k: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal remaining, errors, fallbacks
        i = k
        record = latencies.append
        while remaining > 0 and clock() < deadline:
            remaining -= 1
            sent = clock()
            writer.write(requests[i % n])
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(_content_length(head))
            if not head.startswith(b"HTTP/1.1 200 "):
                errors += 1
            elif expect and expect not in body:
                fallbacks += 1
            else:
                record(clock() - sent)
            i += concurrency

    cpu_before = cpu()
    try:
        for _ in range(concurrency):
            conns.append(await asyncio.open_connection("127.0.0.1", port))
        start = clock()
        deadline = start + seconds
        # A server that stops answering fails the sample instead of hanging the benchmark.
        async with asyncio.timeout(seconds + STALLED):
            await asyncio.gather(*(worker(k, r, w) for k, (r, w) in enumerate(conns)))
        elapsed = clock() - start
    finally:
        for _, writer in conns:
            writer.close()
        for _, writer in conns:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    cpu_after = cpu()
    used = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Sample(len(latencies), elapsed, latencies, errors, fallbacks, used)


# -- the server processes -------------------------------------------------------------------------


class Process:
    """A ``python -m bench._shop_server ...`` child in its own process group (stopped as a
    group); it stops by itself when our end of its stdin closes."""

    def __init__(self, name: str, args: Sequence[str], env: dict[str, str], cpus: set[int] | None):
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._shop_server", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        if cpus is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(self.proc.pid, cpus)

    async def announce(self, prefix: str, within: float) -> list[str]:
        """The words after ``prefix`` on the child's first stdout line."""
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), within)
        except TimeoutError:
            raise RuntimeError(f"{self.name}: did not start within {within:g} s") from None
        words = line.decode().split()
        if words[:1] != [prefix]:
            raise RuntimeError(f"{self.name}: exited ({self.proc.poll()}) before serving: {line!r}")
        return words[1:]

    def cpu_seconds(self) -> float | None:
        """User + system CPU time used so far (Linux ``/proc``), or None."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM to the group (uvicorn's graceful shutdown), SIGKILL after 5 s; reap it."""
        proc = self.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Shop(Process):
    port = 0

    async def ready(self, within: float = START_WITHIN) -> None:
        """Read the announced port, then poll ``/healthz`` until it answers 200 (the lifespan,
        migration and seed included, has run)."""
        deadline = time.monotonic() + within
        self.port = int((await self.announce("PORT", within))[0])
        while True:
            try:
                status, _ = await fetch(self.port, "/healthz", within=2.0)
                if status == 200:
                    return
            except (OSError, TimeoutError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: never answered /healthz on {self.port}")
            await asyncio.sleep(0.1)


def shop_env(base: dict[str, str], naive: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOP_")}
    env.update(base)
    env["SHOP_NAIVE"] = naive
    return env


@contextlib.contextmanager
def started(processes: list[Process]) -> Iterator[None]:
    """Stop every process appended to ``processes`` on the way out, whatever happens."""
    try:
        yield
    finally:
        for process in reversed(processes):
            process.stop()


# -- PostgreSQL -----------------------------------------------------------------------------------


def postgres_candidates(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    configured = os.environ.get("TAILGUARD_DATABASE_URL")
    if configured:
        return [configured]
    users = dict.fromkeys(["root", getpass.getuser(), "postgres"])
    return [f"postgresql+asyncpg://{user}@127.0.0.1:5432/postgres" for user in users]


def _asyncpg_url(url: str) -> str:
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


@contextlib.asynccontextmanager
async def postgres_database(explicit: str | None) -> AsyncIterator[tuple[str | None, str]]:
    """(the URL of a fresh database ``shop_bench_<hex>``, "") or (None, why not); the database
    is dropped on the way out."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    problems = []
    admin = None
    for url in map(_asyncpg_url, postgres_candidates(explicit)):
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql("SELECT 1")
        except Exception as exc:
            await engine.dispose()
            problems.append(f"{make_url(url).render_as_string()}: {type(exc).__name__}: {exc}")
            continue
        admin = engine
        break
    if admin is None:
        yield None, "; ".join(problems)
        return
    name = f"shop_bench_{uuid.uuid4().hex[:16]}"
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield admin.url.set(database=name).render_as_string(hide_password=False), ""
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


# -- one database ---------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Cell:
    """One (endpoint, variant): its samples."""

    samples: list[Sample] = dataclasses.field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return sorted(x for s in self.samples for x in s.latencies)

    def percentile(self, q: float) -> float:
        values = self.latencies
        if not values:
            return math.nan
        return values[max(0, math.ceil(q * len(values)) - 1)]

    @property
    def per_second(self) -> float:
        return statistics.median(s.per_second for s in self.samples) if self.samples else 0.0

    @property
    def answered(self) -> int:
        return sum(s.answered for s in self.samples)

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self.samples)

    @property
    def fallbacks(self) -> int:
        return sum(s.fallbacks for s in self.samples)

    @property
    def cpu_ms(self) -> float | None:
        values = [
            s.server_cpu * 1000 / (s.answered + s.errors + s.fallbacks)
            for s in self.samples
            if s.server_cpu is not None and s.answered
        ]
        return statistics.median(values) if values else None


@dataclasses.dataclass(slots=True)
class DbResult:
    name: str
    skipped: str = ""
    cells: dict[tuple[str, str], Cell] = dataclasses.field(default_factory=dict)
    queries: dict[str, float] = dataclasses.field(default_factory=dict)  # "on"/"naive" -> median
    heavy_users: list[int] = dataclasses.field(default_factory=list)
    pinned: str = ""

    def cell(self, endpoint: str, variant: str) -> Cell:
        return self.cells.setdefault((endpoint, variant), Cell())


async def sign_in(port: int) -> dict[int, str]:
    """Tokens of users 1..USERS, through ``POST /auth/token``."""
    import aiohttp

    tokens = {}
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{port}", timeout=aiohttp.ClientTimeout(total=STALLED)
    ) as session:
        for user in range(1, USERS + 1):
            form = {"username": f"user{user}@shop.test", "password": "demo"}
            async with session.post("/auth/token", data=form) as response:
                if response.status != 200:
                    raise RuntimeError(f"sign-in of user {user}: {response.status}")
                tokens[user] = (await response.json())["access_token"]
    return tokens


async def heavy_users(port: int, tokens: dict[int, str]) -> list[int]:
    """The users whose first page of orders is full, read through the API."""
    import aiohttp

    found = []
    async with aiohttp.ClientSession(
        f"http://127.0.0.1:{port}", timeout=aiohttp.ClientTimeout(total=STALLED)
    ) as session:
        for user, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"}
            path = f"/users/{user}/orders?limit={ORDERS_PAGE}"
            async with session.get(path, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"GET {path}: {response.status}")
                if len((await response.json())["items"]) >= ORDERS_PAGE:
                    found.append(user)
    return found


async def count_queries(env: dict[str, str], users: Sequence[int]) -> dict[str, float]:
    """Statements one ``orders_page(limit=20)`` sends, on and naive: the median over ``users``
    (each counted on its second call: the first warms the pool and the mappers)."""
    from shop.bootstrap import bootstrap
    from shop.config import load_settings
    from shop.service_layer.views import orders_page
    from tailguard.observe import QueryCounter

    overrides = {
        "data_dir": env["SHOP_DATA_DIR"],
        "secret_key": env["SHOP_SECRET_KEY"],
        "admin_token": env["SHOP_ADMIN_TOKEN"],
        "payments_urls": env["SHOP_PAYMENTS_URLS"],
        "recommendations_urls": env["SHOP_RECOMMENDATIONS_URLS"],
    }
    if "SHOP_DATABASE_URL" in env:
        overrides["database_url"] = env["SHOP_DATABASE_URL"]
    counts: dict[str, float] = {}
    for variant, naive in (("on", ""), ("naive", "eager_loading")):
        settings = load_settings(**overrides, naive=naive)
        per_user = []
        async with bootstrap(settings) as svc:
            with QueryCounter(svc.extras["engine"], on_n_plus_one="ignore") as counter:
                for user in users:
                    page = await orders_page(svc, user, before=None, limit=ORDERS_PAGE)
                    before = counter.total
                    page = await orders_page(svc, user, before=None, limit=ORDERS_PAGE)
                    per_user.append(counter.total - before)
                    if len(page["items"]) != ORDERS_PAGE:
                        raise RuntimeError(f"user {user}: {len(page['items'])} orders on a page")
        counts[variant] = statistics.median(per_user)
    return counts


def product_ids(count: int = 4096, seed: int = 11) -> list[int]:
    """Zipf-like product ids (s = PRODUCT_SKEW), popularity ranks shuffled over the ids."""
    from shop.adapters.seed import zipf_cum_weights

    rng = random.Random(seed)
    catalogue = list(range(1, PRODUCTS + 1))
    rng.shuffle(catalogue)
    return rng.choices(catalogue, cum_weights=zipf_cum_weights(PRODUCTS, PRODUCT_SKEW), k=count)


async def sample(
    server: Shop, endpoint: Endpoint, requests: Sequence[bytes], plan: Plan, warmup: bool = False
) -> Sample:
    """One sample of ``endpoint`` on ``server`` (the dashboard's answers must be live)."""
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.name}: exited ({server.proc.poll()})")
    return await drive(
        server.port,
        requests,
        concurrency=endpoint.connections or plan.concurrency,
        seconds=plan.warmup if warmup else plan.seconds,
        max_requests=plan.max_requests,
        expect=b'"recommendations_source":"live"' if endpoint.route == "dashboard" else b"",
        cpu=server.cpu_seconds,
    )


async def run_database(
    result: DbResult,
    base_env: dict[str, str],
    plan: Plan,
    tokens: dict[int, str],
    server_cpus: set[int] | None,
) -> None:
    """The whole plan on one database (its SHOP_* in ``base_env``); fills ``result``.
    ``tokens`` is filled on first use (sign-in through the first shop)."""
    name = result.name
    processes: list[Process] = []
    with started(processes):
        eprint(f"shop: {name}: starting the practice-on shop (migrate, seed) ...")
        on = Shop(f"{name} shop (on)", ["shop"], shop_env(base_env, ""), server_cpus)
        processes.append(on)
        await on.ready()
        if not tokens:
            eprint(f"shop: signing in users 1..{USERS} ...")
            tokens.update(await sign_in(on.port))
        heavy = result.heavy_users = await heavy_users(on.port, tokens)
        if not heavy:
            raise RuntimeError(f"{name}: no user among 1..{USERS} has {ORDERS_PAGE} orders")
        eprint(f"shop: {name}: counting statements per /orders page in process ...")
        result.queries = await count_queries(base_env, heavy[:QUERY_USERS])
        ids = product_ids()
        requests = {
            "products": [get_request(f"/products/{i}") for i in ids],
            "orders": [
                get_request(f"/users/{u}/orders?limit={ORDERS_PAGE}", tokens[u]) for u in heavy
            ],
            "dashboard": [get_request(f"/users/{u}/dashboard", t) for u, t in tokens.items()],
        }
        for naive in dict.fromkeys(e.naive for e in ENDPOINTS):
            eprint(f"shop: {name}: starting the SHOP_NAIVE={naive} shop ...")
            twin = Shop(
                f"{name} shop ({naive})",
                ["shop", "--no-prepare"],
                shop_env(base_env, naive),
                server_cpus,
            )
            processes.append(twin)
            await twin.ready()
            servers = {"on": on, "naive": twin}
            for endpoint in (e for e in ENDPOINTS if e.naive == naive):
                wanted = requests[endpoint.route]
                for variant in servers:
                    await sample(servers[variant], endpoint, wanted, plan, warmup=True)
                for rep in range(plan.reps):
                    order = ("on", "naive") if rep % 2 == 0 else ("naive", "on")
                    for variant in order:
                        got = await sample(servers[variant], endpoint, wanted, plan)
                        result.cell(endpoint.key, variant).samples.append(got)
                    eprint(
                        f"shop: {name}: {endpoint.label} x{endpoint.connections or plan.concurrency}: "
                        f"repetition {rep + 1}/{plan.reps} done"
                    )
            twin.stop()


async def run_all(plan: Plan, postgres_url: str | None, skip_postgres: bool) -> list[DbResult]:
    split = split_cpus()
    server_cpus = None
    pinned = "client, simulators and shops share the machine's cores, nothing pinned"
    if split is not None:
        client_cpus, server_cpus = split
        os.sched_setaffinity(0, client_cpus)  # restored by main
        pinned = (
            f"client and simulators pinned to CPU {','.join(map(str, sorted(client_cpus)))}, "
            f"shops to CPU {','.join(map(str, sorted(server_cpus)))}; PostgreSQL unpinned"
        )
    results: list[DbResult] = []
    tokens: dict[int, str] = {}
    processes: list[Process] = []
    with (
        started(processes),
        tempfile.TemporaryDirectory(prefix="shop-bench-") as directory,
    ):
        sims = Process(
            "simulators", ["simulators", str(REPLICAS), str(BRANCH_MS)], {**os.environ}, None
        )
        processes.append(sims)
        recommenders, payments = await sims.announce("URLS", 30.0)
        common = {
            "SHOP_SECRET_KEY": secrets.token_urlsafe(32),
            "SHOP_ADMIN_TOKEN": secrets.token_urlsafe(16),
            "SHOP_CART_RATE": "100000/second",
            "SHOP_RECOMMENDATIONS_URLS": recommenders,
            "SHOP_PAYMENTS_URLS": payments,
            "SHOP_RECOMMENDATION_TIMEOUT": "1.0",
        }
        sqlite = DbResult("SQLite", pinned=pinned)
        results.append(sqlite)
        env = {**common, "SHOP_DATA_DIR": str(Path(directory) / "sqlite")}
        await run_database(sqlite, env, plan, tokens, server_cpus)
        if skip_postgres:
            results.append(DbResult("PostgreSQL", skipped="--no-postgres"))
            return results
        async with postgres_database(postgres_url) as (url, problem):
            if url is None:
                eprint(f"shop: PostgreSQL skipped: {problem}")
                results.append(DbResult("PostgreSQL", skipped=problem))
                return results
            pg = DbResult("PostgreSQL", pinned=pinned)
            results.append(pg)
            env = {
                **common,
                "SHOP_DATA_DIR": str(Path(directory) / "postgres"),
                "SHOP_DATABASE_URL": url,
            }
            await run_database(pg, env, plan, tokens, server_cpus)
    return results


# -- output ---------------------------------------------------------------------------------------


def table(result: DbResult, concurrency: int, *, markdown: bool) -> str:
    rows = []
    for endpoint in ENDPOINTS:
        on = result.cell(endpoint.key, "on")
        for variant in ("on", "naive"):
            cell = result.cell(endpoint.key, variant)
            naive = "-" if variant == "on" else endpoint.naive
            queries = "-"
            if endpoint.key == "orders" and result.queries:
                queries = f"{result.queries[variant]:g}"
            cpu = cell.cpu_ms
            trouble = cell.errors + cell.fallbacks
            rows.append(
                [
                    f"`{endpoint.label}`" if markdown else endpoint.label,
                    "practice on" if variant == "on" else "naive twin",
                    f"`{naive}`" if markdown and variant != "on" else naive,
                    str(endpoint.connections or concurrency),
                    f"{cell.answered:,}" + (f" (+{trouble} bad)" if trouble else ""),
                    f"{cell.per_second:,.0f}",
                    f"{cell.percentile(0.50) * 1000:,.1f}",
                    f"{cell.percentile(0.99) * 1000:,.1f}",
                    "-" if cpu is None else f"{cpu:.2f}",
                    queries,
                    f"{ratio(cell.per_second, on.per_second):.2f}x",
                    f"{ratio(cell.percentile(0.5), on.percentile(0.5)):.2f}x",
                ]
            )
    heads = [
        "endpoint",
        "variant",
        "SHOP_NAIVE",
        "conns",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
        "queries/req",
        "req/s x on",
        "p50 x on",
    ]
    return render_table(heads, rows, markdown=markdown, align=[*"<<<", *">" * 9])


def targets(result: DbResult, plan: Plan, quick: bool) -> list[Target]:
    name = result.name
    note = "--quick" if quick else ""
    q_on, q_naive = result.queries["on"], result.queries["naive"]
    cached = result.cell("products", "on").per_second
    uncached = result.cell("products", "naive").per_second
    dash = result.cell("dashboard", "on")
    dash_naive = result.cell("dashboard", "naive")
    light = result.cell("dashboard_light", "on")
    on_cpu, naive_cpu = (
        result.cell("products", "on").cpu_ms,
        result.cell("products", "naive").cpu_ms,
    )
    cpu_ratio = ratio(naive_cpu, on_cpu) if on_cpu and naive_cpu else None

    def paired(key: str) -> float:
        """The median over the repetitions of on's req/s over naive's in the same one."""
        pairs = zip(result.cell(key, "on").samples, result.cell(key, "naive").samples, strict=True)
        return statistics.median(ratio(a.per_second, b.per_second) for a, b in pairs)

    bad = dash.fallbacks + dash.errors
    return [
        Target(
            f"{name}: statements per /orders page of {ORDERS_PAGE}, naive twin / eager",
            ratio(q_naive, q_on),
            ">=",
            QUERIES_FACTOR,
            _join(f"{q_naive:g} vs {q_on:g} statements, in process", note),
        ),
        Target(
            f"{name}: GET /products/{{id}} req/s, cached / SHOP_NAIVE=cache",
            ratio(cached, uncached),
            ">=",
            CACHE_FACTOR,
            _join(
                f"{cached:,.0f} vs {uncached:,.0f} req/s",
                f"paired per repetition {paired('products'):.2f}",
                f"server CPU ms/req naive / on {cpu_ratio:.2f}" if cpu_ratio else "",
                note,
            ),
        ),
        Target(
            f"{name}: GET /users/{{id}}/dashboard p50 ms, concurrent, {plan.concurrency} connections",
            dash.percentile(0.5) * 1000,
            "<=",
            BRANCH_MS + DASHBOARD_SLACK_MS,
            _join(
                f"slowest branch {BRANCH_MS:g} ms + {DASHBOARD_SLACK_MS:g}",
                f"sequential twin {dash_naive.percentile(0.5) * 1000:.1f} ms",
                f"at {LIGHT} connections {light.percentile(0.5) * 1000:.1f} ms",
                f"{bad} answers without live recommendations" if bad else "",
                note,
            ),
        ),
    ]


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench shop",
        description="The shop over HTTP on SQLite and PostgreSQL: each practice on against "
        "its naive twin (SHOP_NAIVE).",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test: one short sample each")
    parser.add_argument("--markdown", action="store_true", help="print GitHub markdown tables")
    parser.add_argument(
        "--reps", type=int, default=None, help=f"timed samples per variant (default {REPS})"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help=f"seconds per sample (default {SECONDS:g})"
    )
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help="connections of the closed loop"
    )
    parser.add_argument(
        "--postgres-url",
        default=None,
        help="a server to create the throwaway database on (AUTOCOMMIT); default "
        "$TAILGUARD_DATABASE_URL, else root then postgres on 127.0.0.1:5432",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table per database and the targets; return the results."""
    args = parse(argv)
    quick: bool = args.quick
    plan = Plan(
        seconds=args.seconds or (QUICK_SECONDS if quick else SECONDS),
        reps=max(1, args.reps or (QUICK_REPS if quick else REPS)),
        warmup=QUICK_WARMUP if quick else WARMUP,
        concurrency=max(1, args.concurrency),
    )
    settings = Settings(plan.reps, plan.seconds, args.markdown, quick)
    started_at = time.perf_counter()
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            results = runner.run(run_all(plan, args.postgres_url, args.no_postgres))
    finally:
        if affinity is not None:
            os.sched_setaffinity(0, affinity)

    md = settings.markdown
    title = "shop: each practice on against its naive twin (SHOP_NAIVE), over HTTP"
    measured = [r for r in results if not r.skipped]
    lines = [
        *header(title, settings)[:2],
        f"per (endpoint, variant): a {plan.warmup:g} s warm-up, then {plan.reps} samples of "
        f"{plan.seconds:g} s (or {plan.max_requests:,} requests), on and naive alternating; "
        f"req/s: median over the samples; p50/p99: over all their latencies; closed loop of "
        f"{plan.concurrency} keep-alive connections (the dashboard also at {LIGHT}) from one client process "
        f"({server_loop()}); each shop one uvicorn worker (httptools, {server_loop()}); "
        f"{measured[0].pinned if measured else ''}",
        f"users 1..{USERS} signed in once (one SHOP_SECRET_KEY for every shop); product ids "
        f"Zipf s={PRODUCT_SKEW} over {PRODUCTS}; /orders over the users with a full page of "
        f"{ORDERS_PAGE}; dashboard: {REPLICAS} recommender replicas at a constant "
        f"{BRANCH_MS:g} ms, SHOP_RECOMMENDATION_TIMEOUT=1.0",
    ]
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))
    goals: list[Target] = []
    for result in results:
        if result.skipped:
            print(f"{'#### ' if md else ''}{result.name}: skipped ({result.skipped})\n")
            continue
        heading = (
            f"{result.name}: heavy users {len(result.heavy_users)} of {USERS}; "
            f"queries/req counted in process (median over {min(QUERY_USERS, len(result.heavy_users))} users)"
        )
        print(f"#### {heading}\n" if md else f"{heading}\n")
        print(table(result, plan.concurrency, markdown=md))
        print()
        goals += targets(result, plan, quick)
    if measured:
        print(
            "conns: connections of the closed loop; req/s x on, p50 x on: the row's figure over "
            "the practice-on row's; server CPU ms/req: the shop process' user + system CPU time "
            "per answer, median over the samples (/proc, 10 ms ticks); queries/req: statements "
            f"one orders_page(limit={ORDERS_PAGE}) sends, counted in process; bad: answers not "
            "200, or dashboards without live recommendations (left out of the latencies).\n"
        )
    if not md:
        print("Targets:")
    bullet = "- " if md else "  "
    print("\n".join(f"{bullet}{t.line()}" for t in goals))
    eprint(f"shop: done in {time.perf_counter() - started_at:.0f} s")
    return {
        "plan": dataclasses.asdict(plan),
        "databases": {
            r.name: {
                "skipped": r.skipped,
                "heavy_users": r.heavy_users,
                "queries_per_orders_page": r.queries,
                "cells": {
                    f"{endpoint}/{variant}": {
                        "requests": cell.answered,
                        "errors": cell.errors,
                        "fallbacks": cell.fallbacks,
                        "requests_per_second": cell.per_second,
                        "samples_per_second": [s.per_second for s in cell.samples],
                        "p50_ms": cell.percentile(0.5) * 1000,
                        "p99_ms": cell.percentile(0.99) * 1000,
                        "server_cpu_ms_per_request": cell.cpu_ms,
                    }
                    for (endpoint, variant), cell in r.cells.items()
                },
            }
            for r in results
        },
        "targets": [t.as_dict() for t in goals],
    }


if __name__ == "__main__":
    main()
