"""What ``tailguard loadtest`` does once its arguments are parsed: run, sweep, merge, report.

Each function takes the parsed arguments and returns the exit status: 0 when every SLO passed
(or there are none), 1 when one failed or a file could not be read or written, 2 for bad input
(raised as :class:`Usage`, whose message is the one line to print).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tailguard.errors import ConfigurationError

if TYPE_CHECKING:
    from tailguard.loadtest.results import Result

__all__ = ["FAILED", "USAGE_ERROR", "Usage", "error", "load", "merge_files"]

PROG = "tailguard"
USAGE_ERROR = 2
FAILED = 1


def main(args: argparse.Namespace) -> int:
    try:
        for expr in args.slo:
            _check_slo(expr)
        if args.target[0] == "merge":
            return merge_files(args)
        return load(args)
    except Usage as exc:
        return error(str(exc), USAGE_ERROR)
    except KeyboardInterrupt:
        return error("interrupted", 130)


class Usage(Exception):
    """Bad input: the message is the one line to print (exit status 2)."""


def _check_slo(expr: str) -> None:
    from tailguard.loadtest.slo import parse_slo

    try:
        parse_slo(expr)
    except ConfigurationError as exc:
        raise Usage(f"--slo={expr!r}: expected {exc.expected}") from None


def load(args: argparse.Namespace) -> int:
    from tailguard.loadtest.profiles import Ramp
    from tailguard.loadtest.progress import Progress
    from tailguard.loadtest.results import SweepPoint, concat
    from tailguard.loadtest.scenario import load_scenario
    from tailguard.loadtest.segment import Segment
    from tailguard.loadtest.targets import parse_target
    from tailguard.loadtest.workers import is_url, run_processes

    if len(args.target) != 1:
        raise Usage(f"expected one TARGET (a URL or a scenario file), got {args.target}")
    target = args.target[0]
    if args.users is None and args.rate is None and args.ramp is None and args.sweep is None:
        raise Usage("give the load: --users N (closed model), --rate R or --ramp (open)")
    _option("--segment", Segment.parse, args.segment)
    if args.sweep and args.segment != "1/1":
        raise Usage("--sweep runs whole: it does not take --segment")
    host = args.host
    if is_url(target):
        _option("TARGET", lambda t: parse_target(t, args.allow_host), target)
    else:
        try:
            classes = load_scenario(target)
        except ConfigurationError as exc:
            raise Usage(f"{target}: expected {exc.expected}") from None
        except Exception as exc:  # the scenario's own code failed to import
            raise Usage(
                f"{target}: cannot load the scenario: {type(exc).__name__}: {exc}"
            ) from None
        host = host or next((cls.host for cls in classes if cls.host), None)
        if not host:
            raise Usage(f"{target}: no base URL: give --host URL (or set host on the User class)")
        _option("--host", lambda t: parse_target(t, args.allow_host), host)
    options: dict[str, Any] = dict(
        duration=args.duration,
        max_requests=args.max_requests,
        connections=args.connections,
        timeout=args.timeout,
        allow_hosts=args.allow_host,
        slos=args.slo,
        seed=args.seed,
    )
    if host and not is_url(target):
        options["host"] = host
    duration = args.duration or (sum(s for s, _ in args.ramp) if args.ramp else 10.0)
    if args.sweep:
        results, points = [], []
        for users in args.sweep:
            progress = Progress(
                duration=duration,
                sources=args.workers,
                quiet=args.quiet,
                prefix=f"users {users:>4}  ",
            )
            try:
                step = run_processes(
                    target,
                    workers=args.workers,
                    loop=args.loop,
                    users=users,
                    on_second=progress,
                    **options,
                )
            finally:
                progress.close()
            results.append(step)
            points.append(
                SweepPoint(users, round(step.rps, 3), step.totals.histogram.percentile_ms(99))
            )
        result = concat(results)
        result.sweep = points
        sys.stdout.write("concurrency,throughput\n")
        sys.stdout.writelines(f"{p.concurrency},{p.throughput}\n" for p in points)
        return _finish(result, args, summary_to=sys.stderr)
    load: dict[str, Any] = {"users": args.users}
    if args.rate is not None:
        load = {"rate": args.rate}
    elif args.ramp is not None:
        load = {"rate": _option("--ramp", Ramp, args.ramp)}
    progress = Progress(duration=duration, sources=args.workers, quiet=args.quiet)
    try:
        result = run_processes(
            target,
            workers=args.workers,
            segment=args.segment,
            loop=args.loop,
            on_second=progress,
            **load,
            **options,
        )
    finally:
        progress.close()
    return _finish(result, args)


def merge_files(args: argparse.Namespace) -> int:
    from tailguard.loadtest.results import Result, merge

    files = args.target[1:]
    if not files:
        raise Usage("merge: expected result files: tailguard loadtest merge A.json B.json ...")
    given = [
        f"--{name}"
        for name in ("users", "rate", "ramp", "sweep", "duration")
        if getattr(args, name)
    ]
    given += ["--workers"] * (args.workers != 1) + ["--segment"] * (args.segment != "1/1")
    if given:
        raise Usage(f"merge takes result files and --json/--html/--slo/--quiet, not {given[0]}")
    results = []
    for name in files:
        try:
            results.append(Result.from_dict(json.loads(Path(name).read_text(encoding="utf-8"))))
        except OSError as exc:
            return error(f"{name}: cannot read: {exc.strerror}", FAILED)
        except ValueError as exc:
            return error(f"{name}: not a load test result: {exc}", FAILED)
    try:
        result = merge(results)
    except ValueError as exc:
        return error(f"merge: {exc}", FAILED)
    return _finish(result.check(args.slo), args)


def _finish(result: Result, args: argparse.Namespace, *, summary_to: Any = None) -> int:
    from tailguard.loadtest.progress import summary

    result.check(args.slo)
    if not args.quiet:
        (summary_to or sys.stdout).write(summary(result))
    if args.json is not None:
        try:
            args.json.write_text(result.to_json(), encoding="utf-8")
        except OSError as exc:
            return error(f"--json: cannot write {str(args.json)!r}: {exc.strerror}", FAILED)
    if args.html is not None:
        from tailguard.loadtest.report import render_html

        try:
            args.html.write_text(render_html(result.to_dict()), encoding="utf-8")
        except OSError as exc:
            return error(f"--html: cannot write {str(args.html)!r}: {exc.strerror}", FAILED)
    return 0 if result.passed else FAILED


def _option(name: str, check: Any, value: Any) -> Any:
    """``check(value)``, with a ``ConfigurationError`` turned into a usage error naming the
    option ``name``."""
    try:
        return check(value)
    except ConfigurationError as exc:
        raise Usage(f"{name}={exc.value!r}: expected {exc.expected}") from None


def error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status
