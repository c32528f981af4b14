"""The loopback responders of ``bench/loadgen.py``: a C epoll server (``_loadgen_responder.c``,
compiled with the machine's gcc into a temp dir at run time) or, where gcc is missing or fails,
its twin in Python (an ``asyncio.Protocol`` on uvloop): ``python -m bench._loadgen_responder
DELAY_US STALL_PERIOD_US STALL_LENGTH_US``.

Both answer every ``GET`` with the same fixed 200 ``ok`` on keep-alive connections; with a delay,
each answer is written that long after its request was read; with a stall, a request read in
the last ``length`` seconds of each ``period`` (counted from the server's start) is held until
the period ends. Both bind ``127.0.0.1:0``, print ``PORT <n>``, serve until their stdin ends
(the parent holds the other end, so a responder never outlives the benchmark), then print
``STATS <requests> <held> <late_p50_us> <late_p99_us> <late_max_us> <late_mean_us>``: how late
held answers were written past their due time (a timer's lateness is part of the true latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["Behaviour", "Responder", "ResponderStats", "build"]

SOURCE = Path(__file__).with_name("_loadgen_responder.c")
ROOT = Path(__file__).resolve().parent.parent
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: bench\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
)


def build(directory: Path) -> tuple[Path | None, str]:
    """Compile the C responder into ``directory``: (the binary, or None, and why not)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None, "gcc not found"
    binary = directory / "responder"
    done = subprocess.run(
        [gcc, "-O2", "-o", str(binary), str(SOURCE)], capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        return None, f"gcc failed: {done.stderr.strip()[:300]}"
    return binary, ""


@dataclasses.dataclass(frozen=True, slots=True)
class Behaviour:
    """``delay``: seconds before each answer; a stall of ``stall_length`` s once every
    ``stall_period`` s (0: none)."""

    delay: float = 0.0
    stall_period: float = 0.0
    stall_length: float = 0.0

    def args(self) -> list[str]:
        return [
            str(round(s * 1_000_000)) for s in (self.delay, self.stall_period, self.stall_length)
        ]


@dataclasses.dataclass(frozen=True, slots=True)
class ResponderStats:
    """What a responder reported as it stopped: requests read, answers held (delayed or
    stalled), and how late the held answers were written past their due time (ms)."""

    requests: int
    held: int
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    late_mean_ms: float


class Responder:
    """One responder process (``binary``: the compiled C server, else the Python twin), on
    ``cpus`` when given (Linux). ``start()``, then ``url``; ``stop()`` returns its stats."""

    def __init__(self, binary: Path | None, behaviour: Behaviour, cpus: set[int] | None) -> None:
        self.binary = binary
        self.behaviour = behaviour
        self.cpus = cpus
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @property
    def kind(self) -> str:
        return "C epoll" if self.binary is not None else "Python asyncio.Protocol on uvloop"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, within: float = 15.0) -> None:
        if self.binary is not None:
            command = [str(self.binary), *self.behaviour.args()]
        else:
            command = [sys.executable, "-m", "bench._loadgen_responder", *self.behaviour.args()]
        self.proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=pin(self.cpus),
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], within)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"the responder did not start ({command[0]}): {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> ResponderStats | None:
        """Close its stdin (its cue to report and exit); SIGKILL after 5 s; reap it."""
        proc = self.proc
        if proc is None:
            return None
        self.proc = None
        line = ""
        try:
            assert proc.stdin is not None
            assert proc.stdout is not None
            with contextlib.suppress(OSError):
                proc.stdin.close()
            ready, _, _ = select.select([proc.stdout], [], [], 5.0)
            line = proc.stdout.readline() if ready else ""
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        fields = line.split()
        if len(fields) != 7 or fields[0] != "STATS":
            return None
        requests, held, *late_us = map(int, fields[1:])
        return ResponderStats(requests, held, *(us / 1000 for us in late_us))


def pin(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that moves the child onto ``cpus`` before it execs (None: no pinning)."""
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        return None
    chosen = set(cpus)

    def apply() -> None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, chosen)

    return apply


# -- the Python twin ------------------------------------------------------------------------


class _Conn(asyncio.Protocol):
    def __init__(self, server: _Twin) -> None:
        self.server = server
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.tail + data
        count = buf.count(b"\r\n\r\n")
        self.tail = (buf[buf.rfind(b"\r\n\r\n") + 4 :] if count else buf)[-3:]
        if count:
            self.server.answer(self, count)

    def write(self, count: int, due: float) -> None:
        late = round((self.server.loop.time() - due) * 1e6)
        self.server.late[late] = self.server.late.get(late, 0) + count
        self.send(count)

    def send(self, count: int) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE * count)


class _Twin:
    def __init__(
        self, loop: asyncio.AbstractEventLoop, delay: float, period: float, length: float
    ) -> None:
        self.loop = loop
        self.delay, self.period, self.length = delay, period, length
        self.t0 = loop.time()
        self.requests = 0
        self.late: dict[int, int] = {}  # us late -> answers

    def answer(self, conn: _Conn, count: int) -> None:
        self.requests += count
        now = self.loop.time()
        due = now + self.delay
        if self.period > 0:
            phase = (now - self.t0) % self.period
            if phase >= self.period - self.length:
                due = max(due, now - phase + self.period)
        if due > now:
            self.loop.call_at(due, conn.write, count, due)
        else:
            conn.send(count)


async def _serve(delay: float, period: float, length: float) -> None:
    loop = asyncio.get_running_loop()
    twin = _Twin(loop, delay, period, length)
    server = await loop.create_server(lambda: _Conn(twin), "127.0.0.1", 0, backlog=4096)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    server.close()
    held = sum(twin.late.values())
    mean = sum(us * n for us, n in twin.late.items()) // held if held else 0
    p50, p99 = (_percentile(twin.late, held, p) for p in (50, 99))
    print(
        f"STATS {twin.requests} {held} {p50} {p99} {max(twin.late, default=0)} {mean}", flush=True
    )


def _percentile(counts: dict[int, int], total: int, p: int) -> int:
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen * 100 >= total * p:
            return value
    return 0


def main(argv: list[str]) -> None:
    delay, period, length = (int(arg) / 1_000_000 for arg in argv)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(delay, period, length))
    else:
        uvloop.run(_serve(delay, period, length))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(
            "usage: python -m bench._loadgen_responder DELAY_US STALL_PERIOD_US STALL_LENGTH_US"
        )
    main(sys.argv[1:])
