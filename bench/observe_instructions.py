"""tailguard.observe: what GoldenSignals costs a server, in instructions rather than seconds.

Requests/s on a shared 2-CPU VM swing by half within a minute (see ``bench/observe.py``). The
number of machine instructions a server executes per request does not: it is what the code
does, whatever the neighbours do. Each variant of ``bench/_http.py``'s app (bare, GoldenSignals
and the two peers) runs in its own uvicorn server under ``valgrind --tool=callgrind`` with
instrumentation off; ``WARM`` requests warm it up, then instrumentation is switched on
(``callgrind_control -i on``) for ``MEASURED`` requests from 8 keep-alive connections, and the
instructions counted are divided by the requests answered. One variant at a time (valgrind is
single-threaded and slow); repeated runs agree within about 0.3%.

Instructions are not time: the interpreter's own bytecode runs at fewer instructions per cycle
than the C of httptools and uvloop, so a middleware's share of the time is larger than its
share of the instructions (here 1-2 times, from the evening's runs). The figure is for finding and guarding the
cost, next to the requests/s of ``bench/observe.py``, not instead of it.

    .venv/bin/python -m bench observe_instructions             # ~3 min
    .venv/bin/python -m bench observe_instructions --quick     # bare and GoldenSignals, ~1 min
    .venv/bin/python -m bench observe_instructions --markdown

Needs ``valgrind`` on the PATH (Debian package ``valgrind``); without it the benchmark says so
and returns no figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench._harness import eprint, header, parse_args, ratio, render_table
from bench._http import ROOT, ROUTE, VARIANTS, fetch, load

__all__ = ["main"]

WARM, MEASURED = 3_000, 4_000
QUICK_WARM, QUICK_MEASURED = 300, 600
CONNECTIONS = 8


def start(variant: str, out: Path) -> subprocess.Popen[bytes]:
    """``variant``'s server under callgrind, instrumentation off, its dump going to ``out``."""
    return subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-m",
            "bench._http",
            variant,
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def control(*args: str) -> None:
    """``callgrind_control ARGS``: waits until the server has done it."""
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def counted(directory: Path, variant: str) -> int:
    """The instructions callgrind counted while instrumentation was on."""
    total = 0
    for dump in directory.glob(f"callgrind.{variant}.out*"):
        for text in dump.read_text(errors="replace").splitlines():
            if text.startswith(("summary:", "totals:")):
                total = max(total, int(text.split()[1]))
    return total


async def instructions_per_request(
    variant: str, directory: Path, warm: int, measured: int
) -> float:
    """Start ``variant`` under callgrind, warm it, count ``measured`` requests; stop it."""
    proc = start(variant, directory / f"callgrind.{variant}.out")
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 300)
        if not line.startswith(b"PORT "):
            raise RuntimeError(f"{variant}: server under valgrind did not start: {line!r}")
        port = int(line.split()[1])
        for _ in range(600):  # valgrind's start-up: up to a minute
            with contextlib.suppress(OSError, TimeoutError):
                status, _ = await fetch(port, "/items/0", within=30)
                if status == 200:
                    break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"{variant}: server under valgrind never answered")
        await load(port, connections=CONNECTIONS, seconds=3600, max_requests=warm)
        await asyncio.to_thread(control, "-i", "on", str(proc.pid))
        got = await load(port, connections=CONNECTIONS, seconds=3600, max_requests=measured)
        await asyncio.to_thread(control, "-i", "off", str(proc.pid))
        await asyncio.to_thread(control, "-d", str(proc.pid))
    finally:
        await asyncio.to_thread(stop, proc)
    total = await asyncio.to_thread(counted, directory, variant)
    if total <= 0:
        raise RuntimeError(f"{variant}: callgrind counted nothing")
    return total / got.sent


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table and the ratios; return the results."""
    settings = parse_args(
        argv,
        prog="python -m bench observe_instructions",
        description="tailguard.observe: server instructions per request (callgrind), by variant.",
    )
    title = "tailguard.observe: server instructions per request (callgrind), by variant"
    lines = header(title, settings)[:2]  # (not its line on interleaved timing samples)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print(
            "\n".join([*lines, "", "valgrind is not installed: no figures (apt install valgrind)"])
        )
        return {"available": False}
    warm, measured = (QUICK_WARM, QUICK_MEASURED) if settings.quick else (WARM, MEASURED)
    variants = ("bare", "goldensignals") if settings.quick else VARIANTS
    lines.append(
        f"each variant alone under callgrind: {warm:,} requests to warm up, then {measured:,} "
        f"counted, {CONNECTIONS} keep-alive connections, GET {ROUTE}"
    )
    counts: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tailguard-callgrind-") as tmp:
        for variant in variants:
            eprint(f"observe_instructions: {variant} under callgrind ...")
            counts[variant] = asyncio.run(
                instructions_per_request(variant, Path(tmp), warm, measured)
            )
    base = counts["bare"]
    rows = [
        [key, f"{n:,.0f}", f"{n - base:+,.0f}", f"{(n - base) / base:+.1%}", f"{base / n:.3f}x"]
        for key, n in counts.items()
    ]
    table = render_table(
        ["variant", "instructions/request", "added", "added %", "bare / variant"],
        rows,
        markdown=settings.markdown,
        align=["<", ">", ">", ">", ">"],
    )
    info = (
        f"[INFO] bare / GoldenSignals instructions per request: "
        f"{ratio(base, counts['goldensignals']):.3f} (the counterpart of the req/s target 1 of "
        "bench observe, not the target itself: see the module's docstring)"
    )
    if settings.markdown:
        print("\n".join([f"### {lines[0]}", "", *(f"{line}  " for line in lines[1:]), ""]))
        print(table, "", f"- {info}", sep="\n")
    else:
        print("\n".join([*lines, ""]))
        print(table, "", f"  {info}", sep="\n")
    return {"available": True, "instructions_per_request": counts}


if __name__ == "__main__":
    main()
