"""Real backing services for the test suite: Redis, a Redis Cluster and PostgreSQL.

Loaded as a pytest plugin from ``tests/conftest.py``. Fixtures:

``redis_url`` (session, ``str``)
    ``$TAILGUARD_REDIS_URL`` or ``redis://127.0.0.1:6379/0``. When nothing answers PING
    there, a throwaway ``redis-server`` is started on a free loopback port for the session.
    The server is shared: isolate keys with ``redis_prefix`` (or use another db number).
``redis_prefix`` (function, ``str``)
    A unique key prefix ``tgtest:<uuid4hex>:``; keys under it are deleted afterwards.
``database_url`` (session, ``str``)
    An SQLAlchemy async URL (``postgresql+asyncpg://...``): ``$TAILGUARD_DATABASE_URL`` or
    the local server at 127.0.0.1:5432, database ``test``, trust auth. When it cannot be
    reached, a throwaway cluster is made with ``initdb`` and started with ``pg_ctl``.
``redis_cluster`` (session, ``RedisClusterInfo``)
    A fresh three-master Redis Cluster (no replicas), started only when a test asks for it:
    ``.startup_nodes`` ``[(host, port), ...]``, ``.url`` (first node), ``.urls``.
``redis_cluster_urls`` (session, ``list[str]``)
    The same cluster's node URLs.

When a service can neither be reached nor started, the test is skipped with the reason,
except under ``CI=true``, where it fails: CI must never silently lose coverage.

Tests that use these fixtures are marked ``redis`` / ``postgres`` automatically.
The ``start_*`` / ``resolve_*`` helpers are public so the fallback paths can be tested.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import getpass
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

import pytest

__all__ = [
    "DEFAULT_REDIS_URL",
    "REDIS_CLUSTER_SLOTS",
    "RedisClusterInfo",
    "ServiceUnavailable",
    "ThrowawayPostgres",
    "ThrowawayRedis",
    "ThrowawayRedisCluster",
    "default_database_urls",
    "delete_prefixed_keys",
    "free_port",
    "postgres_reachable",
    "prefixed_keyspace",
    "redis_ping",
    "require_service",
    "resolve_database_url",
    "resolve_redis_url",
    "skip_or_fail",
    "start_redis_cluster",
    "start_throwaway_postgres",
    "start_throwaway_redis",
]

T = TypeVar("T")

REDIS_URL_ENV = "TAILGUARD_REDIS_URL"
DATABASE_URL_ENV = "TAILGUARD_DATABASE_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PG_HOST = "127.0.0.1"
DEFAULT_PG_PORT = 5432
DEFAULT_PG_DATABASE = "test"
REDIS_CLUSTER_SLOTS = 16384
LOOPBACK = "127.0.0.1"

PING_TIMEOUT = 0.5  # seconds, for a reachability probe
PG_CONNECT_TIMEOUT = 3.0
START_TIMEOUT = 10.0  # until a started server answers
CLUSTER_TIMEOUT = 20.0  # until every node reports cluster_state:ok
STOP_TIMEOUT = 5.0  # terminate, then kill
COMMAND_TIMEOUT = 60.0  # initdb, pg_ctl, redis-cli


class ServiceUnavailable(Exception):
    """A service could neither be reached nor started; the message says what was tried."""


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the requesting test, or fail it under ``CI=true``."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def require_service(start: Callable[..., T], *args: Any, context: str = "") -> T:
    """``start(*args)``, turning ``ServiceUnavailable`` into ``skip_or_fail``."""
    try:
        return start(*args)
    except ServiceUnavailable as exc:
        reason = f"{context}{exc}"
    skip_or_fail(reason)  # outside ``except``: no chained traceback in the report


# -- generic helpers -------------------------------------------------------------------------


def free_port(*, bus_offset: int | None = None, exclude: Sequence[int] = ()) -> int:
    """A loopback TCP port that is free now; with ``bus_offset``, ``port + bus_offset`` too."""
    for _ in range(100):
        with contextlib.ExitStack() as held:
            main = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            main.bind((LOOPBACK, 0))
            port: int = main.getsockname()[1]
            if port in exclude:
                continue
            if bus_offset is None:
                return port
            bus = port + bus_offset
            if bus > 65535 or bus in exclude:
                continue
            other = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                other.bind((LOOPBACK, bus))
            except OSError:
                continue
            return port
    raise ServiceUnavailable("could not find a free loopback port")


def _wait_for(
    check: Callable[[], bool],
    *,
    timeout: float,
    processes: Sequence[subprocess.Popen[bytes]] = (),
    interval: float = 0.05,
) -> bool:
    """Poll ``check`` until true (True) or the deadline passes / a process exits (False)."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if any(p.poll() is not None for p in processes) or time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Stop a child: SIGTERM, a bounded wait, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(STOP_TIMEOUT)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def _run_async(factory: Callable[[], Coroutine[Any, Any, T]], timeout: float) -> T:
    """Run a coroutine to completion in a worker thread with its own event loop.

    Sync fixtures run between the event loops pytest-asyncio manages; a thread keeps
    ``asyncio.run`` from replacing (and then clearing) the main thread's current loop.
    """
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="tg-services")
    try:
        return pool.submit(lambda: asyncio.run(factory())).result(timeout)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# -- Redis -----------------------------------------------------------------------------------


