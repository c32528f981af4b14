"""A payment gateway simulator: idempotent charges keyed by the caller, voids, misbehaviour.

``POST /charges`` is idempotent on ``idempotency_key``: a replay returns the first answer
unchanged, so a caller that timed out may retry safely. The simulator's ``timeout_rate`` makes
that case happen: the charge is recorded, then the answer hangs. ``amount_cents == 402`` is a
deterministic "test card" decline.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._common import BadRequest, Simulator, admin_routes, bad_request_handler, error, json_object
from .behaviour import Behaviour

__all__ = ["DECLINED_AMOUNT_CENTS", "create_payments_app"]

DECLINED_AMOUNT_CENTS = 402
"""A charge of exactly this amount is always declined, like a payment provider's test card."""

Status = Literal["succeeded", "declined", "refunded", "voided"]
_STATUSES: tuple[Status, ...] = ("succeeded", "declined", "refunded", "voided")
_MAX_KEY = 200
JSONBody = dict[str, Any]


@dataclass
class _Charge:
    """A charge, or a tombstone (status ``voided``, no amount) for a key voided before use."""

    id: str
    idempotency_key: str
    amount_cents: int | None
    user_id: int | None
    currency: str | None
    status: Status
    created_at: str  # ISO 8601, UTC


@dataclass(frozen=True)
class _ChargeRequest:
    idempotency_key: str
    amount_cents: int
    user_id: int
    currency: str


def _parse_charge(body: dict[str, object]) -> _ChargeRequest:
    key = body.get("idempotency_key")
    if not isinstance(key, str) or not 1 <= len(key) <= _MAX_KEY:
        raise BadRequest(f"idempotency_key must be a string of 1 to {_MAX_KEY} characters")
    amount = body.get("amount_cents")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise BadRequest("amount_cents must be an integer > 0")
    user_id = body.get("user_id")
    if isinstance(user_id, bool) or not isinstance(user_id, int) or user_id < 1:
        raise BadRequest("user_id must be an integer >= 1")
    currency = body.get("currency", "usd")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise BadRequest("currency must be a three-letter code such as 'usd'")
    return _ChargeRequest(key, amount, user_id, currency.lower())


class _Ledger:
    """The charges by idempotency key. Every method runs without awaiting, so it is atomic."""

    def __init__(self) -> None:
        self.charges: dict[str, _Charge] = {}
        self._ids = itertools.count(1)

    def _new(
        self,
        key: str,
        amount: int | None,
        user_id: int | None,
        currency: str | None,
        status: Status,
    ) -> _Charge:
        now = datetime.now(UTC).isoformat()
        charge = _Charge(f"ch_{next(self._ids)}", key, amount, user_id, currency, status, now)
        self.charges[key] = charge
        return charge

    def charge(self, req: _ChargeRequest, declined: Callable[[], bool]) -> tuple[int, JSONBody]:
        """(HTTP status, body): 201 created, 200 replayed, 409 voided or amount mismatch.

        ``declined()`` is asked only when a new charge is made.
        """
        existing = self.charges.get(req.idempotency_key)
        if existing is not None and existing.status == "voided":
            return 409, {"detail": "voided", "charge": asdict(existing)}
        if existing is not None:
            if existing.amount_cents != req.amount_cents:
                return 409, {"detail": "idempotency key reused with a different amount"}
            return 200, asdict(existing)
        status: Status = "declined" if declined() else "succeeded"
        created = self._new(
            req.idempotency_key, req.amount_cents, req.user_id, req.currency, status
        )
        return 201, asdict(created)

    def void(self, key: str) -> _Charge:
        existing = self.charges.get(key)
        if existing is None:
            return self._new(key, None, None, None, "voided")
        if existing.status == "succeeded":
            existing.status = "refunded"
        return existing

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(_STATUSES, 0)
        for charge in self.charges.values():
            counts[charge.status] += 1
        return counts


def create_payments_app(
    behaviour: Behaviour | None = None, *, seed: int = 0, decline_rate: float = 0.0
) -> Starlette:
    """A payment gateway simulator (an ASGI app) misbehaving as ``behaviour`` says.

    ``seed`` makes the sampled latencies, failures, hangs and declines reproducible;
    ``decline_rate`` (0..1) is the fraction of new charges declined.
    The app keeps ``behaviour`` itself, not a copy: updating it (here, or
    through ``PUT /admin/behaviour``) changes the running app.
    """
    if not 0.0 <= decline_rate <= 1.0:
        raise ValueError(f"decline_rate must be between 0 and 1, not {decline_rate!r}")
    sim = Simulator(behaviour, seed, counters=("charges_attempted", "replayed"))
    ledger = _Ledger()

    async def post_charge(request: Request) -> Response:
        sim.stats["requests"] += 1
        req = _parse_charge(await json_object(request))
        sim.stats["charges_attempted"] += 1

        def declined() -> bool:
            return req.amount_cents == DECLINED_AMOUNT_CENTS or sim.rng.random() < decline_rate

        def work() -> Response:
            status, body = ledger.charge(req, declined)
            if status == 200:
                sim.stats["replayed"] += 1
            return JSONResponse(body, status_code=status)

        return await sim.play(work, "payment service unavailable")

    async def post_void(request: Request) -> Response:
        return JSONResponse(asdict(ledger.void(request.path_params["key"])))

    async def list_charges(request: Request) -> Response:
        charges = [asdict(c) for c in ledger.charges.values()]
        return JSONResponse({"charges": charges, "counts": ledger.counts()})

    async def get_charge(request: Request) -> Response:
        charge = ledger.charges.get(request.path_params["key"])
        if charge is None:
            return error(404, "no charge with that idempotency key")
        return JSONResponse(asdict(charge))

    def reset() -> None:
        ledger.charges.clear()

    routes = [
        Route("/charges", post_charge, methods=["POST"]),
        Route("/charges", list_charges, methods=["GET"]),
        Route("/charges/{key:path}/void", post_void, methods=["POST"]),
        Route("/charges/{key:path}", get_charge, methods=["GET"]),
        *admin_routes(sim, reset),
    ]
    return Starlette(routes=routes, exception_handlers={BadRequest: bad_request_handler})
