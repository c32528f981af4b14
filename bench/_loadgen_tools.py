"""The load generators ``bench/loadgen.py`` compares, each run as its own process on the client's
CPUs, each returning one :class:`Sample`:

* ours: ``tailguard loadtest URL --users N`` (closed) or ``--rate R --connections C`` (open),
  ``--duration Ns --max-requests 100000000 --quiet --json FILE`` (the CLI, on uvloop: one
  worker process); requests, wall seconds and p50/p99 come from its result JSON;
* Locust: ``locust -f locustfile.py --headless -u N -r N -t Ns --only-summary --json-file``, the
  locustfile a ``FastHttpUser`` with ``wait_time = constant(0)`` and one ``GET /`` task, written
  to a temp dir; req/s as Locust computes it (requests over the time from its stats' start to
  its last request), p50/p99 from its response-time buckets (whole ms below 100 ms);
* the aiohttp loop: ``python -m bench._loadgen_child aiohttp`` (N tasks on uvloop);
* wrk: ``wrk -t1 -cN -dNs --latency URL``; req/s and p50/p99 parsed from its output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench._harness import Target, eprint
from bench._loadgen_responder import ROOT, Behaviour, Responder, pin

__all__ = [
    "LOCUSTFILE",
    "Context",
    "Sample",
    "Section",
    "aiohttp_loop",
    "as_data",
    "attempt",
    "locust",
    "ours",
    "run_child",
    "versions",
    "wrk",
]

LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Bench(FastHttpUser):
    wait_time = constant(0)

    @task
    def get(self):
        self.client.get("/")
"""


MAX_REQUESTS = 100_000_000  # ours stops at its duration, as the other tools do, not at its cap


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    """One run of one tool: ``requests`` completed in ``seconds``; latencies in ms."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class Context:
    """What every section needs: the compiled responder (None: the Python twin), the CPUs of
    the load generators and of the responders (None: not pinned), a temp dir for files."""

    binary: Path | None
    client: set[int] | None
    server: set[int] | None
    workdir: Path

    def responder(self, behaviour: Behaviour) -> Responder:
        return Responder(self.binary, behaviour, self.server)


@dataclasses.dataclass(frozen=True, slots=True)
class Section:
    """A section's printed heading and body (a table and its notes), its targets, its data."""

    heading: str
    body: str
    goals: list[Target]
    data: Any


def attempt(name: str, run: Callable[[], Sample]) -> Sample | str:
    """The sample, or why there is none (a missing tool or a crash must not end the run)."""
    try:
        return run()
    except (RuntimeError, OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        eprint(f"loadgen: {name} failed: {exc}")
        return f"failed: {str(exc).splitlines()[0][:120]}"


def as_data(sample: Sample | str) -> dict[str, Any] | str:
    return dataclasses.asdict(sample) if isinstance(sample, Sample) else sample


def run_child(
    command: list[str], *, cpus: set[int] | None, timeout: float, cwd: Path = ROOT
) -> str:
    """Run ``command`` to its end on ``cpus`` (killed after ``timeout`` s, or on any
    exception: ``subprocess.run`` kills its child on the way out); its stdout. A non-zero exit
    raises with the end of its stderr."""
    done = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=pin(cpus),
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{Path(command[0]).name} exited {done.returncode}: {done.stderr.strip()[-600:]}"
        )
    return done.stdout


def ours(
    url: str,
    *,
    seconds: int,
    workdir: Path,
    cpus: set[int] | None,
    users: int | None = None,
    rate: float | None = None,
    connections: int | None = None,
) -> Sample:
    """``tailguard loadtest URL`` closed (``users``) or open (``rate``), one process."""
    out = workdir / "ours.json"
    load = ["--users", str(users)] if users is not None else ["--rate", f"{rate:g}"]
    if connections is not None:
        load += ["--connections", str(connections)]
    command = [sys.executable, "-m", "tailguard", "loadtest", url, *load]
    command += ["--duration", f"{seconds}s", "--max-requests", str(MAX_REQUESTS)]
    command += ["--quiet", "--json", str(out)]
    run_child(command, cpus=cpus, timeout=seconds + 60)
    data = json.loads(out.read_text())
    totals = data["totals"]
    latency = totals["latency_ms"]
    return Sample(
        totals["requests"], data["duration_s"], latency["p50"], latency["p99"], totals["errors"]
    )


