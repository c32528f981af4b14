"""QueryCounter, statement shapes, the pytest fixtures and soak, on SQLite (no server).

The real PostgreSQL versions of the guide's example are in
tests/integration/test_queries_postgres.py and tests/integration/test_leaks.py.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, String, create_engine, insert, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import StaticPool

from tailguard.errors import ConfigurationError, TailguardError
from tailguard.observe._shapes import is_read
from tailguard.observe.leaks import (
    ConnectionLeak,
    ConnectionWatch,
    assert_no_leaks,
    checked_out,
    redis_in_use,
    soak,
)
from tailguard.observe.queries import (
    NPlusOneDetected,
    QueryCounter,
    QueryCounterMiddleware,
    statement_shape,
)

# -- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "shape"),
    [
        ("SELECT a \n  FROM t\n\tWHERE id = ?", "SELECT a FROM t WHERE id = ?"),
        ("SELECT a FROM t WHERE id IN (?, ?, ?)", "SELECT a FROM t WHERE id IN (...)"),
        ("SELECT a FROM t WHERE id IN (?)", "SELECT a FROM t WHERE id IN (...)"),
        (
            "SELECT a FROM t WHERE id IN ($1::INTEGER, $2::INTEGER, $3::INTEGER)",
            "SELECT a FROM t WHERE id IN (...)",
        ),
        (
            "SELECT a FROM t WHERE id IN (%(id_1_1)s, %(id_1_2)s)",
            "SELECT a FROM t WHERE id IN (...)",
        ),
        ("SELECT a FROM t WHERE id IN (:id_1, :id_2)", "SELECT a FROM t WHERE id IN (...)"),
        ("SELECT a FROM t WHERE id IN (__[POSTCOMPILE_id_1])", "SELECT a FROM t WHERE id IN (...)"),
        ("SELECT a FROM t WHERE id in (1, 2,3)", "SELECT a FROM t WHERE id IN (...)"),
        (
            "SELECT a FROM t WHERE id IN (SELECT b FROM u)",
            "SELECT a FROM t WHERE id IN (SELECT b FROM u)",
        ),
        ("SELECT a FROM t WHERE n = 'it''s' AND m = 4.5", "SELECT a FROM t WHERE n = ? AND m = ?"),
        ("SELECT a FROM t WHERE x = $1::VARCHAR", "SELECT a FROM t WHERE x = ?::VARCHAR"),
        ('SELECT "t1"."col 2" FROM t1 LIMIT 10', 'SELECT "t1"."col 2" FROM t1 LIMIT ?'),
        (
            "/* trace=abc */ SELECT a FROM t -- request 42\nWHERE id = ?",
            "SELECT a FROM t WHERE id = ?",
        ),
        (
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)",
            "INSERT INTO t (a, b) VALUES (?, ?)",
        ),
    ],
)
def test_statement_shape(sql: str, shape: str) -> None:
    assert statement_shape(sql) == shape


def test_shape_keeps_different_queries_apart() -> None:
    assert statement_shape("SELECT a FROM t WHERE id = ?") != statement_shape(
        "SELECT a FROM t WHERE name = ?"
    )


@pytest.mark.parametrize(
    ("shape", "read"),
    [
        ("SELECT a FROM t WHERE id = ?", True),
        ("select a from t where id = ? for update", True),
        ("(SELECT a FROM t) UNION (SELECT b FROM u)", True),
        ("WITH x AS (SELECT a FROM t) SELECT * FROM x", True),
        ('WITH x AS (SELECT "update" FROM t) SELECT * FROM x', True),
        ("VALUES (?)", True),
        ("WITH x AS (DELETE FROM t RETURNING a) SELECT * FROM x", False),
        ("INSERT INTO t (a) VALUES (?) RETURNING id", False),
        ("UPDATE t SET a = ? WHERE id = ?", False),
        ("DELETE FROM t WHERE id = ?", False),
        ("CREATE TABLE t (a INTEGER)", False),
    ],
)
def test_is_read(shape: str, read: bool) -> None:
    assert is_read(shape) is read


# -- counting --------------------------------------------------------------------------------


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)"))
        conn.execute(
            text("INSERT INTO t VALUES (:id, :name)"),
            [{"id": i, "name": f"n{i}"} for i in range(20)],
        )
    yield engine
    engine.dispose()


def run(engine: Engine, n: int, *, same: bool = False) -> None:
    with engine.connect() as conn:
        for i in range(n):
            conn.execute(text("SELECT name FROM t WHERE id = :id"), {"id": 0 if same else i})


def test_counts_per_scope_and_total(engine: Engine) -> None:
    with QueryCounter(engine, on_n_plus_one="ignore") as counter:
        run(engine, 2)  # outside any scope: the total only
        with counter.scope("unit") as stats:
            run(engine, 3)
            with engine.connect() as conn:
                conn.execute(text("SELECT count(*) FROM t"))
    assert (stats.count, counter.total) == (4, 6)
    assert stats.by_shape["SELECT name FROM t WHERE id = ?"].count == 3
    assert stats.by_shape["SELECT name FROM t WHERE id = ?"].distinct == 3
    assert stats.statements[-1] == "SELECT count(*) FROM t"
    assert stats.n_plus_one == []


def test_executemany_counts_once(engine: Engine) -> None:
    with QueryCounter(engine) as counter, counter.scope("bulk") as stats, engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (:id, 'x')"), [{"id": 100 + i} for i in range(50)])
    assert stats.count == 1


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30))


def test_orm_bulk_insert_is_one_execution() -> None:
    """SQLite sends an ORM flush with RETURNING as one insertmanyvalues batch per row, all
    with one execution context: one execution, never an N+1 finding."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    Base.metadata.create_all(engine)
    with QueryCounter(engine, on_n_plus_one="raise", statements="all") as counter:
        with counter.scope("seed") as stats, Session(engine) as session:
            session.add_all(Item(name=f"n{i}") for i in range(500))
            session.commit()
        with counter.scope("core") as core, engine.begin() as conn:
            rows = conn.execute(
                insert(Item).returning(Item.id), [{"name": f"m{i}"} for i in range(300)]
            ).all()
    assert len(rows) == 300
    [(shape, shape_stats)] = [(k, v) for k, v in stats.by_shape.items() if "INSERT" in k]
    assert shape == "INSERT INTO item (name) VALUES (?) RETURNING id"
    assert (shape_stats.count, stats.count, stats.n_plus_one) == (1, 1, [])
    assert (core.count, counter.total) == (1, 2)
    engine.dispose()


