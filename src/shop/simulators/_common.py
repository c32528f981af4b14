"""What both simulators share: playing a sampled ``Behaviour``, JSON errors, the admin routes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .behaviour import Behaviour

__all__ = ["BadRequest", "Simulator", "admin_routes", "bad_request_handler", "error", "json_object"]


class BadRequest(Exception):
    """Invalid input; answered 400 ``{"detail": message}`` by ``bad_request_handler``."""


def error(status: int, detail: str, **extra: object) -> JSONResponse:
    """A JSON error response ``{"detail": ..., **extra}``."""
    return JSONResponse({"detail": detail, **extra}, status_code=status)


async def bad_request_handler(request: Request, exc: Exception) -> Response:
    return error(400, str(exc))


async def json_object(request: Request) -> dict[str, object]:
    """The request body as a JSON object, else ``BadRequest``."""
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


class Simulator:
    """A behaviour, a seeded random source and request counters, shared by one app's routes."""

    def __init__(self, behaviour: Behaviour | None, seed: int, counters: Iterable[str]) -> None:
        self.behaviour = behaviour if behaviour is not None else Behaviour()
        self.rng = random.Random(seed)
        self._counter_names = ("requests", *counters, "failed", "hung")
        self.stats = dict.fromkeys(self._counter_names, 0)

    def reset_stats(self) -> None:
        self.stats = dict.fromkeys(self._counter_names, 0)

    async def play(self, work: Callable[[], Response], unavailable: str) -> Response:
        """Sample the behaviour, then fail at once, or sleep the latency, ``work()``, maybe hang.

        A hang starts after ``work()`` has had its effect; cancelling it (the client gave up)
        undoes nothing, which is the point.
        """
        latency, outcome = self.behaviour.sample(self.rng)
        if outcome == "fail":
            self.stats["failed"] += 1
            return error(503, unavailable)
        await asyncio.sleep(latency)
        response = work()
        if outcome == "hang":
            self.stats["hung"] += 1
            await asyncio.sleep(self.behaviour.hang)
        return response


def admin_routes(sim: Simulator, reset: Callable[[], None]) -> list[Route]:
    """``/healthz`` (never sampled), ``/admin/behaviour`` GET/PUT, ``/admin/stats``, reset."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def get_behaviour(request: Request) -> Response:
        return JSONResponse(sim.behaviour.to_dict())

    async def put_behaviour(request: Request) -> Response:
        changes = await json_object(request)
        try:
            sim.behaviour.update(changes)
        except ValueError as exc:
            raise BadRequest(str(exc)) from exc
        return JSONResponse(sim.behaviour.to_dict())

    async def get_stats(request: Request) -> Response:
        return JSONResponse(sim.stats)

    async def post_reset(request: Request) -> Response:
        reset()
        sim.reset_stats()
        return JSONResponse({"status": "ok"})

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/admin/behaviour", get_behaviour, methods=["GET"]),
        Route("/admin/behaviour", put_behaviour, methods=["PUT"]),
        Route("/admin/stats", get_stats, methods=["GET"]),
        Route("/admin/reset", post_reset, methods=["POST"]),
    ]
