"""The ``tailguard`` command: ``tailguard slo rules | dashboard`` (``demo``, ``loadtest`` and
``capacity`` join as siblings).

Each command is a function ``_add_<command>(commands)`` that adds its sub-parser and sets
``run``, a function of the parsed arguments returning the exit code. Heavy imports happen in
``run``, so ``tailguard --help`` stays fast. Bad input exits with status 2 and one line on
stderr naming the option (``tailguard: error: --latency-threshold=0.3: expected ...``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from tailguard.errors import ConfigurationError

if TYPE_CHECKING:
    from tailguard.observe.slo import SLO

__all__ = ["main"]

PROG = "tailguard"
USAGE_ERROR = 2  # the exit status argparse and most Unix tools use for bad usage

Run = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad command-line input (exit status 2): the message is the one line to print."""


class CommandFailed(Exception):
    """The input was fine but the command could not finish (exit status 1), e.g. an
    unwritable ``--output``: the message is the one line to print."""


class _Parser(argparse.ArgumentParser):
    """Raises ``UsageError`` instead of printing the usage and exiting, so ``main`` prints
    one line and returns 2, and tests can call ``main`` without catching ``SystemExit``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        run: Run = args.run
        return run(args)
    except (UsageError, ConfigurationError) as exc:  # the latter names its setting
        print(f"{PROG}: error: {exc}", file=sys.stderr)
    except CommandFailed as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except SystemExit as exc:  # --help and --version: argparse has printed what was asked
        return exc.code if isinstance(exc.code, int) else 0
    return USAGE_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Performance and scalability toolkit for asyncio.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_slo(commands)
    from tailguard.loadtest.cli import add_commands as add_loadtest  # stdlib only at import

    add_loadtest(commands)
    from tailguard.capacity.cli import add_commands as add_capacity  # stdlib only at import

    add_capacity(commands)
    _add_plugins(commands)
    return parser


def _add_plugins(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Commands other packages add through the ``tailguard.commands`` entry-point group (the
    lab's ``demo``): each entry point is a function taking ``commands``, as ours are. tailguard
    itself imports none of them."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="tailguard.commands"):
        if entry.name not in commands.choices:
            entry.load()(commands)


# -- slo -------------------------------------------------------------------------------------


def _add_slo(commands: argparse._SubParsersAction[_Parser]) -> None:
    slo = commands.add_parser(
        "slo",
        help="Prometheus SLO alerting rules and a Grafana golden-signals dashboard",
        description="Generate multiwindow, multi-burn-rate SLO alerts and a dashboard.",
    )
    actions = slo.add_subparsers(title="outputs", metavar="OUTPUT", required=True)
    rules = actions.add_parser(
        "rules", help="the Prometheus rules file (YAML): recording rules and burn-rate alerts"
    )
    rules.set_defaults(run=_slo_rules)
    dashboard = actions.add_parser("dashboard", help="the Grafana dashboard (JSON)")
    dashboard.set_defaults(run=_slo_dashboard)
    for sub in (rules, dashboard):
        _slo_options(sub)


def _slo_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="the SLO's name: its `slo` label value")
    parser.add_argument(
        "--objective",
        type=float,
        default=0.999,
        help="target fraction of good requests, 0 < x < 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-threshold",
        type=float,
        metavar="SECONDS",
        help="also alert on requests slower than this; must be a histogram bucket bound",
    )
    parser.add_argument(
        "--selector",
        action="append",
        type=_label,
        default=[],
        metavar="LABEL=VALUE",
        help="a label matcher for every query (repeatable), e.g. route=/checkout",
    )
    parser.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="write here instead of stdout"
    )


def _label(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected LABEL=VALUE, got {text!r}")
    return name, value


def _slo(args: argparse.Namespace) -> SLO:
    from tailguard.observe.slo import SLO

    selector: dict[str, str] = {}
    for name, value in args.selector:
        if name in selector:
            raise UsageError(f"--selector: label {name!r} given twice")
        selector[name] = value
    try:
        return SLO(
            args.name,
            objective=args.objective,
            latency_threshold=args.latency_threshold,
            selector=selector,
        )
    except ConfigurationError as exc:  # each option is named after the setting it sets
        option = "--" + exc.setting.partition("[")[0].replace("_", "-")
        raise UsageError(f"{option}={exc.value!r}: expected {exc.expected}") from None


def _slo_rules(args: argparse.Namespace) -> int:
    _write(args.output, _slo(args).alert_rules())
    return 0


def _slo_dashboard(args: argparse.Namespace) -> int:
    _write(args.output, _slo(args).dashboard_json())
    return 0


def _write(path: Path | None, text: str) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandFailed(f"--output: cannot write {str(path)!r}: {exc.strerror}") from None
