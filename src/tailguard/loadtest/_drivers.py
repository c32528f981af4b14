"""The quick mode's load drivers: one request, many connections, callbacks only.

No coroutine and no task per request: each connection's ``on_response`` records the request and
writes the next one (closed model) or hands the connection to the arrival schedule (open model).
Tasks appear only to open a connection. Per-request timeouts are one sweep over the connections
every few milliseconds, not a timer per request.

Open model: arrival ``i`` is due at ``start + profile.at(i)``. A free connection takes the next
arrival as soon as it is due; when none is free, arrivals wait and each one's latency still runs
from its due time. A timer wakes the schedule when connections sit idle. The timer fires with
about a millisecond of jitter, so an arrival may be sent up to ``EARLY`` seconds before it is due;
its latency then runs from the actual send, never from a later time than the truth.
"""

from __future__ import annotations

import asyncio
from time import perf_counter

from tailguard.loadtest._http import HttpConnection
from tailguard.loadtest._recorder import ActionRecorder, Recorder, status_kind
from tailguard.loadtest.profiles import Profile

__all__ = ["ClosedDriver", "OpenDriver", "preconnect"]

EARLY = 0.001  # seconds: how early a timer-woken arrival may be sent (timer resolution)


class _Idle:
    """The owner of connections opened before a run: nothing is in flight on them yet."""

    def on_response(self, conn: HttpConnection, status: int, head: bytes, body: bytes) -> None:
        pass

    def on_failure(self, conn: HttpConnection, kind: str) -> None:
        pass

    def on_idle_lost(self, conn: HttpConnection) -> None:
        pass


async def preconnect(
    host: str,
    port: int,
    count: int,
    timeout: float,  # noqa: ASYNC109 - per connection, not for them all
) -> list[HttpConnection | None]:
    """Open ``count`` connections before the clock starts (as wrk does), so that the first
    requests do not all pay for a connection at once; ``None`` where one failed (that slot
    tries again, timed, when it is first used)."""
    loop = asyncio.get_running_loop()
    owner = _Idle()

    async def one(slot: int) -> HttpConnection | None:
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    lambda: HttpConnection(owner, keep_body=False, slot=slot), host, port
                ),
                timeout,
            )
        except (OSError, TimeoutError):
            return None
        return conn

    return list(await asyncio.gather(*(one(slot) for slot in range(count))))