def _resp(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        raw = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


def _connect(
    scheme: str, host: str | None, port: int | None, path: str, timeout: float
) -> socket.socket:
    if scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((host or LOOPBACK, port or 6379), timeout=timeout)
    if scheme != "rediss":
        return sock
    try:
        return ssl.create_default_context().wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def redis_ping(url: str, *, timeout: float = PING_TIMEOUT) -> bool:
    """True when the server at ``url`` answers a raw ``PING`` with ``+PONG``.

    Understands ``redis://``, ``rediss://`` and ``unix://`` URLs, with credentials.
    """
    parts = urlsplit(url)
    request = b""
    if parts.password is not None:
        auth = [unquote(parts.username)] if parts.username else []
        request += _resp("AUTH", *auth, unquote(parts.password))
    request += b"PING\r\n"
    expected_lines = 2 if parts.password is not None else 1  # +OK to AUTH, then +PONG
    try:
        with _connect(parts.scheme, parts.hostname, parts.port, parts.path, timeout) as sock:
            sock.sendall(request)
            received = b""
            deadline = time.monotonic() + timeout
            while received.count(b"\r\n") < expected_lines and time.monotonic() < deadline:
                chunk = sock.recv(256)
                if not chunk:
                    break
                received += chunk
    except OSError:
        return False
    replies = received.split(b"\r\n")[:expected_lines]
    return replies == [b"+OK", b"+PONG"][-expected_lines:]


def _redis_server_argv(port: int, directory: Path, *extra: str) -> list[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable("redis-server is not on PATH")
    return [
        binary,
        "--port", str(port),
        "--bind", LOOPBACK,
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        "--dir", str(directory),
        *extra,
    ]  # fmt: skip


def _spawn_redis(
    directory: Path, name: str, *, bus_offset: int | None = None, exclude: Sequence[int] = ()
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``redis-server`` on a free port and wait until it answers PING.

    Retries on a fresh port when the chosen one was taken in the meantime.
    """
    last_error = ""
    for _ in range(3):
        port = free_port(bus_offset=bus_offset, exclude=exclude)
        extra: list[str] = []
        if bus_offset is not None:
            extra = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
        argv = _redis_server_argv(port, directory, *extra)
        log = directory / f"{name}-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        url = f"redis://{LOOPBACK}:{port}/0"
        if _wait_for(
            functools.partial(redis_ping, url), timeout=START_TIMEOUT, processes=[process]
        ):
            return process, port
        _terminate(process)
        last_error = f"redis-server on port {port} did not answer PING: {_tail(log)}"
    raise ServiceUnavailable(last_error)


@dataclass
class ThrowawayRedis:
    """A ``redis-server`` child process owned by the test session."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    def stop(self) -> None:
        try:
            _terminate(self.process)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def start_throwaway_redis() -> ThrowawayRedis:
    """Start a private, non-persistent Redis on a free loopback port."""
    directory = Path(tempfile.mkdtemp(prefix="tailguard-redis-"))
    try:
        process, port = _spawn_redis(directory, "redis")
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return ThrowawayRedis(f"redis://{LOOPBACK}:{port}/0", port, process, directory)


class KillableRedis:
    """A ``redis-server`` a test may kill and bring back on the same port (reliability tests)."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tailguard-killable-"))
        self.process, self.port = _spawn_redis(self.directory, "killable")
        self.url = f"redis://{LOOPBACK}:{self.port}/0"

    def kill(self) -> None:
        """Stop the server at once (SIGKILL): clients see their connections drop."""
        self.process.kill()
        self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start it again on the same port and wait until it answers PING."""
        argv = _redis_server_argv(self.port, self.directory)
        with (self.directory / "restart.log").open("ab") as out:
            self.process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        if not _wait_for(
            functools.partial(redis_ping, self.url), timeout=START_TIMEOUT, processes=[self.process]
        ):
            raise ServiceUnavailable(f"redis-server did not come back on port {self.port}")

    def stop(self) -> None:
        try:
            _terminate(self.process)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def killable_redis() -> Iterator[KillableRedis]:
    """A private Redis the test may kill and restart; stopped afterwards."""
    server = require_service(KillableRedis, context="a killable redis-server: ")
    try:
        yield server
    finally:
        server.stop()


def resolve_redis_url(candidate: str) -> tuple[str, ThrowawayRedis | None]:
    """``candidate`` if it answers PING, else the URL of a throwaway server (and the server).

    Raises ``ServiceUnavailable`` naming both attempts when neither works.
    """
    if redis_ping(candidate):
        return candidate, None
    try:
        server = start_throwaway_redis()
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(
            f"Redis unavailable: nothing answered PING at {candidate} "
            f"(set ${REDIS_URL_ENV} to use another server), and a throwaway redis-server "
            f"could not be started: {exc}"
        ) from exc
    return server.url, server


def delete_prefixed_keys(url: str, prefix: str) -> int:
    """Delete every key starting with ``prefix``; returns how many were deleted."""
    import redis  # optional: only Redis tests need it

    deleted = 0
    with redis.Redis.from_url(url, socket_timeout=5) as client:
        batch: list[Any] = []
        for key in client.scan_iter(match=f"{prefix}*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(client.delete(*batch))
                batch.clear()
        if batch:
            deleted += int(client.delete(*batch))
    return deleted


@contextlib.contextmanager
def prefixed_keyspace(url: str) -> Iterator[str]:
    """A unique ``tgtest:<hex>:`` prefix whose keys are deleted when the block exits."""
    prefix = f"tgtest:{uuid.uuid4().hex}:"
    try:
        yield prefix
    finally:
        delete_prefixed_keys(url, prefix)


# -- Redis Cluster ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisClusterInfo:
    """Where a started Redis Cluster listens."""

    startup_nodes: list[tuple[str, int]]
    url: str  # the first node, ``redis://127.0.0.1:port``

    @property
    def urls(self) -> list[str]:
        """``redis://host:port`` of every node, in startup order."""
        return [f"redis://{host}:{port}" for host, port in self.startup_nodes]


@dataclass
class ThrowawayRedisCluster:
    info: RedisClusterInfo
    processes: list[subprocess.Popen[bytes]]
    directory: Path

    def stop(self) -> None:
        try:
            for process in self.processes:
                with contextlib.suppress(OSError):
                    process.terminate()
            for process in self.processes:
                _terminate(process)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


def _cluster_info(port: int) -> dict[str, str]:
    import redis

    with redis.Redis(host=LOOPBACK, port=port, socket_timeout=2, decode_responses=True) as c:
        raw: str | dict[str, Any] = c.execute_command("CLUSTER INFO")
    if isinstance(raw, dict):  # redis-py may already have parsed it
        return {str(k): str(v) for k, v in raw.items()}
    pairs = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def _cluster_ready(ports: Sequence[int]) -> bool:
    try:
        infos = [_cluster_info(port) for port in ports]
    except Exception:  # connection refused, LOADING, ...: not ready yet
        return False
    return all(
        info.get("cluster_state") == "ok"
        and info.get("cluster_slots_assigned") == str(REDIS_CLUSTER_SLOTS)
        and info.get("cluster_known_nodes") == str(len(ports))
        for info in infos
    )


def _slot_ranges(masters: int) -> list[tuple[int, int]]:
    bounds = [REDIS_CLUSTER_SLOTS * i // masters for i in range(masters + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(masters)]


def _create_cluster_manually(ports: Sequence[int]) -> None:
    """What ``redis-cli --cluster create`` does for masters only: slots, then MEET."""
    import redis

    for port, (first, last) in zip(ports, _slot_ranges(len(ports)), strict=True):
        with redis.Redis(host=LOOPBACK, port=port, socket_timeout=5) as client:
            try:
                client.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
            except redis.ResponseError:  # Redis < 7.0
                client.execute_command("CLUSTER ADDSLOTS", *range(first, last + 1))
            client.execute_command("CLUSTER SET-CONFIG-EPOCH", ports.index(port) + 1)
    with redis.Redis(host=LOOPBACK, port=ports[0], socket_timeout=5) as client:
        for port in ports[1:]:
            client.execute_command("CLUSTER MEET", LOOPBACK, port)


def start_redis_cluster(
    *, masters: int = 3, use_redis_cli: bool | None = None
) -> ThrowawayRedisCluster:
    """Start ``masters`` cluster-enabled nodes and join them into one cluster.

    ``use_redis_cli=None`` uses ``redis-cli --cluster create`` when available and assigns
    the slots by hand otherwise; ``True``/``False`` forces one way.
    """
    cli = shutil.which("redis-cli")
    if use_redis_cli is None:
        use_redis_cli = cli is not None
    if use_redis_cli and cli is None:
        raise ServiceUnavailable("redis-cli is not on PATH")
    directory = Path(tempfile.mkdtemp(prefix="tailguard-redis-cluster-"))
    cluster = ThrowawayRedisCluster(RedisClusterInfo([], ""), [], directory)
    try:
        ports: list[int] = []
        for _ in range(masters):
            taken = [*ports, *(p + 10000 for p in ports)]
            process, port = _spawn_redis(directory, "node", bus_offset=10000, exclude=taken)
            cluster.processes.append(process)
            ports.append(port)
        if use_redis_cli:
            assert cli is not None
            log = directory / "cluster-create.log"
            with log.open("wb") as out:
                result = subprocess.run(
                    [cli, "--cluster", "create", *(f"{LOOPBACK}:{p}" for p in ports),
                     "--cluster-replicas", "0", "--cluster-yes"],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    timeout=COMMAND_TIMEOUT, check=False,
                )  # fmt: skip
            if result.returncode != 0:
                raise ServiceUnavailable(f"redis-cli --cluster create failed: {_tail(log)}")
        else:
            _create_cluster_manually(ports)
        if not _wait_for(
            lambda: _cluster_ready(ports),
            timeout=CLUSTER_TIMEOUT,
            processes=cluster.processes,
            interval=0.1,
        ):
            raise ServiceUnavailable(
                f"Redis Cluster on ports {ports} did not reach cluster_state:ok "
                f"within {CLUSTER_TIMEOUT:.0f}s"
            )
    except BaseException:
        cluster.stop()
        raise
    nodes = [(LOOPBACK, port) for port in ports]
    cluster.info = RedisClusterInfo(nodes, f"redis://{LOOPBACK}:{ports[0]}")
    return cluster


# -- PostgreSQL ------------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    """``postgresql+asyncpg://...`` (SQLAlchemy) to ``postgresql://...`` (asyncpg)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _asyncpg() -> Any:
    """The asyncpg module, imported on first use (it ships no type information)."""
    import asyncpg  # type: ignore[import-untyped]

    return asyncpg


def postgres_reachable(url: str, *, timeout: float = PG_CONNECT_TIMEOUT) -> str | None:
    """None when asyncpg can log in at ``url`` and run ``SELECT 1``; else why not."""
    asyncpg = _asyncpg()
    dsn = _asyncpg_dsn(url)

    async def probe() -> None:
        connection = await asyncpg.connect(dsn, timeout=timeout)
        try:
            if await connection.fetchval("SELECT 1") != 1:
                raise RuntimeError("SELECT 1 did not return 1")
        finally:
            await connection.close(timeout=timeout)

    try:
        _run_async(probe, timeout * 2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def default_database_urls() -> list[str]:
    """The local server, as the current OS user first and then as ``postgres``."""
    users = dict.fromkeys([getpass.getuser(), "postgres"])
    return [
        f"postgresql+asyncpg://{user}@{DEFAULT_PG_HOST}:{DEFAULT_PG_PORT}/{DEFAULT_PG_DATABASE}"
        for user in users
    ]


def _tcp_open(host: str, port: int, timeout: float = PING_TIMEOUT) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temp dir, started with ``pg_ctl``."""

    url: str
    port: int
    directory: Path
    pg_ctl: list[str]  # the pg_ctl argv prefix, including ``runuser`` when needed
    log: Path = field(repr=False)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def stop(self) -> None:
        try:
            result = subprocess.run(
                [*self.pg_ctl, "-D", str(self.data_dir), "stop", "-m", "immediate",
                 "-w", "-t", str(int(STOP_TIMEOUT))],
                cwd=self.directory, capture_output=True, timeout=STOP_TIMEOUT * 3, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                self._kill_postmaster()
        except subprocess.TimeoutExpired:
            self._kill_postmaster()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _kill_postmaster(self) -> None:
        """Last resort: SIGKILL the postmaster this object started (pid from its pid file),
        after checking that the pid still belongs to a process serving our data dir."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if str(self.data_dir).encode() in cmdline:
                os.kill(pid, signal.SIGKILL)


def _unprivileged_prefix() -> tuple[list[str], int, int]:
    """argv prefix to run PostgreSQL tools as a non-root user, and that user's uid/gid.

    ``initdb`` and ``postgres`` refuse to run as root; as root we use the ``postgres``
    system user through ``runuser`` (or ``su``).
    """
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise ServiceUnavailable(
            "running as root and there is no 'postgres' OS user to run initdb as"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is not None:
        return [runuser, "-u", user.pw_name, "--"], user.pw_uid, user.pw_gid
    su = shutil.which("su")
    if su is None:
        raise ServiceUnavailable("running as root and neither runuser nor su is on PATH")
    # ``su -c CMD -- USER ARGS...`` runs ``sh -c CMD ARGS...``: argv is passed, not re-parsed
    command = [su, "-s", "/bin/sh", "-c", '"$0" "$@"', "--", user.pw_name]
    return command, user.pw_uid, user.pw_gid


def _pg_tool(name: str) -> str | None:
    """``name`` from PATH, else from the newest Debian-style ``/usr/lib/postgresql/N/bin``."""
    found = shutil.which(name)
    if found is not None:
        return found

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in path.parts[-3].split(".") if x.isdigit())

    installed = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=version)
    return str(installed[-1]) if installed else None


def start_throwaway_postgres(database: str = DEFAULT_PG_DATABASE) -> ThrowawayPostgres:
    """``initdb`` a trust-auth cluster in a temp dir, start it on a free loopback port and
    create ``database``. The superuser is ``postgres``."""
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise ServiceUnavailable("initdb/pg_ctl are neither on PATH nor in /usr/lib/postgresql")
    prefix, uid, gid = _unprivileged_prefix()
    directory = Path(tempfile.mkdtemp(prefix="tailguard-pg-"))
    os.chown(directory, uid, gid)
    log = directory / "postgres.log"
    server = ThrowawayPostgres("", 0, directory, [*prefix, pg_ctl], log)
    env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
    for var in ("PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE"):
        env.pop(var, None)

    def run(argv: list[str], what: str) -> None:
        out_path = directory / f"{what}.out"
        with out_path.open("wb") as out:  # a file, not a pipe: the postmaster inherits it
            result = subprocess.run(
                [*prefix, *argv], cwd=directory, env=env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                timeout=COMMAND_TIMEOUT, check=False,
            )  # fmt: skip
        if result.returncode != 0:
            raise ServiceUnavailable(
                f"{what} exited with {result.returncode}: {_tail(out_path)} {_tail(log)}"
            )

    try:
        run(
            [initdb, "-D", str(server.data_dir), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            "initdb",
        )  # fmt: skip
        for _ in range(3):  # a fresh port if the chosen one got taken meanwhile
            port = free_port()
            options = (
                f"-k {directory} -h {LOOPBACK} -p {port} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                run(
                    [pg_ctl, "-D", str(server.data_dir), "-l", str(log), "-o", options,
                     "-w", "-t", str(int(START_TIMEOUT * 2)), "start"],
                    "pg_ctl-start",
                )  # fmt: skip
            except ServiceUnavailable:
                if "already in use" not in _tail(log, 20):
                    raise
                continue
            server.port = port
            break
        else:
            raise ServiceUnavailable(f"postgres could not bind a free port: {_tail(log)}")
        admin = f"postgresql+asyncpg://postgres@{LOOPBACK}:{server.port}/postgres"
        _create_database(admin, database)
        server.url = f"postgresql+asyncpg://postgres@{LOOPBACK}:{server.port}/{database}"
    except BaseException:
        server.stop()
        raise
    return server


def _create_database(admin_url: str, database: str) -> None:
    asyncpg = _asyncpg()
    dsn = _asyncpg_dsn(admin_url)

    async def create() -> None:
        connection = await asyncpg.connect(dsn, timeout=PG_CONNECT_TIMEOUT)
        try:
            await connection.execute(f'CREATE DATABASE "{database}"')
        finally:
            await connection.close()

    _run_async(create, COMMAND_TIMEOUT)


def resolve_database_url(candidates: Sequence[str]) -> tuple[str, ThrowawayPostgres | None]:
    """The first candidate asyncpg can use, else a throwaway server's URL (and the server).

    Raises ``ServiceUnavailable`` naming every attempt when nothing works.
    """
    tried: list[str] = []
    for url in candidates:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or DEFAULT_PG_PORT
        if host and not host.startswith("/") and not _tcp_open(host, port):
            tried.append(f"{url}: nothing listens on {host}:{port}")
            break  # the other candidates differ only in the user name
        problem = postgres_reachable(url)
        if problem is None:
            return url, None
        tried.append(f"{url}: {problem}")
    try:
        server = start_throwaway_postgres()
    except ServiceUnavailable as exc:
        raise ServiceUnavailable(
            f"PostgreSQL unavailable: {'; '.join(tried)} (set ${DATABASE_URL_ENV} to use "
            f"another server), and a throwaway initdb/pg_ctl server could not be started: {exc}"
        ) from exc
    return server.url, server


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a reachable Redis: ``$TAILGUARD_REDIS_URL``, the local default, or a throwaway."""
    candidate = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    url, server = require_service(resolve_redis_url, candidate)
    try:
        yield url
    finally:
        if server is not None:
            server.stop()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A unique ``tgtest:<hex>:`` key prefix; its keys are deleted after the test."""
    with prefixed_keyspace(redis_url) as prefix:
        yield prefix


@asynccontextmanager
async def backend_client(request: pytest.FixtureRequest, kind: str) -> AsyncIterator[Any]:
    """A ``redis.asyncio`` client for ``kind`` ``"redis"`` (the ``redis_url`` server) or
    ``"cluster"`` (the ``redis_cluster`` fixture), closed afterwards: for the fixtures that
    parametrize a contract suite over backends."""
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

    if kind == "redis":
        client: Any = aioredis.Redis.from_url(request.getfixturevalue("redis_url"))
    elif kind == "cluster":
        client = RedisCluster.from_url(request.getfixturevalue("redis_cluster").url)
    else:
        raise ValueError(f"backend_client: unknown kind {kind!r}")
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def redis_client(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A ``redis.asyncio.Redis`` on the ``redis_url`` server, closed after the test."""
    async with backend_client(request, "redis") as client:
        yield client


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """SQLAlchemy async URL of a usable PostgreSQL database (see the module docstring)."""
    configured = os.environ.get(DATABASE_URL_ENV)
    candidates = [configured] if configured else default_database_urls()
    url, server = require_service(resolve_database_url, candidates)
    try:
        yield url
    finally:
        if server is not None:
            server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterInfo]:
    """A fresh 3-master Redis Cluster on loopback, for the whole session (started lazily)."""
    cluster = require_service(start_redis_cluster, context="Redis Cluster unavailable: ")
    try:
        yield cluster.info
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_urls(redis_cluster: RedisClusterInfo) -> list[str]:
    """``redis://127.0.0.1:port`` of each node of the ``redis_cluster`` fixture."""
    return redis_cluster.urls


_REDIS_FIXTURES = frozenset(
    {"redis_url", "redis_prefix", "redis_client", "redis_cluster", "redis_cluster_urls"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that use these services ``redis`` / ``postgres`` for ``-m`` selection."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & _REDIS_FIXTURES:
            item.add_marker(pytest.mark.redis)
        if "database_url" in names:
            item.add_marker(pytest.mark.postgres)
