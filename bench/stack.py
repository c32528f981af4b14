"""The shop stack through HAProxy: requests/s and p99 with 1, 2 and 4 instances, and HAProxy's
leastconn against roundrobin with one instance CPU-throttled (issue #14).

One stack (``shop.deploy.Stack``): HAProxy in front of four ``shop serve`` instances, three
recommender replicas and the payment simulator, run by supervisord, on a throwaway PostgreSQL
database (``shop_stackbench_<hex>``, dropped at the end) and a ``redis-server`` of its own on
a free loopback port (stopped at the end). No event worker: the load only reads.

The load is ``tailguard.loadtest`` in this process (uvloop): a scenario of users with no think
time, 90 % ``GET /products/{id}`` (ids uniform over the 500 seeded products: served from each
instance's L1, L2 in Redis, or PostgreSQL) and 10 % ``GET /users/{id}/dashboard`` (profile,
recent orders and recommendations at once; the recommenders answer in 30 ms median), each user
signed in as its own seeded user with a token made from the stack's secret.

1. **Scaling.** The instances taking traffic are chosen with HAProxy weights (1, 2 or all 4
   at weight 1, the others at 0: they run, idle), roundrobin. For each count, a warm-up, then a
   closed loop of ``--users`` users for ``--seconds``; rounds interleaved (1, 2, 4, then 4, 2,
   1). We report the median requests/s over the rounds, p50 and p99 over the pooled latencies
   of the rounds, and the CPU time each process used during the timed runs (``/proc``: the load
   generator, HAProxy, each instance, PostgreSQL's backends of this database, Redis, the
   simulators, and the whole machine's busy time, which includes other users of the machine).
   Scaling efficiency: throughput(N) / (N x throughput(1)).
2. **One slow instance.** Two instances at weight 1; instance 1 is put into a cgroup (v1 ``cpu``
   controller) whose CFS quota gives it ``--throttle`` of one CPU (20 %, in 2 ms per 10 ms
   period): a neighbour on a busy host, or a smaller machine. The open model (latencies from
   the intended start) at ``--open-share`` (50 %) of the one-instance throughput measured in
   section 1, for each of ``roundrobin`` and ``leastconn`` (``Stack.reconfigure``: HAProxy
   alone restarts), interleaved. Skipped, with the reason, when the cgroup cannot be made (not
   root, no cgroup v1 cpu controller).

The machine has 2 CPUs, shared by the load generator, HAProxy, the instances, PostgreSQL and
Redis: past one instance, the CPU is the ceiling, and the CPU table says where it goes.

    .venv/bin/python -m bench stack               # ~2.5 min
    .venv/bin/python -m bench stack --quick       # a smoke test, ~40 s
    .venv/bin/python -m bench stack --markdown    # the tables for docs/BENCHMARKS.md

The targets are goals, not assertions: the script exits 0 whatever they say, and ``main()``
returns the results as a dict.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from bench._harness import Settings, Target, eprint, header, ratio, render_table

__all__ = ["main"]

INSTANCES = 4
COUNTS = (1, 2, 4)  # instances taking traffic in section 1
USERS = 200  # seeded users; each load user signs in as one of them
PRODUCTS = 500
SEED_ORDERS = 5_000
DASHBOARD_SHARE = 0.1
CONCURRENCY = 32
SECONDS, WARMUP, ROUNDS = 8.0, 2.0, 2
QUICK_SECONDS, QUICK_WARMUP, QUICK_ROUNDS = 3.0, 1.0, 1
THROTTLE = 0.2  # the slow instance's share of one CPU
OPEN_SHARE = 0.5  # section 2's arrival rate, as a share of throughput(1)
CFS_PERIOD_US = 10_000
CGROUP_ROOT = Path("/sys/fs/cgroup/cpu")
START_WITHIN = 180.0  # seconds the stack may take to create, migrate, seed and start
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# Targets (issue #14)
LEASTCONN_P99 = 1.0  # leastconn's p99 <= roundrobin's with one slow instance


# -- processes and their CPU ----------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` (0 when it is gone)."""
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += parents.get(current, [])
    return found


