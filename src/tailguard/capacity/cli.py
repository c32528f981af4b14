"""``tailguard capacity plan | fit | servers``: the capacity functions on the command line.

``add_commands(commands)`` adds the ``capacity`` command to ``tailguard``'s sub-parsers; the
``tailguard`` CLI calls it. As everywhere in ``tailguard``, bad input exits with status 2 and
one line on stderr naming the option (``tailguard: error: --rps=-1.0: expected ...``), an
unreadable or unwritable file with status 1. numpy, scipy and matplotlib are imported only by
the command that needs them, so ``tailguard --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tailguard.errors import ConfigurationError

__all__ = ["add_commands"]

PROG = "tailguard"
USAGE_ERROR = 2
FAILED = 1
SWEEP = "SWEEP.csv"  # the positional argument's name in messages, as in --help

Parser = TypeVar("Parser", bound=argparse.ArgumentParser)


def add_commands(commands: argparse._SubParsersAction[Parser]) -> None:
    """Add ``capacity`` and its sub-commands; each sets ``run(args) -> exit status``."""
    capacity = commands.add_parser(
        "capacity",
        help="capacity plans: Little's law, a USL fit of a sweep, M/M/c servers",
        description="Size a service: the guide's Little's-law plan, a Universal Scalability "
        "Law fit over a concurrency sweep, and M/M/c (Erlang C) servers for a wait target.",
    )
    actions = capacity.add_subparsers(title="commands", metavar="COMMAND", required=True)

    plan = actions.add_parser(
        "plan",
        help="concurrency, cores, memory and instances for a load, and at twice that load",
        description="The guide's capacity plan (Little's law, 20% headroom), the same at 2x "
        "the load, and the utilization law's view.",
    )
    _number(plan, "--rps", "expected requests per second", required=True)
    _number(plan, "--latency-ms", "mean response time, milliseconds", required=True)
    _number(plan, "--cpu-per-request", "CPU-seconds per request (0.1 = 100 ms)", required=True)
    _number(plan, "--memory-mb", "memory per request in flight, MB", required=True)
    _number(plan, "--headroom", "fraction of capacity kept free (default: %(default)s)", 0.2)
    _number(plan, "--instance-cores", "cores per instance (default: %(default)s)", 4.0)
    _number(plan, "--instance-memory-gb", "memory per instance, GiB (default: %(default)s)", 16.0)
    _json_flag(plan)
    plan.set_defaults(run=_guarded(_plan))

    fit = actions.add_parser(
        "fit",
        help="fit the Universal Scalability Law to throughput by concurrency",
        description="Fit X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)) to a sweep: a CSV "
        "of concurrency,throughput rows (a header line is optional, # starts a comment).",
    )
    fit.add_argument("sweep", type=Path, metavar=SWEEP, help="the sweep: concurrency,throughput")
    fit.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the fit to this PNG")
    _json_flag(fit)
    fit.set_defaults(run=_guarded(_fit))

    servers = actions.add_parser(
        "servers",
        help="M/M/c (Erlang C): the fewest servers that keep a wait percentile under a target",
        description="The fewest servers (workers, connections) such that the given fraction of "
        "requests waits in queue no longer than the target.",
    )
    _number(servers, "--rate", "arrivals per second", required=True)
    _number(servers, "--service-time", "mean seconds a request holds a server", required=True)
    _number(servers, "--wait-target", "seconds a request may wait in queue", required=True)
    _number(servers, "--percentile", "fraction that must meet it (default: %(default)s)", 0.95)
    _json_flag(servers)
    servers.set_defaults(run=_guarded(_servers))


# -- plan ------------------------------------------------------------------------------------


def _plan(args: argparse.Namespace) -> int:
    from tailguard.capacity.littles_law import plan

    result = plan(
        args.rps,
        args.latency_ms,
        args.cpu_per_request,
        args.memory_mb,
        headroom=args.headroom,
        instance_cores=args.instance_cores,
        instance_memory_gb=args.instance_memory_gb,
    )
    if args.json:
        _print_json(result.to_dict())
        return 0
    e, x2, view = result.expected, result.at_2x, result.utilization_law
    print(
        f"Capacity plan: {result.rps:g} rps at {result.latency_ms:g} ms, "
        f"{result.cpu_per_request:g} CPU-s and {result.memory_mb:g} MB per request; "
        f"{result.instance_cores:g}-core {result.instance_memory_gb:g} GiB instances, "
        f"{result.headroom:.0%} headroom"
    )
    print()
    rows = [
        ("", f"1x ({e.rps:g} rps)", f"2x ({x2.rps:g} rps)"),
        ("concurrent requests", f"{e.concurrent_requests:.4g}", f"{x2.concurrent_requests:.4g}"),
        ("CPU cores", f"{e.required_cpu_cores:.4g}", f"{x2.required_cpu_cores:.4g}"),
        ("memory (GiB)", f"{e.required_memory_gb:.3g}", f"{x2.required_memory_gb:.3g}"),
        ("instances", f"{e.instances_needed}", f"{x2.instances_needed}"),
    ]
    for label, one, two in rows:
        print(f"  {label:<20}{one:>18}{two:>18}")
    print()
    print(
        f"Utilization law: {view.busy_cores:.4g} busy cores, {view.required_cpu_cores:.4g} at "
        f"{view.target_utilization:.0%}; {view.memory_in_flight_gb:.3g} GiB in flight; "
        f"{view.instances_needed} instances"
    )
    print()
    print("Notes:")
    for note in result.notes:
        print(textwrap.fill(note, width=96, initial_indent="  - ", subsequent_indent="    "))
    return 0


# -- fit -------------------------------------------------------------------------------------


def _fit(args: argparse.Namespace) -> int:
    path: Path = args.sweep
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return _error(f"{SWEEP} {str(path)!r}: not UTF-8 text", USAGE_ERROR)
    except OSError as exc:
        return _error(f"{SWEEP}: cannot read {str(path)!r}: {exc.strerror}", FAILED)
    try:
        from tailguard.capacity.sweep import read_sweep
        from tailguard.capacity.usl import fit_usl

        concurrency, throughput = read_sweep(text)
        fit = fit_usl(concurrency, throughput)
    except ImportError as exc:
        return _error(f"capacity fit needs the capacity extra ({exc.name}): {_EXTRA}", FAILED)
    except ValueError as exc:
        return _error(f"{SWEEP} {str(path)!r}: {exc}", USAGE_ERROR)
    if args.plot is not None:
        try:
            from tailguard.capacity.plot import plot_usl

            plot_usl(fit, concurrency, throughput, args.plot)
        except ImportError as exc:
            return _error(f"--plot needs the capacity extra ({exc.name}): {_EXTRA}", FAILED)
        except OSError as exc:
            return _error(f"--plot: cannot write {str(args.plot)!r}: {exc.strerror}", FAILED)
    if args.json:
        _print_json(fit.to_dict())
        return 0
    print(
        f"Universal Scalability Law fit over {len(concurrency)} points "
        f"(concurrency {min(concurrency):g} to {max(concurrency):g}), "
        f"R^2 = {fit.r_squared:.4f}"
    )
    print(f"  sigma   (contention)      {fit.sigma:.4g}")
    print(f"  kappa   (coherency)       {fit.kappa:.4g}")
    print(f"  lambda  (X at N = 1)      {fit.lambda_:.6g}")
    print(f"  peak concurrency N*       {fit.peak_concurrency:.4g}")
    print(f"  peak throughput X(N*)     {fit.peak_throughput:.6g}")
    if args.plot is not None:
        print(f"Plot: {args.plot}")
    return 0


_EXTRA = "pip install 'tailguard[capacity]'"


# -- servers ---------------------------------------------------------------------------------


def _servers(args: argparse.Namespace) -> int:
    from tailguard.capacity.erlang import erlang_c, mean_wait, servers_for, service_level

    c = servers_for(args.rate, args.service_time, args.wait_target, args.percentile)
    load = args.rate * args.service_time
    result = {
        "servers": c,
        "offered_load": load,
        "utilization": load / c,
        "wait_probability": erlang_c(c, load),
        "service_level": service_level(c, args.rate, args.service_time, args.wait_target),
        "mean_wait": mean_wait(c, args.rate, args.service_time),
        "inputs": {
            "rate": args.rate,
            "service_time": args.service_time,
            "wait_target": args.wait_target,
            "percentile": args.percentile,
        },
    }
    if args.json:
        _print_json(result)
        return 0
    print(f"Servers: {c}  (M/M/c, Erlang C)")
    print(f"  offered load          {load:.4g} Erlangs ({args.rate:g}/s x {args.service_time:g} s)")
    print(f"  utilization           {result['utilization']:.1%}")
    print(f"  P(wait)               {result['wait_probability']:.4f}")
    print(
        f"  P(wait <= {args.wait_target:g} s)".ljust(24)
        + f"{result['service_level']:.2%} (target {args.percentile:.2%})"
    )
    print(f"  mean wait in queue    {result['mean_wait']:.4g} s")
    return 0


# -- shared ----------------------------------------------------------------------------------


def _number(
    parser: argparse.ArgumentParser,
    option: str,
    text: str,
    default: float | None = None,
    *,
    required: bool = False,
) -> None:
    metavar = option.removeprefix("--").replace("-", "_").upper()
    parser.add_argument(
        option, type=float, default=default, required=required, metavar=metavar, help=text
    )


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def _print_json(data: dict[str, Any]) -> None:
    # inf (no peak: kappa = 0) is not JSON: it is written as null.
    print(json.dumps(_finite(data), indent=2, allow_nan=False))


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _guarded(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run``, with a library ``ConfigurationError`` (naming an argument) turned into one line
    naming the option and exit status 2."""

    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ConfigurationError as exc:
            option = "--" + exc.setting.replace("_", "-")
            return _error(f"{option}={exc.value!r}: expected {exc.expected}", USAGE_ERROR)

    return guarded


def _error(message: str, status: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status