class _Driver:
    """What both models share: slots of connections, connecting, the timeout sweep, the end."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        request: bytes,
        head_only: bool,
        recorder: Recorder,
        action: ActionRecorder,
        slots: int,
        timeout: float,
        end: float,
        max_requests: int,
        conns: list[HttpConnection | None] | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.request, self.head_only = request, head_only
        self.recorder, self.action = recorder, action
        self.timeout, self.end, self.max_requests = timeout, end, max_requests
        self.conns: list[HttpConnection | None] = conns or [None] * slots
        for conn in self.conns:
            if conn is not None:
                conn.owner = self
        self.started = 0  # requests started, connection attempts included
        self.busy = 0  # slots with a request in flight (or connecting for one)
        self.delayed = 0  # open model: requests sent late for want of a free connection
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self._connecting: set[asyncio.Task[None]] = set()
        self._sweep_every = min(0.1, max(timeout / 10.0, 0.005))
        self._sweeper: asyncio.TimerHandle | None = None

    async def wait(self) -> None:
        self._sweeper = self.loop.call_later(self._sweep_every, self._sweep)
        hard_end = self.loop.call_later(self.end - perf_counter() + self.timeout, self._hard_stop)
        try:
            await self.finished
        finally:
            hard_end.cancel()
            self._sweeper.cancel()
            for task in self._connecting:
                task.cancel()
            for conn in self.conns:
                if conn is not None:
                    conn.abort()

    # -- per request ---------------------------------------------------------------------------

    def _dispatch(self, slot: int, start: float, now: float) -> None:
        conn = self.conns[slot]
        self.started += 1
        self.busy += 1
        if conn is None or conn.closed:
            task = self.loop.create_task(self._connect(slot, start))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)
            return
        conn.start = start
        conn.sent = now
        conn.send(self.request, head_only=self.head_only)

    async def _connect(self, slot: int, start: float) -> None:
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: HttpConnection(self, keep_body=False, slot=slot), self.host, self.port
                ),
                self.timeout,
            )
        except (OSError, TimeoutError):
            now = perf_counter()
            self.recorder.record(self.action, now, None, "connect")
            self.busy -= 1
            self._free(slot, now)
            return
        self.conns[slot] = conn
        conn.start = start
        conn.sent = perf_counter()
        conn.send(self.request, head_only=self.head_only)

    def on_response(self, conn: HttpConnection, status: int, head: bytes, body: bytes) -> None:
        now = perf_counter()
        kind = None if 200 <= status < 400 else status_kind(status)
        self.recorder.record(self.action, now, now - conn.start, kind)
        self.busy -= 1
        self._free(conn.slot, now)

    def on_failure(self, conn: HttpConnection, kind: str) -> None:
        now = perf_counter()
        self.recorder.record(self.action, now, None, kind)
        self.busy -= 1
        self._free(conn.slot, now)

    def on_idle_lost(self, conn: HttpConnection) -> None:
        pass  # the slot reconnects when it is next used

    def _free(self, slot: int, now: float) -> None:
        raise NotImplementedError

    # -- timeouts and the end --------------------------------------------------------------------

    def _sweep(self) -> None:
        now = perf_counter()
        limit = now - self.timeout
        for slot, conn in enumerate(self.conns):
            if conn is not None and conn.busy and conn.sent < limit:
                conn.abort()
                self.recorder.record(self.action, now, now - conn.start, "timeout")
                self.busy -= 1
                self._free(slot, now)
        if not self.finished.done():
            self._sweeper = self.loop.call_later(self._sweep_every, self._sweep)

    def _hard_stop(self) -> None:
        """The duration and one timeout have passed: whatever is unfinished timed out."""
        now = perf_counter()
        for conn in self.conns:
            if conn is not None and conn.busy:
                conn.abort()
                self.recorder.record(self.action, now, now - conn.start, "timeout")
        for task in self._connecting:
            task.cancel()
            self.recorder.record(self.action, now, None, "connect")
        self._unsent(now)
        self.busy = 0
        self._finish()

    def _unsent(self, now: float) -> None:
        pass

    def _finish(self) -> None:
        if not self.finished.done():
            self.finished.set_result(None)


class ClosedDriver(_Driver):
    """``slots`` users, each sending the request again as soon as its answer is in."""

    async def run(self) -> None:
        now = perf_counter()
        for slot in range(len(self.conns)):
            self._free(slot, now)
        await self.wait()

    def on_response(self, conn: HttpConnection, status: int, head: bytes, body: bytes) -> None:
        # The hot path, inlined: record, then the same connection sends the next request.
        now = perf_counter()
        kind = None if 200 <= status < 400 else status_kind(status)
        self.recorder.record(self.action, now, now - conn.start, kind)
        if now < self.end and self.started < self.max_requests and not conn.closed:
            self.started += 1
            conn.start = conn.sent = now
            conn.busy = True  # conn.send(), without its call: head_only is as it was
            conn.transport.write(self.request)  # type: ignore[union-attr]
            return
        self.busy -= 1
        self._free(conn.slot, now)

    def _free(self, slot: int, now: float) -> None:
        if now >= self.end or self.started >= self.max_requests:
            if self.busy == 0:
                self._finish()
            return
        self._dispatch(slot, now, now)


class OpenDriver(_Driver):
    """Arrivals on ``profile``'s schedule from ``start`` (``time.perf_counter`` seconds), on at
    most ``slots`` connections at once."""

    def __init__(self, *, profile: Profile, start: float, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.at = profile.at
        self.start = start
        self.next_i = 0
        self.next_due = start + self.at(0)
        self.idle: list[int] = []
        self.timer: asyncio.TimerHandle | None = None
        self.scheduling = True

    async def run(self) -> None:
        self.idle = list(reversed(range(len(self.conns))))
        self.scheduling = self.next_due < self.end and self.max_requests > 0
        self._pump()
        await self.wait()

    def _take(self) -> float:
        """The next arrival's due time, moving the schedule on (only while ``scheduling``)."""
        due = self.next_due
        self.next_i += 1
        self.next_due = self.start + self.at(self.next_i)
        if self.next_due >= self.end or self.next_i >= self.max_requests:
            self.scheduling = False  # the profile, the duration or the cap has run out
        return due

    def _pump(self) -> None:
        self.timer = None
        now = perf_counter()
        idle = self.idle
        while idle and self.scheduling and self.next_due <= now + EARLY:
            self._send(idle.pop(), self._take(), now)
        self._settle(now)

    def _send(self, slot: int, due: float, now: float) -> None:
        self._dispatch(slot, due if due < now else now, now)

    def _free(self, slot: int, now: float) -> None:
        if self.scheduling and self.next_due <= now + EARLY:
            due = self._take()
            if due < now - EARLY and not self.idle:  # it waited for a free connection
                self.delayed += 1
            self._send(slot, due, now)
            return
        self.idle.append(slot)
        self._settle(now)

    def _settle(self, now: float) -> None:
        if self.scheduling:
            if self.idle and self.timer is None:
                delay = self.next_due - EARLY - now
                if 0 < delay < EARLY:
                    # uvloop runs a timer under 0.5 ms at once (it counts whole milliseconds),
                    # so arrivals 0.5 ms apart kept the loop spinning: wake a millisecond on,
                    # which sends the arrival at most EARLY before its time, as allowed.
                    delay = EARLY
                self.timer = self.loop.call_later(delay if delay > 0 else 0, self._pump)
        elif self.busy == 0:
            self._finish()

    def _unsent(self, now: float) -> None:
        # Arrivals due before the end that never got a connection: their wait is their latency.
        while self.scheduling and self.next_due <= now:
            due = self._take()
            self.recorder.record(self.action, now, now - due, "timeout")
        self.scheduling = False

    def _finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        super()._finish()
