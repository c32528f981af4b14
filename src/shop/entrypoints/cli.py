"""The ``shop`` command: serve, migrate, seed, worker, and the two simulators standalone.

Exit codes: 0 done, 1 failed, 2 a usage or configuration error (one line naming what).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from shop.config import Settings, load_settings
from tailguard.errors import ConfigurationError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shop", description="The guide's reference shop, built on tailguard."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate and seed an empty database, then serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument("--no-prepare", action="store_true", help="skip migrate and seed")

    sub.add_parser("migrate", help="upgrade the database schema to the latest revision")

    reshard = sub.add_parser(
        "reshard", help="move users to --to N of SHOP_DATABASE_URLS while the shop serves"
    )
    reshard.add_argument("--to", type=int, required=True, help="the shard count to move to")
    reshard.add_argument("--batch", type=int, default=500, help="users per copy and check")
    reshard.add_argument(
        "--grace",
        type=float,
        default=5.0,
        help="seconds each map change is given to reach every instance (> SHOP_SHARD_REFRESH "
        "plus the longest request)",
    )

    worker = sub.add_parser("worker", help="apply the order events from the Redis stream")
    worker.add_argument("--name", default=None, help="the consumer's name (default: host-pid)")

    seed = sub.add_parser("seed", help="fill an empty database with deterministic demo data")
    seed.add_argument("--users", type=int, default=1000)
    seed.add_argument("--products", type=int, default=500)
    seed.add_argument("--orders", type=int, default=20_000)
    seed.add_argument("--seed", type=int, default=42, help="the random seed")
    seed.add_argument("--replace", action="store_true", help="delete existing rows first")

    for name in ("payments", "recommendations"):
        sim = sub.add_parser(name, help=f"run the {name} simulator alone")
        sim.add_argument("--host", default="127.0.0.1")
        sim.add_argument("--port", type=int, default=9001 if name == "payments" else 9002)
        sim.add_argument(
            "--behaviour",
            default="median=20ms,p99=80ms",
            help="latency and faults, e.g. 'median=20ms,p99=80ms,fail=0.1,timeout=0.05,slow=1'",
        )
        sim.add_argument("--seed", type=int, default=0)
        if name == "payments":
            sim.add_argument("--decline-rate", type=float, default=0.0)
        else:
            sim.add_argument("--name", default="recommender")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``shop`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "serve":
            return _serve(settings, args)
        if args.command == "migrate":
            print(f"database at revision {asyncio.run(_migrate(settings))}")
            return 0
        if args.command == "seed":
            return asyncio.run(_seed(settings, args))
        if args.command == "reshard":
            return _run(_reshard(settings, args))
        if args.command == "worker":
            from shop.entrypoints.worker import run_worker

            return _run(run_worker(settings, consumer=args.name))
        return _simulator(args)
    except ConfigurationError as exc:
        print(f"shop: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    if args.workers < 1:
        raise ConfigurationError("--workers", args.workers, "an integer >= 1")
    if args.workers > 1 and not settings.redis_url:
        raise ConfigurationError(
            "--workers",
            args.workers,
            "1 with the in-process session store (carts could not be shared between workers; "
            "set SHOP_REDIS_URL)",
        )
    if args.workers > 1 and not (settings.payments_urls and settings.recommendations_urls):
        raise ConfigurationError(
            "--workers",
            args.workers,
            "1 with embedded simulators (each worker would start its own; set "
            "SHOP_PAYMENTS_URLS and SHOP_RECOMMENDATIONS_URLS)",
        )
    if args.workers > 1:
        # Prepared once here, so the workers (which read the settings again from the
        # environment) never race to migrate or seed.
        if not args.no_prepare:
            asyncio.run(_prepare(settings))
        uvicorn.run(
            "shop.entrypoints.asgi:app", host=args.host, port=args.port, workers=args.workers
        )
        return 0
    from shop.entrypoints.app import create_app

    print(f"shop: serving on http://{args.host}:{args.port} (data in {settings.data_dir}/; "
          f"database {_redact(settings.resolved_database_url)})", flush=True)  # fmt: skip
    app = create_app(settings, prepare=not args.no_prepare)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def _run(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with the shop extra
        return asyncio.run(main)
    return uvloop.run(main)


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


async def _prepare(settings: Settings) -> None:
    from shop.adapters.db import Databases
    from shop.bootstrap import prepare_database

    databases = Databases.from_settings(settings)
    try:
        await prepare_database(databases)
    finally:
        await databases.dispose()


async def _migrate(settings: Settings) -> str:
    from shop.adapters.db import Databases
    from shop.adapters.schema import migrate, stride_sequences

    databases = Databases.from_settings(settings)
    try:
        revisions = {await migrate(engine) for engine in databases.distinct()}
        await stride_sequences(databases)
        return ", ".join(sorted(revisions))
    finally:
        await databases.dispose()


async def _seed(settings: Settings, args: argparse.Namespace) -> int:
    from shop.adapters.db import Databases
    from shop.adapters.schema import migrate, stride_sequences
    from shop.adapters.seed import SeedError, seed

    databases = Databases.from_settings(settings)
    try:
        for engine in databases.distinct():
            await migrate(engine)
        report = await seed(
            databases,
            users=args.users,
            products=args.products,
            orders=args.orders,
            seed=args.seed,
            replace=args.replace,
        )
        await stride_sequences(databases)
    except (SeedError, ValueError) as exc:
        print(f"shop seed: {exc}", file=sys.stderr)
        return 1
    finally:
        await databases.dispose()
    print(report)
    print(f"sign in as user1@shop.test .. user{args.users}@shop.test with the password 'demo'")
    return 0


async def _reshard(settings: Settings, args: argparse.Namespace) -> int:
    from shop.adapters.db import Databases
    from shop.service_layer.resharding import ReshardError, reshard

    databases = Databases.from_settings(settings)
    try:
        await reshard(
            databases,
            args.to,
            batch=args.batch,
            grace=args.grace,
            say=lambda line: print(f"shop reshard: {line}", flush=True),
        )
    except ReshardError as exc:
        print(f"shop reshard: {exc}", file=sys.stderr)
        return 1
    finally:
        await databases.dispose()
    return 0


def _simulator(args: argparse.Namespace) -> int:
    from shop.simulators import create_payments_app, create_recommendations_app, parse_behaviour
    from shop.simulators.server import run

    try:
        behaviour = parse_behaviour(args.behaviour)
    except ValueError as exc:
        raise ConfigurationError("--behaviour", args.behaviour, str(exc)) from None
    if args.command == "payments":
        app = create_payments_app(behaviour, seed=args.seed, decline_rate=args.decline_rate)
    else:
        app = create_recommendations_app(behaviour, seed=args.seed, name=args.name)
    print(f"shop {args.command}: serving on http://{args.host}:{args.port}", flush=True)
    run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
