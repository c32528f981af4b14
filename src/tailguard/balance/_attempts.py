"""What the adapters share besides the balancer: idempotency, the ``Adapter`` protocol, one
request's attempts run through :class:`~tailguard.resilience.Retry` (see ``balancer.py``), and
the :class:`Outcome` that ends a response's lease when its body ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

from tailguard.balance._endpoint import Endpoint
from tailguard.errors import ConfigurationError
from tailguard.events import HookRegistry
from tailguard.resilience import Retry, RetryBudget
from tailguard.resilience.timeout import has_deadline

if TYPE_CHECKING:
    from tailguard.balance.balancer import Balancer, Lease

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_RETRY_STATUSES",
    "IDEMPOTENT_METHODS",
    "Adapter",
    "Call",
    "Outcome",
    "RetrySpec",
    "SendCall",
    "check_address",
    "is_idempotent",
    "retry_driver",
]

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)

IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})

RetrySpec = Retry | RetryBudget | int | None
"""``Retry(...)``: its attempts, backoff, budget and name (which failures are retried is the
balancer's decision); a ``RetryBudget``: 3 attempts, no backoff, that budget; an int: that many
attempts, no backoff, a fresh ``RetryBudget()``; ``None`` or ``1``: no retries."""

DEFAULT_RETRY_STATUSES: Final = frozenset({502, 503, 504})
DEFAULT_FAILURE_STATUSES: Final = frozenset(range(500, 600))


def is_idempotent(method: str, header_names: Iterable[str] = ()) -> bool:
    """May a request with ``method`` and these headers be sent twice?"""
    if method.upper() in IDEMPOTENT_METHODS:
        return True
    return any(name.lower() == "idempotency-key" for name in header_names)


def check_address(setting: str, address: str) -> str:
    """``address`` if it is an ``http`` or ``https`` base URL with a host, else
    ``ConfigurationError`` naming ``setting``."""
    try:
        parts = urlsplit(address)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed port or IPv6 literal
        ok = False
    if not ok:
        raise ConfigurationError(setting, address, "an http:// or https:// URL with a host")
    return address


class Outcome:
    """The lease of a response handed to the caller: ended once, when its body ends.

    ``ok`` is the judgment of its status; :meth:`end` records it, with the latency up to
    then, unless reading the body failed.
    """

    __slots__ = ("_lease", "adapter", "balancer", "ok")

    def __init__(self, balancer: Balancer, lease: Lease, adapter: Adapter[Any], ok: bool) -> None:
        self.balancer = balancer
        self._lease: Lease | None = lease
        self.adapter = adapter
        self.ok = ok

    @property
    def done(self) -> bool:
        return self._lease is None

    def end(self, exc: BaseException | None = None) -> None:
        """The body was read to its end or closed (``exc`` is ``None``), or reading it raised
        ``exc``: a failure of the endpoint, or neither success nor failure when ``exc`` is a
        cancellation or not the endpoint's fault. Only the first call counts."""
        lease, self._lease = self._lease, None
        if lease is None:
            return
        if exc is None:
            self.balancer.finish(lease, ok=self.ok)
        elif isinstance(exc, Exception) and self.adapter.error_kind(exc) is not None:
            self.balancer.finish(lease, ok=False)
        else:
            self.balancer.cancel(lease)


class Adapter(Protocol[R_contra]):
    """What an HTTP client adapter tells the balancer about its results and errors."""

    @property
    def retry_statuses(self) -> Collection[int]:
        """Statuses retried on another endpoint (idempotent requests only)."""
        ...

    @property
    def failure_statuses(self) -> Collection[int]:
        """Statuses counted as failures by health and breakers."""
        ...

    def status(self, result: R_contra) -> int: ...

    def error_kind(self, exc: Exception) -> Literal["unsent", "sent"] | None:
        """``"unsent"``: the request never left (connection refused); ``"sent"``: it may have
        been sent; ``None``: not the endpoint's failure (a bad URL): no retry, no count."""
        ...

    async def discard(self, result: R_contra) -> None:
        """Release a response that is not returned (its body unread)."""
        ...

    def body_done(self, result: R_contra) -> bool:
        """Has ``result``'s whole body already been received (nothing left to track)?"""
        ...

    def track(self, result: R_contra, outcome: Outcome) -> None:
        """Arrange for ``outcome.end()`` when ``result``'s body has been read to its end or
        closed (``outcome.end(exc)`` if reading it raised ``exc``); at once when the body is
        already in memory."""
        ...


class _Again(Exception):
    """An attempt that may be retried on another endpoint (an error, or a retryable status)."""

    def __init__(self, error: Exception | None) -> None:
        super().__init__(repr(error) if error is not None else "retryable status")
        self.error = error


def retry_driver(spec: RetrySpec, registry: HookRegistry) -> Retry | None:
    if spec is None or (isinstance(spec, int) and not isinstance(spec, bool) and spec == 1):
        return None
    if isinstance(spec, Retry):
        b = spec.backoff
        return Retry(
            spec.attempts,
            on=_Again,
            delay=b.initial,
            max_delay=b.maximum,
            multiplier=b.multiplier,
            jitter=b.jitter,
            budget=spec.budget,
            honor_retry_after=spec.honor_retry_after,
            name=spec.name,
            clock=spec.clock,
            hooks=registry,
        )
    if isinstance(spec, RetryBudget):
        budget, attempts = spec, 3
    elif isinstance(spec, int) and not isinstance(spec, bool) and spec >= 1:
        budget, attempts = RetryBudget(), spec
    else:
        raise ConfigurationError("Balancer.retry", spec, "a Retry, a RetryBudget, an int >= 1")
    return Retry(attempts, on=_Again, delay=0.0, max_delay=0.0, budget=budget, hooks=registry)


class Call(Generic[R]):
    """One request's attempts: the endpoints tried, the retryable response held back.

    :meth:`send` is how one attempt goes out (a subclass says; :class:`SendCall` calls a
    function). :meth:`run` is the whole request. Its first attempt runs without the
    :class:`~tailguard.resilience.Retry` driver: only when that attempt must be retried does
    ``Retry`` take over, and it sees the attempt's failure again as its own first one
    (``replay``), so backoff, budget, events and give-up notes are those of a request ``Retry``
    ran from the start. Under a ``Timeout``, ``Retry`` runs from the start: its deadline rule
    needs the first attempt's duration. An adapter may make the first attempt itself (a fast
    path for the common case) and hand anything else over with :meth:`after` or
    :meth:`after_error`.
    """

    __slots__ = ("adapter", "balancer", "held", "idempotent", "key", "replay", "tried")

    def __init__(
        self, balancer: Balancer, adapter: Adapter[R], idempotent: bool, key: str | None
    ) -> None:
        self.balancer = balancer
        self.adapter = adapter
        self.idempotent = idempotent
        self.key = key
        self.tried: list[Endpoint] = []
        self.held: list[R] = []
        self.replay: _Again | None = None

    def send(self, endpoint: Endpoint) -> Awaitable[R]:
        """Send the request to ``endpoint``; the result is judged by the adapter."""
        raise NotImplementedError

    async def run(self) -> R:
        """The whole request: a result, or the last failure as ``send`` raised it."""
        retry = self.balancer.retry
        if retry is not None and has_deadline():
            return await self._driven(retry)
        try:
            lease = self.balancer.acquire(key=self.key)
        except BaseException:  # every breaker open: still a request
            self.balancer.count_request()
            raise
        try:
            result = await self.send(lease.endpoint)
        except BaseException as exc:
            return await self.after_error(lease, exc)
        return await self.after(lease, result)

    async def after(self, lease: Lease, result: R) -> R:
        """Carry on from a first attempt, on ``lease``, that returned ``result``."""
        self.tried.append(lease.endpoint)
        try:
            result = self._answered(lease, result)
        except _Again as again:  # a retryable status
            return await self._retry(again)
        except BaseException:
            self.balancer.count_request(lease.started)
            raise
        self.balancer.count_request(lease.started)
        return result

    async def after_error(self, lease: Lease, error: BaseException) -> R:
        """Carry on from a first attempt, on ``lease``, that raised ``error``."""
        self.tried.append(lease.endpoint)
        again = self._failed(lease, error)
        if again is None:
            self.balancer.count_request(lease.started)
            raise error
        return await self._retry(again)

    async def _retry(self, again: _Again) -> R:
        retry = self.balancer.retry
        if retry is None:
            return self._give_up(again)
        self.replay = again  # Retry.call counts the request
        return await self._driven(retry)

    async def _driven(self, retry: Retry) -> R:
        try:
            return await retry.call(self.attempt)
        except _Again as again:
            return self._give_up(again)
        finally:
            if self.held:  # cancelled during a backoff, or a retry failed otherwise
                await self.release()

    def _give_up(self, again: _Again) -> R:
        """The last attempt's response, or its failure raised as ``send`` raised it."""
        if again.error is None:
            return self.held.pop()
        for note in getattr(again, "__notes__", ()):
            again.error.add_note(note)
        raise again.error from again.error.__cause__

    async def release(self) -> None:
        """Discard the held responses; runs to its end even when the caller is cancelled,
        so their connections go back to the pool."""
        held, self.held = self.held, []
        await asyncio.shield(_discard_all(self.adapter, held))

    async def attempt(self) -> R:
        """One attempt, as ``Retry`` drives it: ``_Again`` when it may be retried."""
        replay = self.replay
        if replay is not None:  # the first attempt, made by run() before Retry took over
            self.replay = None
            raise replay
        if self.held:  # a retryable response from the last attempt: release it
            await self.release()
        lease = self.balancer.acquire(key=self.key, exclude=self.tried)
        self.tried.append(lease.endpoint)
        try:
            result = await self.send(lease.endpoint)
        except BaseException as exc:
            again = self._failed(lease, exc)
            if again is None:
                raise
            raise again from exc
        return self._answered(lease, result)

    def _failed(self, lease: Lease, exc: BaseException) -> _Again | None:
        """Sending raised ``exc``: end the lease; the ``_Again`` to raise when the request may
        be retried, ``None`` to let ``exc`` through."""
        if isinstance(exc, Exception):
            kind = self.adapter.error_kind(exc)
            if kind is not None:
                self.balancer.finish(lease, ok=False)
                return _Again(exc) if self.idempotent or kind == "unsent" else None
        self.balancer.cancel(lease)  # a cancellation, or not the endpoint's fault
        return None

    def _answered(self, lease: Lease, result: R) -> R:
        """Judge a response by its status: returned (and tracked), or held for a retry."""
        adapter = self.adapter
        balancer = self.balancer
        status = adapter.status(result)
        ok = status not in adapter.failure_statuses
        if self.idempotent and status in adapter.retry_statuses:
            # Judged by its headers: its body is discarded (or, once the retries run out,
            # returned as is), and a backoff must not count as the endpoint's latency.
            balancer.finish(lease, ok=ok)
            self.held.append(result)
            raise _Again(None)
        if adapter.body_done(result):
            balancer.finish(lease, ok=ok)
        else:  # in flight until its body is read or closed; its latency runs to then
            adapter.track(result, Outcome(balancer, lease, adapter, ok))
        return result


class SendCall(Call[R]):
    """A :class:`Call` whose attempts are ``await send(endpoint)``."""

    __slots__ = ("_send",)

    def __init__(
        self,
        balancer: Balancer,
        send: Callable[[Endpoint], Awaitable[R]],
        adapter: Adapter[R],
        idempotent: bool,
        key: str | None,
    ) -> None:
        super().__init__(balancer, adapter, idempotent, key)
        self._send = send

    def send(self, endpoint: Endpoint) -> Awaitable[R]:
        return self._send(endpoint)


async def _discard_all(adapter: Adapter[R], held: list[R]) -> None:
    for result in held:
        with contextlib.suppress(Exception):  # a body we never read: closing it is best effort
            await adapter.discard(result)
