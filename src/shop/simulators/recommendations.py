"""A recommender simulator: per-user product lists, skewed to popular products, misbehaving.

Several replicas of it (distinct ``name``s) stand behind the shop's balancer; ``served_by`` in
each answer says which replica answered, and ``slow`` turns one into the slow replica.
"""

from __future__ import annotations

import math
import random

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._common import BadRequest, Simulator, admin_routes, bad_request_handler
from .behaviour import Behaviour

__all__ = ["MAX_LIMIT", "create_recommendations_app", "recommend"]

MAX_LIMIT = 50
"""The most product ids one answer holds."""


def recommend(user_id: int, limit: int, catalogue_size: int) -> list[int]:
    """``limit`` distinct product ids (1..catalogue_size) for a user, the same on every call.

    Ids are drawn log-uniformly (``P(id) ~ 1/id``), so low ids, the popular products, come up
    for most users, as in a real catalogue. A shorter list is a prefix of a longer one.
    """
    rng = random.Random(user_id)
    wanted = min(limit, catalogue_size)
    chosen: dict[int, None] = {}  # ordered set
    log_span = math.log(catalogue_size + 1)
    for _ in range(20 * MAX_LIMIT):
        if len(chosen) >= wanted:
            break
        chosen[min(catalogue_size, int(math.exp(rng.random() * log_span)))] = None
    # The rare user whose draws keep colliding (a tiny catalogue) gets the next unseen ids.
    for product_id in range(1, catalogue_size + 1):
        if len(chosen) >= wanted:
            break
        chosen.setdefault(product_id, None)
    return list(chosen)[:wanted]


def _int_param(raw: str, name: str, low: int, high: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise BadRequest(f"{name} must be an integer {bounds}, not {raw!r}")
    return value


def create_recommendations_app(
    behaviour: Behaviour | None = None,
    *,
    seed: int = 0,
    catalogue_size: int = 500,
    name: str = "recommender",
) -> Starlette:
    """A recommender replica (an ASGI app) called ``name``, misbehaving as ``behaviour`` says.

    ``seed`` makes the sampled latencies, failures and hangs reproducible; product ids come
    from ``1..catalogue_size``.
    The app keeps ``behaviour`` itself, not a copy: updating it (here, or
    through ``PUT /admin/behaviour``) changes the running app.
    """
    if catalogue_size < 1:
        raise ValueError(f"catalogue_size must be >= 1, not {catalogue_size!r}")
    sim = Simulator(behaviour, seed, counters=())

    async def get_recommendations(request: Request) -> Response:
        sim.stats["requests"] += 1
        user_id = _int_param(request.path_params["user_id"], "user_id", 1)
        limit = _int_param(request.query_params.get("limit", "10"), "limit", 1, MAX_LIMIT)

        def work() -> Response:
            ids = recommend(user_id, limit, catalogue_size)
            return JSONResponse({"user_id": user_id, "product_ids": ids, "served_by": name})

        return await sim.play(work, "recommendation service unavailable")

    routes = [
        Route("/recommendations/{user_id}", get_recommendations, methods=["GET"]),
        *admin_routes(sim, reset=lambda: None),
    ]
    return Starlette(routes=routes, exception_handlers={BadRequest: bad_request_handler})
