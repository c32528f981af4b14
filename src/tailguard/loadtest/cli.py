"""``tailguard loadtest``: run a load from the command line; ``tailguard loadtest merge``.

::

    tailguard loadtest http://127.0.0.1:8000/ --rate 200 --duration 10s      # open model
    tailguard loadtest http://127.0.0.1:8000/ --users 50                     # closed, no think
    tailguard loadtest scenario.py --users 50 --duration 60s --slo "p99<250ms"
    tailguard loadtest scenario.py --rate 100 --segment 2/4 --json part2.json
    tailguard loadtest merge part1.json part2.json part3.json part4.json --html report.html

``add_commands(commands)`` adds the command to ``tailguard``'s sub-parsers. As everywhere in
``tailguard``: bad input exits 2 with one line naming the option; a failed SLO exits 1, as does
an unreadable or unwritable file; a run whose SLOs pass (or has none) exits 0. The load's
modules are imported when the command runs, so ``tailguard --help`` stays fast.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TypeVar

__all__ = ["add_commands", "parse_duration"]

Parser = TypeVar("Parser", bound=argparse.ArgumentParser)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``10s``, ``500ms``, ``2m``, ``1h`` or ``10`` (seconds); more than 0."""
    match = _DURATION.match(text)
    seconds = float(match[1]) * _UNITS[match[2] or "s"] if match else 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a duration such as 10s, 500ms or 2m: {text!r}")
    return seconds


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1: {text!r}")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected requests per second > 0: {text!r}")
    return value


def _stages(text: str) -> list[tuple[float, float]]:
    stages = []
    for part in text.split(","):
        duration, sep, rate = part.partition(":")
        if not sep:
            raise argparse.ArgumentTypeError(
                f"expected DURATION:RATE,..., e.g. 30s:100,1m:100,30s:0: {text!r}"
            )
        stages.append((parse_duration(duration), _rate(rate) if rate.strip() != "0" else 0.0))
    return stages


def _concurrencies(text: str) -> list[int]:
    return [_positive_int(part) for part in text.split(",")]


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add ``loadtest`` (and its ``merge``); it sets ``run(args) -> exit status``."""
    cmd = commands.add_parser(
        "loadtest",
        help="load a service: closed or open model, HDR latencies, SLOs, JSON and HTML results",
        description="Load TARGET, a URL (quick mode: GET of it) or a scenario file (User classes), "
        "then print a summary. `tailguard loadtest merge A.json B.json ...` merges results "
        "of segments run side by side.",
        usage="%(prog)s TARGET [options]\n       %(prog)s merge FILE.json ... [--json OUT] "
        "[--html OUT] [--slo EXPR]",
    )
    cmd.add_argument(
        "target",
        nargs="+",
        metavar="TARGET",
        help="a URL (http://127.0.0.1:8000/), a scenario .py file, or merge FILES",
    )
    load = cmd.add_argument_group("load (one of --users, --rate, --ramp, --sweep)")
    model = load.add_mutually_exclusive_group()
    model.add_argument(
        "--users",
        type=_positive_int,
        metavar="N",
        help="closed model: N users (quick mode: no think time)",
    )
    model.add_argument(
        "--rate",
        type=_rate,
        metavar="R",
        help="open model: R requests (scenario: tasks) started per second",
    )
    model.add_argument(
        "--ramp",
        type=_stages,
        metavar="STAGES",
        help="open model, ramping: DURATION:RATE stages, e.g. 30s:100,1m:100,30s:0",
    )
    model.add_argument(
        "--sweep",
        type=_concurrencies,
        metavar="N,N,...",
        help="closed model at each concurrency in turn (--duration each); "
        "prints a concurrency,throughput CSV for `tailguard capacity fit`",
    )
    load.add_argument(
        "--duration",
        type=parse_duration,
        metavar="TIME",
        help="how long to run: 10s, 500ms, 2m (default: 10s, or the ramp's length)",
    )
    load.add_argument(
        "--max-requests",
        type=_positive_int,
        default=1_000_000,
        metavar="N",
        help="stop after N requests whatever the time (default: %(default)s)",
    )
    load.add_argument(
        "--connections",
        type=_positive_int,
        metavar="N",
        help="most requests in flight (open model; default 100)",
    )
    load.add_argument(
        "--timeout",
        type=parse_duration,
        default=30.0,
        metavar="TIME",
        help="per request (default: 30s)",
    )
    load.add_argument("--host", metavar="URL", help="a scenario's base URL (default: its host)")
    load.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a non-loopback host this run may load (repeatable)",
    )
    load.add_argument("--seed", type=int, help="repeatable task picks and think times")
    out = cmd.add_argument_group("results")
    out.add_argument(
        "--slo",
        action="append",
        default=[],
        metavar="EXPR",
        help="a threshold: p99<250ms, p99.9<1s, max<2s, errors<0.1%%, rps>1000 "
        "(repeatable); exit 1 when one fails",
    )
    out.add_argument("--json", type=Path, metavar="FILE", help="write the result JSON here")
    out.add_argument("--html", type=Path, metavar="FILE", help="write the HTML report here")
    out.add_argument("--quiet", "-q", action="store_true", help="no progress and no summary")
    scale = cmd.add_argument_group("scale")
    scale.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        metavar="N",
        help="processes, each its own event loop and share of the load",
    )
    scale.add_argument(
        "--segment",
        default="1/1",
        metavar="I/N",
        help="run only the I-th of N slices of the load (merge them later)",
    )
    scale.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop (default: uvloop when installed)",
    )
    cmd.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from tailguard.loadtest._commands import main

    return main(args)
