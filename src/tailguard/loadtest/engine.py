"""Run a load: a URL (quick mode) or User classes (a scenario), closed or open model.

::

    result = await run("http://127.0.0.1:8000/", rate=200, duration=10)      # open model
    result = await run(RealisticLoadTest, users=50, duration=60, host=url)    # closed model

Exactly one of ``users`` (closed model: that many users, each waiting for its answer before
its next request) or ``rate`` (open model: requests per second, or a :class:`Profile`, started on
schedule whatever the server does, at most ``connections`` at once) is given. Every run is
bounded by both ``duration`` (seconds) and ``max_requests``; requests still in flight at the end
get ``timeout`` seconds to finish, then count as timeouts.

The engine runs in the caller's event loop (uvloop makes it about twice as fast; the CLI and
worker processes use it when installed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.errors import ConfigurationError
from tailguard.loadtest._drivers import ClosedDriver, OpenDriver, preconnect
from tailguard.loadtest._http import HttpConnection
from tailguard.loadtest._recorder import Recorder
from tailguard.loadtest._users import ClosedUsers, OpenUsers
from tailguard.loadtest.client import USER_AGENT, Client
from tailguard.loadtest.profiles import ArrivalRate, Profile
from tailguard.loadtest.results import Result, Second
from tailguard.loadtest.scenario import User, assign, runnable
from tailguard.loadtest.segment import Segment
from tailguard.loadtest.targets import parse_target

__all__ = [
    "DEFAULT_CONNECTIONS",
    "DEFAULT_DURATION",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_TIMEOUT",
    "run",
]

DEFAULT_DURATION = 10.0  # seconds
DEFAULT_MAX_REQUESTS = 1_000_000
DEFAULT_TIMEOUT = 30.0  # seconds
DEFAULT_CONNECTIONS = 100  # open model: most requests in flight at once


async def run(
    target: str | type[User] | Sequence[type[User]],
    *,
    users: int | None = None,
    rate: float | Profile | None = None,
    duration: float | None = None,
    max_requests: int = DEFAULT_MAX_REQUESTS,
    connections: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - per request, not for the run
    host: str | None = None,
    allow_hosts: Sequence[str] = (),
    slos: Sequence[str] = (),
    segment: Segment | str = "1/1",
    on_second: Callable[[Second], None] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    seed: int | None = None,
    label: str | None = None,
) -> Result:
    """Run the load and return its :class:`Result`.

    ``target``: a URL (quick mode: ``GET`` of it) or User classes. ``duration``: seconds
    (default: a ramp's length, else 10). ``connections``: the open model's cap on requests in
    flight (default 100); the closed model's pool size (default one per user). ``host``: the
    scenario's base URL (default: the User class's ``host``). ``allow_hosts``: non-loopback
    hosts that may be loaded. ``slos``: expressions checked on the result (with the User
    classes' ``slos``). ``segment``: run only slice ``i/n`` of the load. ``on_second``: called
    with each whole second as it closes. ``clock``: sleeps the think times. ``seed``: makes
    task picks and think times repeatable. ``label``: the result's ``target`` text.
    """
    seg = segment if isinstance(segment, Segment) else Segment.parse(segment)
    profile = _profile(users, rate)
    if duration is None:
        duration = (profile.duration if profile else None) or DEFAULT_DURATION
    _check(duration=duration, max_requests=max_requests, timeout=timeout, users=users,
           connections=connections)  # fmt: skip
    classes = None
    if not isinstance(target, str):
        classes = runnable([target] if isinstance(target, type) else list(target))
        host = host or next((cls.host for cls in classes if cls.host), None)
        if not host:
            raise ConfigurationError(
                "host", host, "the scenario's base URL: --host URL (Python: host=...) or User.host"
            )
    user_numbers = seg.users(users) if users is not None else range(0)
    if profile is not None:
        slots = max(seg.requests(connections or DEFAULT_CONNECTIONS), 1)
    else:
        slots = connections or max(len(user_numbers), 1)
    quick = None
    if isinstance(target, str):
        count = len(user_numbers) if profile is None else slots
        quick = await _prepare(target, tuple(allow_hosts), timeout, count)
    started_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    start = perf_counter()
    recorder = Recorder(start, on_second=on_second)
    load = _Load(seg, profile, user_numbers, slots, seg.requests(max_requests), timeout,
                 tuple(allow_hosts), start, start + duration, recorder)  # fmt: skip
    ticker = _Ticker(load.recorder)
    try:
        if quick is not None:
            await _quick(quick, load)
        else:
            assert classes is not None
            assert host is not None
            await _scenario(classes, host, load, clock, seed)
    finally:
        ticker.stop()
    finished = perf_counter()
    load.recorder.finish(finished)
    result = Result(
        target=label or (target if isinstance(target, str) else _names(classes or [])),
        model="closed" if profile is None else "open",
        started_at=started_at,
        duration_s=finished - start,
        settings={
            "users": len(user_numbers) if profile is None else None,
            "rate": None if profile is None else round(profile.peak / seg.count, 6),
            "duration_s": duration,
            "max_requests": load.cap,
            "workers": 1,
            "segment": str(seg),
            "connections": slots,
            "timeout_s": timeout,
        },
        totals=load.recorder.totals,
        actions={name: action.stats for name, action in load.recorder.actions.items()},
        timeline=load.recorder.timeline,
        notes=load.notes,
    )
    return result.check([*slos, *(expr for cls in classes or [] for expr in cls.slos)])


@dataclasses.dataclass
class _Load:
    """A run's shape once decided: its slice, schedule, connections and bounds (``start`` and
    ``end`` on ``time.perf_counter``, seconds)."""

    seg: Segment
    profile: Profile | None
    user_numbers: range
    slots: int
    cap: int
    timeout: float
    allow_hosts: tuple[str, ...]
    start: float
    end: float
    recorder: Recorder
    notes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Prepared:
    """The quick mode's request and its connections, made before the clock starts."""

    host: str
    port: int
    request: bytes
    name: str
    conns: list[HttpConnection | None]


