"""The payment gateway client: aiohttp through ``BalancedSession``, guarded by a policy.

Every charge carries an idempotency key (one per order), so a retried or repeated charge is
never charged twice: the gateway answers a known key with the charge it already made. When a
charge's outcome is unknown (the call timed out after the gateway may have acted), ``void``
cancels the key, so a late charge cannot land after the order was given up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shop.adapters._health import check_health
from tailguard.errors import Rejected

__all__ = [
    "Charge",
    "ChargeRejected",
    "HttpPaymentGateway",
    "PaymentGateway",
    "PaymentUnavailable",
]


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge the gateway made: ``status`` is ``succeeded`` or ``declined``."""

    id: str
    status: str
    amount_cents: int

    @property
    def succeeded(self) -> bool:
        """True when the money was taken."""
        return self.status == "succeeded"


class PaymentUnavailable(Exception):
    """The gateway failed or did not answer; ``retry_after`` (seconds) when known."""

    def __init__(self, detail: str, *, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class ChargeRejected(Exception):
    """The gateway refused the request itself (the key was voided or reused): not retried."""


class PaymentGateway(Protocol):
    """What the order handler needs from a payment gateway."""

    async def charge(self, key: str, amount_cents: int, user_id: int) -> Charge:
        """The charge for ``key``; a tailguard ``Rejected`` only when no attempt was sent."""
        ...

    async def void(self, key: str) -> None: ...

    async def ping(self) -> None: ...


class HttpPaymentGateway:
    """Charges over HTTP; ``policy`` (a tailguard ``Pipeline``) wraps each charge and void.

    ``session`` is a ``tailguard.balance.BalancedSession`` over the gateway's replicas, made
    with ``retry=None``: retries belong to the policy, so they stay within its budget.
    """

    def __init__(self, session: Any, policy: Any | None = None) -> None:
        self.session = session
        self.policy = policy

    async def _post(self, path: str, key: str, body: dict[str, Any]) -> tuple[int, Any]:
        import aiohttp

        try:
            response = await self.session.post(path, json=body, headers={"Idempotency-Key": key})
            async with response:
                payload = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, ValueError) as exc:
            raise PaymentUnavailable(f"payment gateway: {exc!r}") from exc
        if status >= 500:
            raise PaymentUnavailable(f"payment gateway answered {status}")
        return status, payload

    async def _charge_once(self, key: str, amount_cents: int, user_id: int) -> Charge:
        status, payload = await self._post(
            "/charges",
            key,
            {"idempotency_key": key, "amount_cents": amount_cents, "user_id": user_id},
        )
        if status in (200, 201):
            return Charge(str(payload["id"]), str(payload["status"]), int(payload["amount_cents"]))
        raise ChargeRejected(f"payment gateway refused the charge ({status}): {payload}")

    async def charge(self, key: str, amount_cents: int, user_id: int) -> Charge:
        """Charge ``amount_cents`` once for ``key``; raise PaymentUnavailable when it could not
        be done, or a tailguard ``Rejected`` from the policy (breaker open, bulkhead full) when
        no attempt was sent at all. A rejection after an attempt went out (a retry refused)
        is a PaymentUnavailable: that attempt's outcome is unknown."""
        if self.policy is None:
            return await self._charge_once(key, amount_cents, user_id)
        sent = False

        async def attempt(key: str, amount_cents: int, user_id: int) -> Charge:
            nonlocal sent
            sent = True
            return await self._charge_once(key, amount_cents, user_id)

        try:
            result: Charge = await self.policy.call(attempt, key, amount_cents, user_id)
        except Rejected as exc:
            if not sent:
                raise
            raise PaymentUnavailable(
                f"payment gateway: a retry was refused: {exc}", retry_after=exc.retry_after
            ) from exc
        return result

    async def _void_once(self, key: str) -> None:
        await self._post(f"/charges/{key}/void", key, {})

    async def void(self, key: str) -> None:
        """Cancel ``key``: a charge made for it is refunded, and none can be made later."""
        await self._void_once(key)

    async def ping(self) -> None:
        """Raise PaymentUnavailable unless a replica answers its health check."""
        await check_health(self.session, "payment gateway", PaymentUnavailable)


def is_transient(exc: BaseException) -> bool:
    """True for the failures worth another attempt (not a decline, not a rejection)."""
    return isinstance(exc, PaymentUnavailable | TimeoutError) and not isinstance(exc, Rejected)
