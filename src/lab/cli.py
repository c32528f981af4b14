"""``tailguard demo`` / ``python -m lab``: the shop under the guide's load, and the ledger.

Steps: seed and start the stack; the guide's realistic scenario; each practice against its
naive twin; a USL fit of a concurrency sweep and a capacity plan from it; the ledger printed,
written to ``OUT/ledger.json`` and ``OUT/report.html``. Every process it started is stopped at
the end, on failure and on Ctrl-C too. Exit 0 when it ran.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


DESCRIPTION = "The shop under the guide's load: what each practice buys, measured."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailguard demo", description=DESCRIPTION)
    return _arguments(parser)


def add_command(commands: Any) -> None:
    """``tailguard demo``: added to the tailguard command through its entry point."""
    parser = commands.add_parser("demo", help=DESCRIPTION, description=DESCRIPTION)
    _arguments(parser)
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_demo(args))
    except KeyboardInterrupt:
        print("demo: interrupted; every process it started is stopped", file=sys.stderr)
        return 130


def _arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="where to write")
    parser.add_argument(
        "--only", default="", help="comma list of practices to run (default: all of them)"
    )
    parser.add_argument(
        "--real",
        action="store_true",
        help="PostgreSQL and Redis (SHOP_DATABASE_URL / SHOP_REDIS_URL, else the local ones)",
    )
    parser.add_argument("--skip-scenario", action="store_true", help="no realistic scenario")
    parser.add_argument("--skip-capacity", action="store_true", help="no sweep, no plan")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    return _run(_parser().parse_args(argv))


def _log(message: str) -> None:
    print(message, flush=True)


async def _demo(args: argparse.Namespace) -> int:
    from lab import experiments, report
    from lab.ledger import Ledger
    from lab.runner import run_experiment
    from lab.stack import Lab

    started = time.monotonic()
    out: Path = args.out
    names = [n.strip() for n in args.only.split(",") if n.strip()] or None
    chosen = experiments.load(names)
    real = None
    if args.real or os.environ.get("SHOP_DATABASE_URL") or os.environ.get("SHOP_REDIS_URL"):
        from lab.real import RealServices, default_urls

        real = RealServices(*default_urls())
    ledger = Ledger(
        settings={
            "out": str(out),
            "database": "sqlite (embedded)" if real is None else "postgresql + redis",
            "practices": [e.practice for e in chosen],
        }
    )
    results: dict[str, Any] = {}
    _log(f"demo: seeding the shop's database and starting the simulators under {out}/ ...")
    async with Lab(out, real=real) as lab:
        if not args.skip_scenario:
            from lab.scenario import realistic

            results["scenario"] = await realistic(lab, log=_log)
        for experiment in chosen:
            _log(f"demo: {experiment.practice}: {experiment.experiment}")
            row = await run_experiment(lab, experiment, log=_log)
            ledger.rows.append(row)
            _log(
                f"demo: {row.practice}: {row.metric} {row.on:g} on, {row.off:g} off "
                f"({row.ratio:g}x): {row.verdict}"
            )
        if not args.skip_capacity:
            from lab.capacity import sweep_and_plan

            results["capacity"] = await sweep_and_plan(lab, out, log=_log)
    ledger.settings["seconds"] = round(time.monotonic() - started, 1)
    ledger.extra.update({k: v for k, v in results.items() if k == "capacity"})
    ledger.write(out / "ledger.json")
    report.print_ledger(ledger)
    html = report.write_html(ledger, results, out / "report.html")
    _log(
        f"demo: the ledger is in {out / 'ledger.json'}, the report in {html} "
        f"({ledger.settings['seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