def locust(url: str, *, users: int, seconds: int, workdir: Path, cpus: set[int] | None) -> Sample:
    """Locust's FastHttpUser, one process, no wait, headless."""
    locustfile = workdir / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    out = workdir / "locust.json"
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless"]
    command += ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--only-summary"]
    command += [
        "--host",
        url.rstrip("/"),
        "--json-file",
        str(out.with_suffix("")),
        "--loglevel",
        "WARNING",
    ]
    run_child(command, cpus=cpus, timeout=seconds + 60, cwd=workdir)
    entries: list[dict[str, Any]] = json.loads(out.read_text())
    requests = sum(int(e["num_requests"]) for e in entries)
    failures = sum(int(e["num_failures"]) for e in entries)
    start = min(float(e["start_time"]) for e in entries)
    last = max(float(e["last_request_timestamp"]) for e in entries)
    buckets: dict[float, int] = {}
    for entry in entries:
        for ms, count in entry["response_times"].items():
            buckets[float(ms)] = buckets.get(float(ms), 0) + int(count)
    return Sample(
        requests,
        last - start,
        _bucket_percentile(buckets, 50),
        _bucket_percentile(buckets, 99),
        failures,
    )


def _bucket_percentile(buckets: dict[float, int], p: float) -> float:
    """The smallest bucket holding at least ``p`` % of the counts (as Locust reports it)."""
    total = sum(buckets.values())
    seen = 0
    for ms in sorted(buckets):
        seen += buckets[ms]
        if seen >= total * p / 100:
            return ms
    return 0.0


def aiohttp_loop(url: str, *, connections: int, seconds: int, cpus: set[int] | None) -> Sample:
    """The plain aiohttp client loop in a process of its own (``bench/_loadgen_child.py``)."""
    command = [
        sys.executable,
        "-m",
        "bench._loadgen_child",
        "aiohttp",
        url,
        str(connections),
        str(seconds),
    ]
    data = json.loads(run_child(command, cpus=cpus, timeout=seconds + 60).splitlines()[-1])
    return Sample(data["requests"], data["seconds"], data["p50_ms"], data["p99_ms"], data["errors"])


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk(url: str, *, connections: int, seconds: int, cpus: set[int] | None) -> Sample:
    """``wrk -t1 -cN -dNs --latency URL``: one thread."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    command = [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    text = run_child(command, cpus=cpus, timeout=seconds + 60)
    done = re.search(r"(\d+) requests in ", text)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if done is None or rate is None or float(rate[1]) <= 0:
        raise RuntimeError(f"wrk: cannot parse its output: {text[-400:]!r}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    failed = int(errors[1]) if errors else 0
    failed += sum(map(int, socket_errors.groups())) if socket_errors else 0

    def latency(p: str) -> float:
        match = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"wrk: no {p}% line in its output: {text[-400:]!r}")
        return float(match[1]) * _WRK_UNITS[match[2]]

    requests = int(done[1])  # its duration is printed to 10 ms; its req/s in full
    return Sample(requests, requests / float(rate[1]), latency("50"), latency("99"), failed)


def versions(compiled: bool) -> str:
    """One line: the version of every tool in the comparison (and gcc's, when it built the
    responder)."""
    parts = []
    for name in ("tailguard", "locust", "aiohttp", "uvloop"):
        try:
            parts.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    binary = shutil.which("wrk")
    wrk_version = "wrk (not installed)"
    if binary is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            first = subprocess.run(
                [binary, "-v"], capture_output=True, text=True, timeout=10
            ).stdout
            wrk_version = " ".join(first.split()[:2]) or "wrk"
    parts.append(wrk_version)
    if compiled:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            gcc = subprocess.run(
                ["gcc", "-dumpfullversion"], capture_output=True, text=True, timeout=10
            )
            parts.append(f"gcc {gcc.stdout.strip()} -O2")
    return ", ".join(parts)