def postgres_backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to ``database`` (``postgres: user db host ...``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            words = (entry / "cmdline").read_bytes().replace(b"\0", b" ").split()
            if words[:1] == [b"postgres:"] and database.encode() in words:
                pids.append(int(entry.name))
    return pids


def machine_cpu() -> dict[str, float]:
    """CPU seconds of the whole machine since boot, all CPUs (``/proc/stat``): ``machine``
    busy (user, nice, system, irq, softirq), ``softirq`` + ``irq`` alone (the kernel's packet
    work, charged to no process), ``steal`` (the hypervisor ran someone else)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return {
        "machine": (user + nice + system + irq + softirq) / TICK,
        "irq": (irq + softirq) / TICK,
        "steal": steal / TICK,
    }


class CpuMeter:
    """CPU seconds each group of processes used between :meth:`start` and :meth:`stop`."""

    def __init__(self, groups: dict[str, list[int]], database: str) -> None:
        self.groups = groups
        self.database = database

    def _read(self) -> dict[str, float]:
        groups = {**self.groups, "PostgreSQL": postgres_backends(self.database)}
        values = {name: sum(cpu_seconds(p) for p in pids) for name, pids in groups.items()}
        return {**values, **machine_cpu()}

    def start(self) -> None:
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        # A backend that appeared during the run started from 0: its whole time is the run's.
        return {k: max(0.0, v - self._before.get(k, 0.0)) for k, v in after.items()}


# -- the services ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def own_redis() -> Iterator[tuple[str, int]]:
    """A ``redis-server`` on a free loopback port, no persistence; (URL, pid)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not on PATH")
    directory = tempfile.mkdtemp(prefix="bench-stack-redis-")
    port = free_port()
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
            "no", "--dir", directory]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def _admin_url(explicit: str | None) -> str:
    url = (
        explicit
        or os.environ.get("TAILGUARD_DATABASE_URL")
        or ("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    )
    if url.startswith(("postgres://", "postgresql://")):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def _postgres(url: str, statement: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await connection.exec_driver_sql(statement)
        finally:
            await engine.dispose()

    asyncio.run(run())


class Throttle:
    """A cgroup (v1 ``cpu``) that gives its processes ``share`` of one CPU; removed on exit."""

    def __init__(self, share: float) -> None:
        self.path = CGROUP_ROOT / f"tailguard-bench-{uuid.uuid4().hex[:8]}"
        self.share = share
        self.pids: list[int] = []

    def __enter__(self) -> Throttle:
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
        (self.path / "cpu.cfs_quota_us").write_text(str(round(CFS_PERIOD_US * self.share)))
        return self

    def add(self, pids: Sequence[int]) -> None:
        for pid in pids:
            (self.path / "cgroup.procs").write_text(str(pid))
            self.pids.append(pid)

    def __exit__(self, *exc: object) -> None:
        for pid in self.pids:
            with contextlib.suppress(OSError):
                (CGROUP_ROOT / "cgroup.procs").write_text(str(pid))
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def throttle_problem() -> str:
    """Why a CPU cgroup cannot be made here ('' when it can)."""
    if not (CGROUP_ROOT / "cpu.cfs_quota_us").exists():
        return f"no cgroup v1 cpu controller at {CGROUP_ROOT}"
    probe = CGROUP_ROOT / f"tailguard-bench-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        return f"cannot make a cgroup in {CGROUP_ROOT}: {exc.strerror}"
    return ""


# -- the load -------------------------------------------------------------------------------------


def scenario(secret: str, host: str) -> type[Any]:
    """The read-heavy mix as a ``tailguard.loadtest`` User class."""
    from shop.adapters.sessions import new_session_id
    from shop.entrypoints.auth import issue_token
    from tailguard.loadtest import User, task

    numbers = itertools.count()
    product_weight = round((1 - DASHBOARD_SHARE) * 100)
    dashboard_weight = round(DASHBOARD_SHARE * 100)

    class Reader(User):
        wait_time = 0.0
        headers: ClassVar[dict[str, str]] = {}

        async def on_start(self) -> None:
            self.user_id = 1 + next(numbers) % USERS
            token = issue_token(secret, self.user_id, new_session_id(), 3600.0)
            self.auth = {"Authorization": f"Bearer {token}"}

        @task(product_weight)
        async def product(self) -> None:
            product = self.random.randint(1, PRODUCTS)
            await self.client.get(f"/products/{product}", name="GET /products/{id}")

        @task(dashboard_weight)
        async def dashboard(self) -> None:
            await self.client.get(
                f"/users/{self.user_id}/dashboard",
                headers=self.auth,
                name="GET /users/{id}/dashboard",
            )

    Reader.host = host
    return Reader


@dataclasses.dataclass(slots=True)
class Run:
    """One timed run: its result, the CPU each process used, HAProxy's requests per server."""

    result: Any
    cpu: dict[str, float]
    served: dict[str, int]

    @property
    def per_second(self) -> float:
        return float(self.result.totals.requests) / float(self.result.duration_s)

    @property
    def errors(self) -> int:
        return int(self.result.totals.errors)


async def timed(
    stack: Any, reader: type[Any], meter: CpuMeter, *, seconds: float, **load: Any
) -> Run:
    from tailguard.loadtest import run

    before = {n: s.sessions for n, s in stack.servers().items()}
    meter.start()
    result = await run(reader, duration=seconds, max_requests=5_000_000, seed=14, **load)
    cpu = meter.stop()
    after = {n: s.sessions for n, s in stack.servers().items()}
    return Run(result, cpu, {n: after[n] - before.get(n, 0) for n in after})


def pooled(runs: Sequence[Run]) -> Any:
    from tailguard.loadtest import merge

    return merge([r.result for r in runs]).totals.histogram


# -- the sections ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    seconds: float
    warmup: float
    rounds: int
    users: int
    throttle: float
    open_share: float


def use_instances(stack: Any, count: int) -> None:
    for i in range(INSTANCES):
        stack.set_weight(i, 1 if i < count else 0)


async def scaling(
    stack: Any, reader: type[Any], meter: CpuMeter, plan: Plan
) -> dict[int, list[Run]]:
    runs: dict[int, list[Run]] = {n: [] for n in COUNTS}
    for r in range(plan.rounds):
        for count in COUNTS if r % 2 == 0 else tuple(reversed(COUNTS)):
            use_instances(stack, count)
            eprint(f"stack: {count} instance(s), round {r + 1}/{plan.rounds}")
            from tailguard.loadtest import run

            await run(reader, users=plan.users, duration=plan.warmup, seed=r)
            runs[count].append(
                await timed(stack, reader, meter, seconds=plan.seconds, users=plan.users)
            )
    return runs


async def slow_instance(
    stack: Any, reader: type[Any], meter: CpuMeter, plan: Plan, rate: float, slow_pids: list[int]
) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {"roundrobin": [], "leastconn": []}
    weights = (1, 1) + (0,) * (INSTANCES - 2)
    with Throttle(plan.throttle) as throttle:
        throttle.add(slow_pids)
        for r in range(plan.rounds):
            order = ("roundrobin", "leastconn") if r % 2 == 0 else ("leastconn", "roundrobin")
            for balance in order:
                eprint(f"stack: shop-1 throttled, {balance}, round {r + 1}/{plan.rounds}")
                await asyncio.to_thread(stack.reconfigure, balance=balance, weights=weights)
                from tailguard.loadtest import run

                await run(reader, rate=rate, duration=plan.warmup, connections=512, seed=r)
                runs[balance].append(
                    await timed(
                        stack, reader, meter, seconds=plan.seconds, rate=rate, connections=512
                    )
                )
    return runs


# -- the report -----------------------------------------------------------------------------------


def _ms(histogram: Any, q: float) -> str:
    return f"{histogram.percentile_ms(q):,.1f}"


def _pct(seconds: float, wall: float) -> str:
    return f"{100 * seconds / wall:.0f}" if wall > 0 else "-"


def scaling_tables(runs: dict[int, list[Run]], *, markdown: bool) -> tuple[str, str, float, float]:
    base = statistics.median(r.per_second for r in runs[1])
    rows, cpu_rows = [], []
    efficiency = {}
    for count in COUNTS:
        rate = statistics.median(r.per_second for r in runs[count])
        efficiency[count] = ratio(rate, count * base)
        hist = pooled(runs[count])
        rows.append(
            [
                str(count),
                f"{sum(r.result.totals.requests for r in runs[count]):,}",
                f"{rate:,.0f}",
                f"{ratio(rate, base):.2f}x",
                f"{efficiency[count]:.2f}",
                _ms(hist, 50),
                _ms(hist, 99),
                str(sum(r.errors for r in runs[count])),
            ]
        )
        wall = sum(r.result.duration_s for r in runs[count])
        cpu = {k: sum(r.cpu.get(k, 0.0) for r in runs[count]) for k in runs[count][0].cpu}
        shops = [cpu.get(f"shop-{i}", 0.0) for i in range(count)]
        known = sum(v for k, v in cpu.items() if k not in ("machine", "steal"))
        cpu_rows.append(
            [
                str(count),
                _pct(cpu["load generator"], wall),
                _pct(cpu["haproxy"], wall),
                " + ".join(_pct(s, wall) for s in shops),
                _pct(cpu["PostgreSQL"], wall),
                _pct(cpu["redis"], wall),
                _pct(cpu["simulators"], wall),
                _pct(cpu["irq"], wall),
                _pct(cpu["machine"] - known, wall),
                f"{_pct(cpu['machine'], wall)} of {100 * (os.cpu_count() or 1)}",
                _pct(cpu["steal"], wall),
                f"{1000 * sum(shops) / sum(r.result.totals.requests for r in runs[count]):.3f}",
            ]
        )
    throughput = render_table(
        ["instances", "requests", "req/s", "x 1 instance", "efficiency", "p50 ms", "p99 ms",
         "errors"],
        rows,
        markdown=markdown,
        align=["<", ">", ">", ">", ">", ">", ">", ">"],
    )  # fmt: skip
    cpu_table = render_table(
        ["instances", "load gen %", "HAProxy %", "shop instances %", "PostgreSQL %", "Redis %",
         "simulators %", "kernel irq %", "other %", "machine busy %", "steal %",
         "shop CPU ms/req"],
        cpu_rows,
        markdown=markdown,
        align=["<", ">", ">", ">", ">", ">", ">", ">", ">", ">", ">", ">"],
    )  # fmt: skip
    return throughput, cpu_table, efficiency[2], efficiency[COUNTS[-1]]


def slow_table(runs: dict[str, list[Run]], rate: float, *, markdown: bool) -> tuple[str, float]:
    rows = []
    p99 = {}
    for balance, done in runs.items():
        hist = pooled(done)
        p99[balance] = hist.percentile_ms(99)
        served = {n: sum(r.served.get(n, 0) for r in done) for n in ("shop-0", "shop-1")}
        total = sum(served.values())
        rows.append(
            [
                balance,
                f"{sum(r.result.totals.requests for r in done):,}",
                f"{statistics.median(r.per_second for r in done):,.0f}",
                _ms(hist, 50),
                _ms(hist, 99),
                " / ".join(_ms(r.result.totals.histogram, 99) for r in done),
                _ms(hist, 99.9),
                f"{hist.figures(['max'])['max']:,.0f}",
                f"{100 * served['shop-1'] / total:.0f}%" if total else "-",
                str(sum(r.errors for r in done)),
            ]
        )
    table = render_table(
        ["balance", "requests", "answers/s", "p50 ms", "p99 ms", "p99 by round", "p99.9 ms",
         "max ms", "to slow shop-1", "errors"],
        rows,
        markdown=markdown,
        align=["<", ">", ">", ">", ">", ">", ">", ">", ">", ">"],
    )  # fmt: skip
    return table, ratio(p99["leastconn"], p99["roundrobin"])


# -- main -----------------------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench stack",
        description="The shop stack through HAProxy: 1, 2 and 4 instances; leastconn against "
        "roundrobin with one instance CPU-throttled.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke test: one short round")
    parser.add_argument("--markdown", action="store_true", help="print GitHub markdown tables")
    parser.add_argument("--seconds", type=float, default=None, help="seconds per timed run")
    parser.add_argument("--rounds", type=int, default=None, help=f"rounds (default {ROUNDS})")
    parser.add_argument("--users", type=int, default=CONCURRENCY, help="closed-loop users")
    parser.add_argument("--throttle", type=float, default=THROTTLE, help="slow share of a CPU")
    parser.add_argument("--open-share", type=float, default=OPEN_SHARE, help="see the docstring")
    parser.add_argument("--postgres-url", default=None, help="a server to make the database on")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its tables and targets; return the results."""
    args = parse(argv)
    quick: bool = args.quick
    plan = Plan(
        seconds=args.seconds or (QUICK_SECONDS if quick else SECONDS),
        warmup=QUICK_WARMUP if quick else WARMUP,
        rounds=max(1, args.rounds or (QUICK_ROUNDS if quick else ROUNDS)),
        users=max(1, args.users),
        throttle=min(1.0, max(0.01, args.throttle)),
        open_share=max(0.01, args.open_share),
    )
    settings = Settings(plan.rounds, plan.seconds, args.markdown, quick)
    started_at = time.perf_counter()
    from shop.deploy import Stack, StackConfig, StackError
    from shop.deploy.plan import find_haproxy

    try:
        find_haproxy()
    except FileNotFoundError as exc:
        print(f"stack: skipped ({exc})")
        return {"skipped": str(exc)}
    from sqlalchemy.engine import make_url

    admin = _admin_url(args.postgres_url)
    database = f"shop_stackbench_{uuid.uuid4().hex[:12]}"
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    results: dict[str, Any] = {"plan": dataclasses.asdict(plan)}
    with own_redis() as (redis_url, redis_pid), tempfile.TemporaryDirectory() as state:
        config = StackConfig(
            instances=INSTANCES,
            weights=(1,) + (0,) * (INSTANCES - 1),
            worker=False,
            recommenders=3,
            database_url=make_url(admin).set(database=database).render_as_string(False),
            redis_url=redis_url,
            namespace="bench",
            state_dir=Path(state),
            port=0,
            stats_port=0,
            base_port=0,
            simulator_port=0,
            seed_users=USERS,
            seed_products=PRODUCTS,
            seed_orders=SEED_ORDERS,
        )
        stack = Stack(config)
        try:
            eprint("stack: starting (create, migrate, seed, start)")
            try:
                stack.start(timeout=START_WITHIN)
            except StackError as exc:
                print(f"stack: skipped (the stack did not start: {exc})")
                return {"skipped": str(exc)}
            pids = stack.pids()
            groups = {
                "load generator": [os.getpid()],
                "haproxy": [pids["haproxy"]],
                **{f"shop-{i}": children(pids[f"shop-{i}"]) for i in range(INSTANCES)},
                "simulators": [p for n, p in pids.items() if n.startswith(("payments", "recom"))],
                "redis": [redis_pid],
            }
            meter = CpuMeter(groups, database)
            secret = (Path(state) / "secret_key").read_text().strip()
            reader = scenario(secret, stack.url)
            with asyncio.Runner(loop_factory=factory) as runner:
                scaled = runner.run(scaling(stack, reader, meter, plan))
                base = statistics.median(r.per_second for r in scaled[1])
                rate = round(plan.open_share * base)
                problem = throttle_problem()
                slow: dict[str, list[Run]] | None = None
                if not problem:
                    slow = runner.run(
                        slow_instance(stack, reader, meter, plan, rate, groups["shop-1"])
                    )
        finally:
            stack.stop()
            with contextlib.suppress(Exception):
                _postgres(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    md = settings.markdown
    lines = [
        *header("shop stack through HAProxy: 1, 2, 4 instances; one slow instance", settings)[:2],
        f"HAProxy {haproxy_version()}; {INSTANCES} `shop serve` instances (one uvicorn worker "
        f"each), 3 recommender replicas (30 ms median), PostgreSQL (this machine's server, a "
        f"fresh database: {USERS} users, {PRODUCTS} products, {SEED_ORDERS:,} orders), its "
        "own redis-server; no event worker",
        f"load: tailguard.loadtest in the bench process (uvloop), {100 - DASHBOARD_SHARE * 100:.0f}"
        f"% GET /products/{{id}} (uniform over {PRODUCTS}), {DASHBOARD_SHARE * 100:.0f}% GET "
        f"/users/{{id}}/dashboard, no think time; {plan.rounds} round(s) of {plan.seconds:g} s "
        f"per case after a {plan.warmup:g} s warm-up, interleaved",
    ]
    if md:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
    else:
        print("\n".join([*lines, ""]))
    throughput, cpu_table, eff2, eff4 = scaling_tables(scaled, markdown=md)
    title = (
        f"1. Scaling: closed loop of {plan.users} users, roundrobin over the instances at "
        "weight 1 (the others at weight 0, idle)"
    )
    print(f"#### {title}\n" if md else f"{title}\n")
    print(throughput + "\n")
    print(
        "req/s: median over the rounds; p50, p99: over the rounds' latencies pooled; "
        "efficiency: req/s(N) / (N x req/s(1)).\n"
    )
    print(cpu_table + "\n")
    print(
        "CPU use during the timed runs, in % of one CPU (100 = a whole core): user + system "
        "time from /proc/PID/stat (each instance with its children; PostgreSQL: the backends "
        "connected to this database), over the runs' wall time; kernel irq: irq + softirq time "
        "(/proc/stat: loopback packets, charged to no process); other: the machine's busy time "
        "minus all that (supervisord, PostgreSQL's own processes, the idle instances' health "
        "checks, anything else running on the machine); steal: time the hypervisor gave "
        "someone else; shop CPU ms/req: the instances' CPU per answer.\n"
    )
    # The scaling efficiency is reported, not judged: on 2 CPUs shared by the load generator,
    # HAProxy, the instances and PostgreSQL the issue expects the CPU ceiling, and the figure
    # says where it is rather than whether a target was met.
    print(
        f"Scaling efficiency with 2 instances: {eff2:.2f}; with {COUNTS[-1]}: {eff4:.2f} "
        "(informational: the CPU ceiling of this host, not a target).\n"
    )
    goals: list[Target] = []
    results["scaling"] = {
        str(n): {
            "requests_per_second": [r.per_second for r in done],
            "p50_ms": pooled(done).percentile_ms(50),
            "p99_ms": pooled(done).percentile_ms(99),
            "errors": sum(r.errors for r in done),
            "cpu_seconds": [r.cpu for r in done],
        }
        for n, done in scaled.items()
    }
    results["efficiency"] = {"2": eff2, str(COUNTS[-1]): eff4}
    title = (
        f"2. One slow instance: shop-1 throttled to {plan.throttle:.0%} of a CPU (cgroup CFS "
        f"quota); open model at {rate:,} req/s ({plan.open_share:.0%} of the one-instance "
        "req/s), 2 instances at weight 1"
    )
    print(f"#### {title}\n" if md else f"{title}\n")
    if slow is None:
        print(f"skipped ({problem})\n")
        results["slow"] = {"skipped": problem}
    else:
        table, p99_ratio = slow_table(slow, rate, markdown=md)
        print(table + "\n")
        print(
            "Latencies from each request's intended start (open model, at most 512 requests in "
            "flight: a queue at the slow instance shows); answers/s: requests over the run's time "
            "to its last answer (median over the rounds; below the offered rate when a queue had "
            "to drain after the arrivals stopped); to slow shop-1: HAProxy's count of the requests it sent there.\n"
        )
        goals.append(
            Target(
                "one slow instance: p99 leastconn / p99 roundrobin",
                p99_ratio,
                "<=",
                LEASTCONN_P99,
            )
        )
        results["slow"] = {
            balance: {
                "requests_per_second": [r.per_second for r in done],
                "p99_ms": pooled(done).percentile_ms(99),
                "served": [r.served for r in done],
                "errors": sum(r.errors for r in done),
            }
            for balance, done in slow.items()
        }
    if not md:
        print("Targets:")
    bullet = "- " if md else "  "
    print("\n".join(f"{bullet}{t.line()}" for t in goals))
    results["targets"] = [t.as_dict() for t in goals]
    eprint(f"stack: done in {time.perf_counter() - started_at:.0f} s")
    return results


def haproxy_version() -> str:
    from shop.deploy.plan import find_haproxy

    with contextlib.suppress(OSError, subprocess.SubprocessError, FileNotFoundError):
        out = subprocess.run(
            [find_haproxy(), "-v"], capture_output=True, text=True, timeout=10
        ).stdout
        return out.split()[2] if out.startswith("HAProxy") else out.split("\n", 1)[0]
    return "?"


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        main()
