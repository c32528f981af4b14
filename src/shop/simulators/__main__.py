"""``python -m shop.simulators payments|recommendations [--port N] [--behaviour SPEC]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .behaviour import Behaviour, parse_behaviour
from .payments import create_payments_app
from .recommendations import create_recommendations_app
from .server import run


def _behaviour(spec: str) -> Behaviour:
    try:
        return parse_behaviour(spec)
    except ValueError as exc:  # argparse shows only the message of this one
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shop.simulators", description=__doc__)
    parser.add_argument("service", choices=["payments", "recommendations"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--behaviour",
        type=_behaviour,
        default="",
        help='e.g. "median=20ms,p99=80ms,fail=0.1,timeout=0.05,slow=1"',
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--decline-rate", type=float, default=0.0, help="payments only, 0..1")
    parser.add_argument("--name", default="recommender", help="recommendations only")
    args = parser.parse_args(argv)
    if args.service == "payments":
        app = create_payments_app(args.behaviour, seed=args.seed, decline_rate=args.decline_rate)
    else:
        app = create_recommendations_app(args.behaviour, seed=args.seed, name=args.name)
    run(app, args.host, args.port)


if __name__ == "__main__":
    main()