async def _prepare(
    url: str,
    allow_hosts: tuple[str, ...],
    timeout: float,  # noqa: ASYNC109 - per connection
    count: int,
) -> _Prepared:
    target = parse_target(url, allow_hosts)
    request = (
        f"GET {target.path} HTTP/1.1\r\nHost: {target.authority}\r\n"
        f"User-Agent: {USER_AGENT}\r\n\r\n"
    ).encode("latin-1")
    host = await _resolve(target.host, target.port)
    conns = await preconnect(host, target.port, count, timeout)
    return _Prepared(host, target.port, request, f"GET {target.path}", conns)


async def _quick(quick: _Prepared, load: _Load) -> None:
    recorder = load.recorder
    options: dict[str, Any] = dict(
        host=quick.host,
        port=quick.port,
        request=quick.request,
        head_only=False,
        recorder=recorder,
        action=recorder.action(quick.name),
        timeout=load.timeout,
        end=load.end,
        max_requests=load.cap,
        conns=quick.conns,
    )
    if load.profile is None:
        if load.user_numbers:
            await ClosedDriver(slots=len(load.user_numbers), **options).run()
        return
    profile = load.seg.profile(load.profile)
    driver = OpenDriver(profile=profile, start=load.start, slots=load.slots, **options)
    await driver.run()
    if driver.delayed:
        load.notes.append(
            f"{driver.delayed} requests started late because all {load.slots} connections were "
            "busy (their wait counts in their latency); more --connections measures the server "
            "rather than the cap"
        )


async def _scenario(
    classes: Sequence[type[User]], host: str, load: _Load, clock: Clock, seed: int | None
) -> None:
    recorder = load.recorder
    client = Client(host, connections=load.slots, timeout=load.timeout,
                    allow_hosts=load.allow_hosts, recorder=recorder)  # fmt: skip
    hard_end = load.end + load.timeout
    try:
        if load.profile is None:
            users = ClosedUsers(client, recorder, end=load.end, max_requests=load.cap, seed=seed)
            numbers = load.user_numbers
            await users.run(assign(classes, numbers), numbers, clock, hard_end)
        else:
            arrivals = OpenUsers(client, recorder, end=load.end, max_requests=load.cap, seed=seed)
            profile = load.seg.profile(load.profile)
            await arrivals.run(classes, profile, load.start, load.slots, hard_end)
    finally:
        await client.aclose()


async def _resolve(host: str, port: int) -> str:
    """A numeric address for ``host``, looked up once (not once per connection)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return host  # each connection attempt will fail, and be counted, as "connect"
    return str(infos[0][4][0]) if infos else host


class _Ticker:
    """Closes each second on time even when no request completes in it (a stalled server)."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.loop = asyncio.get_running_loop()
        self.handle = self.loop.call_later(1.0, self._tick)

    def _tick(self) -> None:
        now = perf_counter()
        self.recorder.roll(now)
        self.handle = self.loop.call_later(max(self.recorder.second_end - now, 0.0), self._tick)

    def stop(self) -> None:
        self.handle.cancel()


def _profile(users: int | None, rate: float | Profile | None) -> Profile | None:
    if (users is None) == (rate is None):
        raise ConfigurationError(
            "users/rate", (users, rate), "exactly one: users=N (closed model) or rate=R (open)"
        )
    if rate is None:
        return None
    return rate if isinstance(rate, Profile) else ArrivalRate(float(rate))


def _check(
    *,
    duration: float,
    max_requests: int,
    timeout: float,
    users: int | None,
    connections: int | None,
) -> None:
    if not (duration > 0 and math.isfinite(duration)):
        raise ConfigurationError("duration", duration, "seconds > 0")
    if not (isinstance(max_requests, int) and max_requests >= 1):
        raise ConfigurationError("max_requests", max_requests, "an integer >= 1")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise ConfigurationError("timeout", timeout, "seconds > 0")
    if users is not None and not (isinstance(users, int) and users >= 1):
        raise ConfigurationError("users", users, "an integer >= 1")
    if connections is not None and not (isinstance(connections, int) and connections >= 1):
        raise ConfigurationError("connections", connections, "an integer >= 1")


def _names(classes: Sequence[type[User]]) -> str:
    return ", ".join(cls.__name__ for cls in classes)