async def test_async_orm_bulk_insert_is_one_execution(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    with QueryCounter(engine, threshold=5, on_n_plus_one="raise") as counter:
        async with counter.scope("bulk import") as stats, AsyncSession(engine) as session:
            session.add_all(Item(name=f"n{i}") for i in range(5000))
            await session.commit()
    assert stats.count == 1
    await engine.dispose()


def test_writes_are_findings_only_with_statements_all(engine: Engine) -> None:
    def insert_one_by_one() -> None:
        with engine.begin() as conn:
            for i in range(6):  # the loop is real, but a write loop is not the read N+1
                conn.execute(text("INSERT INTO t VALUES (:id, 'x')"), {"id": 200 + i})
            conn.execute(text("DELETE FROM t WHERE id >= 200"))

    with QueryCounter(engine, on_n_plus_one="raise") as counter, counter.scope("default") as s:
        insert_one_by_one()
    assert s.by_shape["INSERT INTO t VALUES (?, ?)"].count == 6
    assert s.n_plus_one == []
    with (
        QueryCounter(engine, on_n_plus_one="raise", statements="all") as counter,
        pytest.raises(NPlusOneDetected, match=r"6 x INSERT INTO t VALUES \(\?, \?\)"),
        counter.scope("all"),
    ):
        insert_one_by_one()


def test_threshold_needs_count_and_distinct_parameters(engine: Engine) -> None:
    with QueryCounter(engine, threshold=5, on_n_plus_one="ignore") as counter:
        with counter.scope("four") as four:
            run(engine, 4)
        with counter.scope("five") as five:
            run(engine, 5)
        with counter.scope("same") as same:
            run(engine, 10, same=True)  # a repeated identical query is a cache's job, not N+1
    assert four.n_plus_one == []
    assert same.n_plus_one == []
    [finding] = five.n_plus_one
    assert (finding.shape, finding.count, finding.distinct, finding.scope) == (
        "SELECT name FROM t WHERE id = ?",
        5,
        5,
        "five",
    )


def test_warn_logs_once_per_finding(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with (
        QueryCounter(engine, threshold=3) as counter,
        caplog.at_level(logging.WARNING, logger="tailguard.observe.queries"),
        counter.scope("GET /orders"),
    ):
        run(engine, 7)
    [record] = caplog.records
    assert record.name == "tailguard.observe.queries"
    assert record.levelno == logging.WARNING
    assert "'GET /orders'" in record.getMessage()
    assert "7 x SELECT name FROM t WHERE id = ?" in record.getMessage()


def test_raise_mode(engine: Engine) -> None:
    with QueryCounter(engine, on_n_plus_one="raise") as counter:
        with (
            pytest.raises(NPlusOneDetected, match=r"12 x SELECT name FROM t WHERE id = \?") as info,
            counter.scope("loop"),
        ):
            run(engine, 12)
        assert isinstance(info.value, TailguardError)
        assert [f.count for f in info.value.findings] == [12]

        def failing_request() -> None:
            with counter.scope("loop"):
                run(engine, 12)
                raise KeyError("boom")

        with pytest.raises(KeyError):  # the error on its way is never replaced by the finding
            failing_request()


def test_close_detaches(engine: Engine) -> None:
    counter = QueryCounter(engine)
    run(engine, 1)
    counter.close()
    counter.close()
    run(engine, 1)
    assert counter.total == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [("threshold", 1), ("on_n_plus_one", "explode"), ("statements", "writes")],
)
def test_bad_configuration(engine: Engine, option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=option):
        QueryCounter(engine, **{option: value})


@pytest.fixture
async def aengine() -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine("sqlite+aiosqlite://")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    yield engine
    await engine.dispose()


async def test_concurrent_tasks_keep_their_own_scopes(aengine: AsyncEngine) -> None:
    counter = QueryCounter(aengine, on_n_plus_one="ignore")

    async def request(name: str, n: int) -> int:
        async with counter.scope(name) as stats:
            for i in range(n):
                async with aengine.connect() as conn:
                    await conn.execute(text("SELECT :i"), {"i": i})
                await asyncio.sleep(0)  # interleave with the other request
        return stats.count

    async with counter.scope("outer") as outer:
        counts = await asyncio.gather(request("a", 3), request("b", 8))
    assert counts == [3, 8]
    assert outer.count == 11  # nested scopes see their children's statements
    counter.close()


async def test_middleware_names_the_scope_by_route(
    aengine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = SimpleNamespace(path="/orders/{id}")  # as Starlette's router does
        async with aengine.connect() as conn:
            for i in range(6):
                await conn.execute(text("SELECT :i"), {"i": i})

    with QueryCounter(aengine) as counter, caplog.at_level(logging.WARNING):
        middleware = QueryCounterMiddleware(app, counter=counter)
        await middleware({"type": "http", "method": "GET", "path": "/orders/7"}, None, None)
        await middleware({"type": "lifespan"}, None, None)
    [record] = caplog.records
    assert "'GET /orders/{id}'" in record.getMessage()


async def test_middleware_names_routes_under_mounts(
    aengine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    async def item(request: Any) -> PlainTextResponse:
        async with aengine.connect() as conn:
            for i in range(6):
                await conn.execute(text("SELECT :i"), {"i": i})
        return PlainTextResponse("ok")

    inner = Starlette(routes=[Route("/items/{id}", item)])
    app = Starlette(routes=[Mount("/v1", app=inner), Mount("/v2", routes=[Route("/x/{y}", item)])])
    with QueryCounter(aengine) as counter, caplog.at_level(logging.WARNING):
        middleware = QueryCounterMiddleware(app, counter=counter)
        for path in ("/v1/items/3", "/v2/x/4"):
            await asgi_get(middleware, path)
    names = [record.args[0] for record in caplog.records]  # type: ignore[index]
    assert names == ["GET /v1/items/{id}", "GET /v2/x/{y}"]  # never the route within the mount


async def asgi_get(app: Any, path: str) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": b"", "headers": [], "client": ("t", 1), "server": ("t", 80),
    }  # fmt: skip
    await app(scope, receive, send)


# -- the pytest fixtures ---------------------------------------------------------------------

GENERATED_TESTS = """
import pytest
from sqlalchemy import String, create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(30))


@pytest.fixture
def engine():
    engine = create_engine("sqlite:///{db}")
    yield engine
    engine.dispose()  # resets the pool's own count of checked-out connections


@pytest.fixture
def session(engine):  # the usual fixture: its connection goes back at teardown
    with Session(engine) as session:
        yield session


async def test_n_plus_one(query_counter):
    engine = create_async_engine("sqlite+aiosqlite://")
    query_counter(engine)
    async with engine.connect() as conn:
        for i in range(9):
            await conn.execute(text("SELECT :i"), {"i": i})
    await engine.dispose()


async def test_one_query(query_counter, no_leaked_connections):
    engine = create_async_engine("sqlite+aiosqlite:///{db}")
    counter = query_counter(engine)
    no_leaked_connections(engine)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    assert counter.total == 1
    await engine.dispose()


async def test_leak(no_leaked_connections):
    engine = create_async_engine("sqlite+aiosqlite:///{db}")
    no_leaked_connections(engine)
    conn = await engine.connect()
    await conn.execute(text("SELECT 1"))
    test_leak.conn = conn  # kept alive, so the leak is ours and not the GC's


def test_session_fixture_is_no_leak(engine, session, no_leaked_connections):
    no_leaked_connections(engine)
    session.execute(text("SELECT 1"))


def test_leak_past_engine_dispose(engine, no_leaked_connections):
    no_leaked_connections(engine)
    conn = engine.connect()
    conn.execute(text("SELECT 1"))
    test_leak_past_engine_dispose.conn = conn


def test_seeding_rows_is_no_n_plus_one(engine, session, query_counter, no_leaked_connections):
    Base.metadata.create_all(engine)
    query_counter(engine, statements="all")
    no_leaked_connections(engine)
    session.add_all(Item(name=f"n{i}") for i in range(50))  # one INSERT ... RETURNING per row
    session.commit()
    assert len(session.query(Item).all()) == 50


def test_failure_is_reported_once(engine, query_counter, no_leaked_connections):
    query_counter(engine)
    no_leaked_connections(engine)
    conn = engine.connect()
    for i in range(6):
        conn.execute(text("SELECT :i"), {"i": i})
    test_failure_is_reported_once.conn = conn
    assert False, "the real failure"
"""

IMPORTED_TESTS = """
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from tailguard.observe.pytest_plugin import no_leaked_connections, query_counter


@pytest.fixture
def engine():
    engine = create_engine("sqlite:///{db}")
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session


def test_failure_is_reported_once(engine, query_counter, no_leaked_connections):
    query_counter(engine)
    no_leaked_connections(engine)
    conn = engine.connect()
    for i in range(6):
        conn.execute(text("SELECT :i"), {"i": i})
    test_failure_is_reported_once.conn = conn
    assert False, "the real failure"


def test_n_plus_one_errors_at_teardown(engine, query_counter):
    query_counter(engine)
    with engine.connect() as conn:
        for i in range(7):
            conn.execute(text("SELECT :i"), {"i": i})


def test_leak_errors_at_teardown(no_leaked_connections, engine):
    no_leaked_connections(engine)
    conn = engine.connect()
    conn.execute(text("SELECT 1"))
    test_leak_errors_at_teardown.conn = conn


def test_session_fixture_requested_after(no_leaked_connections, engine, session):
    no_leaked_connections(engine)
    session.execute(text("SELECT 1"))
"""


def run_pytest(tmp_path: Path, source: str, *plugin: str) -> str:
    (tmp_path / "test_generated.py").write_text(source.replace("{db}", str(tmp_path / "db")))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", *plugin, "-p", "no:cacheprovider",
         "-o", "asyncio_mode=auto", "-W", "ignore", "test_generated.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result.stdout


def outcomes(out: str) -> dict[str, str]:
    """``{"test_x": "PASSED" | "FAILED" | "ERROR", ...}`` from ``-rA``: an error wins."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        word, _, rest = line.partition(" test_generated.py::")
        if rest and word in ("PASSED", "FAILED", "ERROR"):
            name = rest.split()[0]
            found[name] = "ERROR" if found.get(name) == "ERROR" else word
    return found


def test_fixtures_as_a_plugin(tmp_path: Path) -> None:
    """N+1 fails the test body; leaks are checked once every fixture is torn down (a session
    fixture is no leak, a disposed engine hides none); a failed test is reported once."""
    out = run_pytest(tmp_path, GENERATED_TESTS, "-p", "tailguard.observe.pytest_plugin")
    assert outcomes(out) == {
        "test_n_plus_one": "FAILED",
        "test_one_query": "PASSED",
        "test_leak": "ERROR",
        "test_session_fixture_is_no_leak": "PASSED",
        "test_leak_past_engine_dispose": "ERROR",
        "test_seeding_rows_is_no_n_plus_one": "PASSED",
        "test_failure_is_reported_once": "FAILED",
    }, out
    assert out.splitlines()[-1].startswith("2 failed, 5 passed, 2 errors"), out
    assert "N+1 queries in 'test_generated.py::test_n_plus_one':" in out
    assert "9 x SELECT ? (9 distinct parameter sets)" in out
    assert "ERROR at teardown of test_leak " in out
    assert "1 connection(s) still checked out of sqlite+aiosqlite:///" in out
    assert "ERROR at teardown of test_leak_past_engine_dispose" in out
    assert f"1 connection(s) still checked out of sqlite:///{tmp_path / 'db'}" in out
    assert "the real failure" in out
    assert "test_failure_is_reported_once'" not in out  # no N+1 message for the failed test


def test_fixtures_imported_into_a_module(tmp_path: Path) -> None:
    out = run_pytest(tmp_path, IMPORTED_TESTS)
    assert outcomes(out) == {
        "test_failure_is_reported_once": "FAILED",
        "test_n_plus_one_errors_at_teardown": "ERROR",
        "test_leak_errors_at_teardown": "ERROR",
        "test_session_fixture_requested_after": "PASSED",
    }, out
    assert out.splitlines()[-1].startswith("1 failed, 3 passed, 2 errors"), out
    assert "7 x SELECT ? (7 distinct parameter sets)" in out
    assert "6 x SELECT ?" not in out


# -- leaks -----------------------------------------------------------------------------------


async def test_checked_out_and_assert_no_leaks(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    conn = await engine.connect()
    await conn.execute(text("SELECT 1"))
    assert checked_out(engine) == checked_out(engine.sync_engine.pool) == 1
    with pytest.raises(
        ConnectionLeak, match=r"1 connection\(s\) still checked out of sqlite"
    ) as info:
        assert_no_leaks(engine)
    assert info.value.leaks == [(str(engine.url), 1)]
    await conn.close()
    assert_no_leaks(engine)
    await engine.dispose()


def test_connection_watch_counts_on_through_dispose(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    held = engine.connect()  # out before the watch: a fixture's connection
    with ConnectionWatch(engine) as watch:
        assert watch.leaks() == [(str(engine.url), 1)]
        held.close()
        watch.check()
        leaked = engine.connect()
        leaked.execute(text("SELECT 1"))
        with engine.connect() as returned:
            returned.execute(text("SELECT 2"))
        engine.dispose()  # QueuePool forgets what is out; the watch does not
        assert checked_out(engine) == 0
        with pytest.raises(ConnectionLeak, match=r"1 connection\(s\) still checked out of sqlite"):
            watch.check()
        with engine.connect() as again:  # the recreated pool is watched as well
            again.execute(text("SELECT 3"))
            assert watch.leaks() == [(str(engine.url), 2)]
        leaked.close()
        watch.check()
    late = engine.connect()
    assert watch.leaks() == []  # closed: no longer listening
    late.close()
    engine.dispose()


def test_connection_watch_rejects_what_it_cannot_count() -> None:
    with pytest.raises(TypeError, match="StaticPool"):
        ConnectionWatch(create_engine("sqlite://", poolclass=StaticPool))
    with pytest.raises(TypeError, match="not a redis"):
        ConnectionWatch(create_engine("sqlite:///unused.db"), object())


def test_pools_that_do_not_count() -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    with pytest.raises(TypeError, match="StaticPool"):
        checked_out(engine)
    with pytest.raises(TypeError, match="not a redis"):
        redis_in_use(object())


def test_redis_in_use_reads_the_pool_without_a_server() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis()  # connects lazily: nothing in use yet
    assert redis_in_use(client) == 0
    assert_no_leaks(client)


async def test_soak_measures_growth_per_thousand_requests() -> None:
    kept: list[bytes] = []

    async def leaky() -> None:
        kept.append(bytes(1024))

    async def clean() -> None:
        _ = [bytes(1024) for _ in range(3)]

    was_tracing = tracemalloc.is_tracing()
    leak = await soak(leaky, requests=3_000, every=500, warmup=100)
    assert 1024 * 1000 * 0.8 < leak.growth_per_1000 < 1024 * 1000 * 1.5
    assert leak.leaking()
    assert len(leak.samples) == 7
    assert __file__ in leak.top[0]
    fine = await soak(clean, requests=3_000, every=500, warmup=100)
    assert abs(fine.growth_per_1000) < 10_240
    assert not fine.leaking()
    assert tracemalloc.is_tracing() == was_tracing


async def test_soak_leaves_tracing_on_when_it_was() -> None:
    async def noop() -> None:
        pass

    tracemalloc.start()
    try:
        await soak(noop, requests=200, every=100, warmup=0)
        assert tracemalloc.is_tracing()
    finally:
        tracemalloc.stop()
    with pytest.raises(ConfigurationError, match="requests"):
        await soak(noop, requests=100, every=100)
