"""The scenario's drivers: User instances running their tasks (closed model) or tasks started
on an arrival schedule (open model). Scenario code is coroutines, so here a request costs a
future and a task switch; the quick mode's callback drivers (``_drivers``) carry the high rates.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Sequence
from time import perf_counter

from tailguard._clock import Clock
from tailguard.loadtest._drivers import EARLY
from tailguard.loadtest._recorder import Recorder
from tailguard.loadtest.client import Client, Invocation, current_invocation
from tailguard.loadtest.profiles import Profile
from tailguard.loadtest.scenario import User

__all__ = ["ClosedUsers", "OpenUsers"]

log = logging.getLogger("tailguard.loadtest")


class _Base:
    def __init__(
        self, client: Client, recorder: Recorder, *, end: float, max_requests: int, seed: int | None
    ) -> None:
        self.client, self.recorder = client, recorder
        self.end, self.max_requests, self.seed = end, max_requests, seed
        self._reported: set[tuple[str, type[BaseException]]] = set()

    def capped(self) -> bool:
        return self.recorder_requests() >= self.max_requests

    def recorder_requests(self) -> int:
        recorder = self.recorder
        return recorder.totals.requests + sum(a.requests for a in recorder.actions.values())

    def user(self, cls: type[User], number: int) -> User:
        seed = None if self.seed is None else self.seed * 1_000_003 + number
        return cls(self.client, index=number, seed=seed)

    async def invoke(self, name: str, call: object, intended: float | None = None) -> None:
        """Await ``call()`` as the task ``name``; an exception it raises counts as one error
        of kind ``other`` under ``name`` (logged once per task and exception type)."""
        token = current_invocation.set(Invocation(name, intended))
        try:
            await call()  # type: ignore[operator]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.recorder.record(self.recorder.action(name), perf_counter(), None, "other")
            key = (name, type(exc))
            if key not in self._reported:
                self._reported.add(key)
                log.error(
                    "task %r raised %s (reported once)", name, type(exc).__name__, exc_info=exc
                )
        finally:
            current_invocation.reset(token)


class ClosedUsers(_Base):
    """One task per user: on_start, then task, think time, task ... until the end or the cap."""

    async def run(
        self, classes: Sequence[type[User]], numbers: range, clock: Clock, hard_end: float
    ) -> None:
        tasks = [
            asyncio.create_task(self._life(self.user(cls, number), clock))
            for cls, number in zip(classes, numbers, strict=True)
        ]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=max(hard_end - perf_counter(), 0.0))
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _life(self, user: User, clock: Clock) -> None:
        await self.invoke("on_start", user.on_start)
        while perf_counter() < self.end and not self.capped():
            name, call = user.pick_task()
            await self.invoke(name, call)
            left = self.end - perf_counter()
            wait = user.think_time()
            if left <= 0:
                break
            if wait > 0:
                await clock.sleep(min(wait, left))
        await self.invoke("on_stop", user.on_stop)


class OpenUsers(_Base):
    """Each arrival runs one task (picked by class weight, then task weight) on an idle user of
    that class, or a new one (whose on_start runs first); at most ``cap`` at once. An arrival
    that waits for the cap still counts its wait in its first request's latency."""

    async def run(
        self,
        classes: Sequence[type[User]],
        profile: Profile,
        start: float,
        cap: int,
        hard_end: float,
    ) -> None:
        self.rng = random.Random(self.seed)
        self.classes = list(classes)
        self.weights = [cls.weight for cls in classes]
        self.idle: dict[type[User], list[User]] = {cls: [] for cls in classes}
        self.created = 0
        self.running = 0
        self.freed = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        i = 0
        while True:
            due = start + profile.at(i)
            if due >= self.end or i >= self.max_requests or math.isinf(due) or self.capped():
                break
            while self.running >= cap:
                self.freed.clear()
                await self.freed.wait()
            delay = due - perf_counter()
            if delay > EARLY:
                await asyncio.sleep(delay - EARLY / 2)
            i += 1
            self.running += 1
            task = asyncio.create_task(self._arrive(due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(hard_end - perf_counter(), 0.0))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _arrive(self, due: float) -> None:
        intended = due if due < perf_counter() else None
        try:
            (cls,) = self.rng.choices(self.classes, weights=self.weights)
            idle = self.idle[cls]
            if idle:
                user = idle.pop()
            else:
                user = self.user(cls, self.created)
                self.created += 1
                await self.invoke("on_start", user.on_start, intended)
                intended = None
            name, call = user.pick_task()
            await self.invoke(name, call, intended)
            idle.append(user)
        finally:
            self.running -= 1
            self.freed.set()
