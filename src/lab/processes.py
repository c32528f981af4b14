"""The processes the demo starts: shops and simulators, each in its own process group, stopped
on success, failure or Ctrl-C, and with the demo if it is killed outright (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["Process", "free_port", "running", "wait_ready"]

BIN = Path(sys.executable).parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM when the demo dies, however it dies.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    os.setsid()


class Process:
    """A child process serving HTTP on ``port``; ``url`` is its base URL."""

    def __init__(
        self, name: str, args: Sequence[str], *, port: int, env: Mapping[str, str], log: Path
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("ab")
        self.popen = subprocess.Popen(
            list(args),
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the process has used (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM to the group, SIGKILL after 5 s."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        self._log.close()


async def wait_ready(process: Process, path: str = "/healthz", within: float = 60.0) -> None:
    """Poll ``path`` until it answers 200; RuntimeError (with the log's tail) otherwise."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                break
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with session.get(process.url + path) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    tail = process.log.read_text(errors="replace")[-2000:] if process.log.exists() else ""
    raise RuntimeError(f"{process.name} did not get ready on {process.url}:\n{tail}")


@contextlib.contextmanager
def running(processes: list[Process]) -> Iterator[list[Process]]:
    """Stop every process in ``processes`` (appended to while the block runs) at its end."""
    try:
        yield processes
    finally:
        for process in reversed(processes):
            process.stop()


def shop_command() -> list[str]:
    """The ``shop`` command of this environment."""
    return [str(BIN / "shop")]


def environment(**settings: Any) -> dict[str, str]:
    """``SHOP_*`` variables from keyword settings (lists as comma lists)."""
    env: dict[str, str] = {}
    for key, value in settings.items():
        if value is None:
            env[f"SHOP_{key.upper()}"] = ""  # not inherited from the demo's environment
            continue
        if isinstance(value, list | tuple | set | frozenset):
            value = ",".join(str(v) for v in value)
        env[f"SHOP_{key.upper()}"] = str(value)
    return env
