"""``Balancer``: a picker plus health, per-endpoint breakers and retries on another endpoint.

The transport-agnostic driver every adapter shares (the httpx transport, the aiohttp session)::

    balancer = Balancer(PowerOfTwo(urls), breaker=BreakerConfig(failure_threshold=5))
    async with balancer.use() as endpoint:       # in flight, latency, health, breaker
        await send_to(endpoint.address)

``await balancer.call(send, adapter, idempotent=...)`` is the loop the adapters run: pick an
endpoint not tried yet for this request, send, judge the outcome (a failed connection, a 5xx),
and retry through :class:`~tailguard.resilience.Retry` and its
:class:`~tailguard.resilience.RetryBudget`, but only when it is safe: an idempotent request
(``GET HEAD OPTIONS PUT DELETE TRACE``, or any with an ``Idempotency-Key`` header) after any
failure, any other request only when the failure proves it never left (the connection was
refused), never once it may have been sent.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import TypeVar

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.balance._attempts import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_RETRY_STATUSES,
    IDEMPOTENT_METHODS,
    Adapter,
    Outcome,
    RetrySpec,
    SendCall,
    check_address,
    is_idempotent,
    retry_driver,
)
from tailguard.balance._endpoint import Endpoint
from tailguard.balance.health import OutlierDetection
from tailguard.balance.pickers import Picker, PowerOfTwo
from tailguard.errors import CircuitOpenError
from tailguard.events import CircuitStateChanged, EndpointEjected, HookRegistry
from tailguard.events import hooks as default_hooks
from tailguard.resilience import BreakerConfig, BreakerState

__all__ = [
    "DEFAULT_FAILURE_STATUSES",
    "DEFAULT_RETRY_STATUSES",
    "IDEMPOTENT_METHODS",
    "Adapter",
    "Balancer",
    "Lease",
    "Outcome",
    "RetrySpec",
    "build_balancer",
    "is_idempotent",
]

R = TypeVar("R")


class Lease:
    """One request on ``endpoint``, started at ``started`` (seconds)."""

    __slots__ = ("endpoint", "generation", "started")

    def __init__(self, endpoint: Endpoint, generation: int, started: float) -> None:
        self.endpoint = endpoint
        self.generation = generation
        self.started = started


class Balancer:
    """Spread requests over ``picker``'s endpoints (a :class:`Picker`, or addresses for
    :class:`PowerOfTwo`), skipping unhealthy ones.

    ``outlier``: an :class:`OutlierDetection` (``True``: the default one; ``False``: none).
    ``breaker``: a :class:`~tailguard.resilience.BreakerConfig` for a circuit breaker per
    endpoint (an open one is skipped; its transitions are emitted as ``CircuitStateChanged``
    named ``"<name>:<address>"``). ``retry``: see :data:`RetrySpec` (default: 3 attempts, each
    on another endpoint, no backoff, within a ``RetryBudget()``).
    """

    __slots__ = ("_now", "breaker", "clock", "hooks", "name", "outlier", "picker", "retry")

    def __init__(
        self,
        picker: Picker | Iterable[Endpoint | str],
        *,
        outlier: OutlierDetection | bool = True,
        breaker: BreakerConfig | None = None,
        retry: RetrySpec = 3,
        name: str = "balancer",
        clock: Clock = SYSTEM_CLOCK,
        hooks: HookRegistry | None = None,
    ) -> None:
        self.picker = picker if isinstance(picker, Picker) else PowerOfTwo(picker, name=name)
        if outlier is True:
            outlier = OutlierDetection()
        self.outlier: OutlierDetection | None = outlier or None
        self.breaker = breaker
        self.name = name
        self.clock = clock
        self._now = clock.now
        self.hooks = default_hooks if hooks is None else hooks
        self.retry = retry_driver(retry, self.hooks)

    @property
    def endpoints(self) -> Sequence[Endpoint]:
        return self.picker.endpoints

    def _publish(self, endpoint: Endpoint, state: BreakerState) -> None:
        name = f"{self.name}:{endpoint.address}"
        while state.pending:
            t = state.pending.pop(0)
            self.hooks.emit(CircuitStateChanged(name, t.old, t.new, t.failure_rate))

    # -- one request -----------------------------------------------------------------------

    def acquire(self, *, key: str | None = None, exclude: Collection[Endpoint] = ()) -> Lease:
        """Pick an endpoint and count a request on it; end it with :meth:`finish` or
        :meth:`cancel`. Raises ``CircuitOpenError`` when every endpoint's breaker is open."""
        now = self._now()
        picker = self.picker
        ep = picker.pick(now=now, key=key, exclude=exclude)
        state = ep.breaker
        if state is None:
            if self.breaker is None:  # no breakers: the common case
                picker.start(ep)
                return Lease(ep, 0, now)
            state = ep.breaker = BreakerState(self.breaker)
        if state.state != "closed":
            admitted = state.permit(now)
            self._publish(ep, state)
            if not admitted:
                raise CircuitOpenError(
                    f"{self.name}:{ep.address}", retry_after=state.retry_after(now)
                )
        picker.start(ep)
        return Lease(ep, state.generation, now)

    def finish(self, lease: Lease, *, ok: bool) -> None:
        """The request ended: record its latency and outcome (``ok``: not a failure)."""
        now = self._now()
        ep = lease.endpoint
        latency = now - lease.started
        picker = self.picker
        picker.finish(ep, latency=latency, now=now, ok=ok)
        state = ep.breaker
        if state is not None:
            slow_after = state.config.slow_call_duration
            slow = slow_after is not None and latency >= slow_after
            state.record(lease.generation, now, not ok, slow)
            if state.pending:
                self._publish(ep, state)
        outlier = self.outlier
        if outlier is not None and outlier.record(ep, ok=ok, now=now, endpoints=picker.endpoints):
            seconds = ep.ejected_until - now
            self.hooks.emit(EndpointEjected(self.name, ep.address, ep.ejections, seconds))

    def count_request(self, started: float | None = None) -> None:
        """One request (not one attempt) went through :meth:`call` without ``Retry`` running:
        the deposit ``Retry.call`` would have made in the ``RetryBudget``. ``started``: when
        the request started on this balancer's clock (seconds), if known."""
        retry = self.retry
        if retry is not None:
            budget = retry.budget
            if budget is not None:
                budget.deposit(started if budget.clock is self.clock else None)

    def cancel(self, lease: Lease) -> None:
        """The request ended without an outcome (cancelled): neither success nor failure."""
        lease.endpoint.in_flight -= 1
        if lease.endpoint.breaker is not None:
            lease.endpoint.breaker.release(lease.generation)

    @contextlib.asynccontextmanager
    async def use(
        self, *, key: str | None = None, exclude: Collection[Endpoint] = ()
    ) -> AsyncIterator[Endpoint]:
        """``async with balancer.use() as endpoint:``; an exception from the block is a
        failure of the endpoint, a cancellation is not."""
        lease = self.acquire(key=key, exclude=exclude)
        try:
            yield lease.endpoint
        except Exception:
            self.finish(lease, ok=False)
            raise
        except BaseException:
            self.cancel(lease)
            raise
        self.finish(lease, ok=True)

    # -- the adapters' loop ----------------------------------------------------------------

    async def call(
        self,
        send: Callable[[Endpoint], Awaitable[R]],
        adapter: Adapter[R],
        *,
        idempotent: bool,
        key: str | None = None,
    ) -> R:
        """``await send(endpoint)`` on a picked endpoint, retried on endpoints not tried yet
        for this request when safe (see the module docstring). A retryable status is returned
        as is once the retries run out; a failure is raised as ``send`` raised it.

        The response returned stays in flight until its body is read to the end or closed
        (``adapter.track``); its latency runs to then and a failure reading the body is a
        failure of the endpoint. A retryable response not returned is judged by its headers
        and discarded, even when the caller is cancelled during a backoff."""
        return await SendCall(self, send, adapter, idempotent, key).run()

    def __repr__(self) -> str:
        return f"Balancer({self.picker!r}, name={self.name!r})"


def build_balancer(
    endpoints: Balancer | Iterable[str | Endpoint],
    *,
    picker: Callable[[list[Endpoint | str]], Picker],
    retry: RetrySpec,
    outlier: OutlierDetection | bool,
    breaker: BreakerConfig | None,
    name: str,
    clock: Clock,
    hooks: HookRegistry | None,
    adapter: str,
) -> Balancer:
    """The balancer an adapter runs on: ``endpoints`` itself when it is one, else a new one;
    either way every endpoint an http(s) URL (``ConfigurationError`` naming ``adapter``)."""
    balancer = endpoints if isinstance(endpoints, Balancer) else Balancer(
        picker(list(endpoints)),
        outlier=outlier,
        breaker=breaker,
        retry=retry,
        name=name,
        clock=clock,
        hooks=hooks,
    )  # fmt: skip
    for endpoint in balancer.endpoints:
        check_address(f"{adapter}.endpoints", endpoint.address)
    return balancer
