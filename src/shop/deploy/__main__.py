"""``python -m shop.deploy up | down | status | kill I | restart I``: the shop stack on loopback.

Exit codes: 0 done, 1 failed (the message says what), 2 a bad option.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shop.deploy.config import BALANCES, StackConfig, StackError
from shop.deploy.launcher import Stack
from tailguard.errors import ConfigurationError

__all__ = ["main"]

DEFAULTS = StackConfig()


def _weights(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a comma list of integers") from None


def _env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m shop.deploy",
        description="HAProxy in front of N shop instances, the worker and the simulators, "
        "run by supervisord on loopback.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULTS.state_dir,
        help="configs, secrets, pids, logs and stack.json (default: %(default)s)",
    )

    up = sub.add_parser("up", parents=[state], help="start the stack, print its URLs")
    up.add_argument("--instances", type=int, default=DEFAULTS.instances)
    up.add_argument(
        "--balance",
        choices=BALANCES,
        default=DEFAULTS.balance,
        help="roundrobin (by weight), leastconn, or source (client IP hash)",
    )
    up.add_argument("--weights", type=_weights, default=(), help="e.g. 3,1 (one per instance)")
    up.add_argument(
        "--no-worker",
        dest="worker",
        action="store_false",
        help="do not run the event worker (shop worker)",
    )
    up.add_argument("--recommenders", type=int, default=DEFAULTS.recommenders)
    up.add_argument("--database-url", default=DEFAULTS.database_url)
    up.add_argument(
        "--shards", type=int, default=DEFAULTS.shards, help="databases users are sharded over"
    )
    up.add_argument("--redis-url", default=DEFAULTS.redis_url)
    up.add_argument("--namespace", default=DEFAULTS.namespace, help="SHOP_NAMESPACE")
    up.add_argument("--host", default=DEFAULTS.host)
    up.add_argument("--port", type=int, default=DEFAULTS.port, help="the frontend (0: free)")
    up.add_argument("--stats-port", type=int, default=DEFAULTS.stats_port)
    up.add_argument(
        "--base-port",
        type=int,
        default=DEFAULTS.base_port,
        help="instance i on base-port + i (0: free ports)",
    )
    up.add_argument(
        "--simulator-port",
        type=int,
        default=DEFAULTS.simulator_port,
        help="payments on it, recommender j on it + 1 + j (0: free ports)",
    )
    up.add_argument(
        "--check-interval",
        type=float,
        default=DEFAULTS.check_interval,
        help="seconds between health checks (default: %(default)s)",
    )
    up.add_argument("--fall", type=int, default=DEFAULTS.fall)
    up.add_argument("--rise", type=int, default=DEFAULTS.rise)
    up.add_argument("--seed-users", type=int, default=DEFAULTS.seed_users)
    up.add_argument("--seed-products", type=int, default=DEFAULTS.seed_products)
    up.add_argument("--seed-orders", type=int, default=DEFAULTS.seed_orders)
    up.add_argument("--no-autorestart", dest="autorestart", action="store_false")
    up.add_argument(
        "--env",
        type=_env,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the shop programs (repeatable)",
    )
    up.add_argument("--json", action="store_true", help="print the URLs as JSON")

    sub.add_parser("down", parents=[state], help="stop everything the stack started")
    status = sub.add_parser("status", parents=[state], help="programs, pids, HAProxy's view")
    status.add_argument("--json", action="store_true")
    for name, text in (("kill", "SIGKILL instance I"), ("restart", "restart instance I")):
        one = sub.add_parser(name, parents=[state], help=text)
        one.add_argument("instance", type=int)
    return parser


def _print_urls(urls: dict[str, Any]) -> None:
    print(f"frontend      {urls['frontend']}")
    print(
        f"stats         {urls['stats']}   (CSV: {urls['stats']};csv, "
        f"Prometheus: {urls['haproxy_metrics']})"
    )
    for i, (url, metrics) in enumerate(zip(urls["instances"], urls["metrics"], strict=True)):
        print(f"shop-{i:<8} {url}   metrics {metrics}")
    print(f"payments      {urls['payments']}")
    for j, url in enumerate(urls["recommenders"]):
        print(f"recommender-{j} {url}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "up":
            config = StackConfig(
                instances=args.instances,
                balance=args.balance,
                weights=args.weights,
                worker=args.worker,
                recommenders=args.recommenders,
                database_url=args.database_url,
                shards=args.shards,
                redis_url=args.redis_url,
                namespace=args.namespace,
                state_dir=args.state_dir,
                host=args.host,
                port=args.port,
                stats_port=args.stats_port,
                base_port=args.base_port,
                simulator_port=args.simulator_port,
                check_interval=args.check_interval,
                fall=args.fall,
                rise=args.rise,
                seed_users=args.seed_users,
                seed_products=args.seed_products,
                seed_orders=args.seed_orders,
                autorestart=args.autorestart,
                env=dict(args.env),
            )
            stack = Stack(config, detach=True)
            print(f"starting the stack in {config.state_dir}/ ...", file=sys.stderr, flush=True)
            stack.start()
            if args.json:
                print(json.dumps(stack.urls(), indent=2))
            else:
                _print_urls(stack.urls())
                print(f"stop it with: python -m shop.deploy down --state-dir {config.state_dir}")
            return 0
        if args.command == "down" and not (args.state_dir / "stack.json").exists():
            print(f"no stack in {args.state_dir}/: nothing to stop")
            return 0
        stack = Stack.attach(args.state_dir)
        if args.command == "down":
            killed = stack.stop()
            extra = f" (killed leftover pids {killed})" if killed else ""
            print(f"stopped the stack in {args.state_dir}/{extra}")
            return 0
        if args.command == "status":
            report = stack.status()
            if args.json:
                print(json.dumps(report, indent=2))
                return 0
            print(f"state dir     {report['state_dir']}")
            print(f"running       {report['running']}")
            for name, program in report.get("programs", {}).items():
                print(f"  {name:<14} {program['state']:<9} pid {program['pid']}")
            if isinstance(report.get("haproxy"), dict):
                for name, server in report["haproxy"].items():
                    print(
                        f"  haproxy {name:<7} {server['status']:<6} weight {server['weight']} "
                        f"check {server['check_status']} requests {server['sessions']}"
                    )
            _print_urls(report["urls"])
            return 0 if report["running"] else 1
        if args.command == "kill":
            pid = stack.kill_instance(args.instance)
            print(f"killed {stack.instance_names[args.instance]} (pid {pid})")
            return 0
        stack.restart_instance(args.instance)
        print(f"restarted {stack.instance_names[args.instance]}")
        return 0
    except ConfigurationError as exc:
        option = exc.setting if "[" in exc.setting else exc.setting.replace("_", "-")
        print(f"shop.deploy: --{option}={exc.value!r}: expected {exc.expected}", file=sys.stderr)
        return 2
    except StackError as exc:
        print(f"shop.deploy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
