"""Headless Chromium for tests: open a local page, collect its console errors, screenshot it.

Debian's ``chromium`` (``make browser`` installs it) is started with a throwaway profile and
``--remote-debugging-port=0``; the port it picked is read from ``DevToolsActivePort`` in the
profile, and the page is driven over the DevTools protocol through one websocket (aiohttp):
Runtime, Log and Page are enabled *before* navigating, so nothing the page reports is missed.

A console error is any of: an uncaught exception (``Runtime.exceptionThrown``), a
``console.error`` call (``Runtime.consoleAPICalled``, type ``error``), or a browser log entry at
level ``error`` (``Log.entryAdded``: failed loads, blocked requests, policy violations).

    report = await open_page(Path("report.html"))
    assert report.console_errors == []
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.services import skip_or_fail

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
VISIT_TIMEOUT = 60.0  # seconds, from starting chromium to the screenshot
# Resolves after two animation frames: the page has been laid out and painted once.
_PAINTED = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"


@dataclass(frozen=True)
class PageReport:
    """What the browser saw: a PNG of the viewport, console errors, the page's visible text."""

    screenshot_png: bytes
    console_errors: list[str]
    text: str  # document.body.innerText


class BrowserError(Exception):
    """Chromium could not be started or driven; the message carries the end of its log."""


def require_chromium() -> Path:
    """Debian's chromium, or skip the test (fail it under ``CI=true``) when it is missing."""
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (`make browser` installs Debian's chromium)")
    return CHROMIUM


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ``ValueError`` when ``png`` is not a PNG."""
    if png[:8] != PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG: bad signature or no IHDR chunk first")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


async def open_page(
    path: Path, *, window: tuple[int, int] = (1280, 2400), full_page: bool = False
) -> PageReport:
    """Load ``path`` (a local file) in headless Chromium and report what happened.

    The screenshot is the ``window``-sized viewport, or the whole page with ``full_page``.
    A visit that takes longer than ``VISIT_TIMEOUT`` raises ``BrowserError``.
    """
    with tempfile.TemporaryDirectory(prefix="tailguard-chromium-") as tmp:
        proc, profile, log = _launch(Path(tmp), window)
        try:
            async with asyncio.timeout(VISIT_TIMEOUT):
                endpoint = await _devtools_endpoint(profile, proc, log)
                async with (
                    aiohttp.ClientSession() as http,
                    http.ws_connect(endpoint, max_msg_size=0) as ws,
                ):
                    cdp = _Cdp(ws)
                    try:
                        return await _visit(cdp, _file_url(path), window, full_page)
                    finally:
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(cdp.send("Browser.close"), 5)
                        await cdp.close()
        except TimeoutError as exc:
            raise BrowserError(f"no page within {VISIT_TIMEOUT} s{_tail(log)}") from exc
        finally:
            _stop(proc)


def _file_url(path: Path) -> str:
    return path.resolve().as_uri()


def _launch(tmp: Path, window: tuple[int, int]) -> tuple[subprocess.Popen[bytes], Path, Path]:
    profile, log_path = tmp / "profile", tmp / "chromium.log"
    args = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}"]
    args += [f"--window-size={window[0]},{window[1]}", "about:blank"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: its helpers end with it
        )
    return proc, profile, log_path


async def _devtools_endpoint(profile: Path, proc: subprocess.Popen[bytes], log: Path) -> str:
    active = profile / "DevToolsActivePort"
    while True:
        if proc.poll() is not None:
            raise BrowserError(f"chromium exited with {proc.returncode}{_tail(log)}")
        with contextlib.suppress(FileNotFoundError):
            lines = active.read_text().splitlines()
            if len(lines) >= 2 and lines[0].isdigit():
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        await asyncio.sleep(0.05)


async def _visit(cdp: _Cdp, url: str, window: tuple[int, int], full_page: bool) -> PageReport:
    targets = (await cdp.send("Target.getTargets"))["targetInfos"]
    page = next((t["targetId"] for t in targets if t["type"] == "page"), None)
    if page is None:  # the first tab is not up yet: open one
        page = (await cdp.send("Target.createTarget", {"url": "about:blank"}))["targetId"]
    attached = await cdp.send("Target.attachToTarget", {"targetId": page, "flatten": True})
    session = attached["sessionId"]
    cdp.session = session
    for domain in ("Runtime", "Log", "Page"):
        await cdp.send(f"{domain}.enable", session=session)
    await cdp.send(
        "Emulation.setDeviceMetricsOverride",
        {"width": window[0], "height": window[1], "deviceScaleFactor": 1, "mobile": False},
        session=session,
    )
    cdp.loaded.clear()
    navigated = await cdp.send("Page.navigate", {"url": url}, session=session)
    if navigated.get("errorText"):
        raise BrowserError(f"navigating to {url} failed: {navigated['errorText']}")
    await cdp.loaded.wait()
    await _evaluate(cdp, session, _PAINTED)
    text = await _evaluate(cdp, session, "document.body ? document.body.innerText : ''")
    shot = await cdp.send(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": full_page},
        session=session,
    )
    return PageReport(base64.b64decode(shot["data"]), list(cdp.errors), str(text))


async def _evaluate(cdp: _Cdp, session: str, expression: str) -> Any:
    reply = await cdp.send(
        "Runtime.evaluate",
        {"expression": expression, "awaitPromise": True, "returnByValue": True},
        session=session,
    )
    if "exceptionDetails" in reply:
        raise BrowserError(f"{expression!r} threw: {reply['exceptionDetails'].get('text')}")
    return reply["result"].get("value")


class _Cdp:
    """A minimal DevTools protocol client: numbered calls, and the events the visit needs."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.session: str | None = None  # events from other targets are ignored
        self.errors: list[str] = []
        self.loaded = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None
    ) -> dict[str, Any]:
        self._ids += 1
        message: dict[str, Any] = {"id": self._ids, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._ids] = future
        await self._ws.send_str(json.dumps(message))
        return await future

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._dispatch(json.loads(msg.data))
        finally:
            lost = BrowserError("the DevTools connection closed")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)

    def _dispatch(self, data: dict[str, Any]) -> None:
        if "id" in data:
            future = self._pending.pop(data["id"], None)
            if future is None or future.done():
                return
            if "error" in data:
                future.set_exception(BrowserError(f"DevTools error: {data['error']}"))
            else:
                future.set_result(data.get("result", {}))
            return
        if data.get("sessionId") != self.session:
            return
        method, params = data.get("method"), data.get("params", {})
        if method == "Page.loadEventFired":
            self.loaded.set()
        elif (error := _console_error(method, params)) is not None:
            self.errors.append(error)


def _console_error(method: Any, params: dict[str, Any]) -> str | None:
    if method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        description = details.get("exception", {}).get("description") or details.get("text")
        return f"exception: {description} ({details.get('url', '')}:{details.get('lineNumber')})"
    if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
        args = params.get("args", [])
        words = (str(a.get("value", a.get("description", a.get("type")))) for a in args)
        return "console.error: " + " ".join(words)
    if method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        entry = params["entry"]
        return f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".rstrip()
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """End the browser we started, and its process group, without waiting long."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftover helpers of this browser only


def _tail(log: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        text = log.read_text(errors="replace").splitlines()[-lines:]
        if text:
            return "; chromium's log ends with:\n" + "\n".join(text)
    return ""
