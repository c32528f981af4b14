"""``BalancedSession``: an ``aiohttp.ClientSession`` spread over base URLs.

::

    async with BalancedSession(["http://10.0.0.7:8000", "http://10.0.0.8:8000"]) as session:
        response = await session.get("/products/42")
        body = await response.read()

The same :class:`~tailguard.balance.Balancer` as the httpx transport does the picking, the
bookkeeping, health, breakers and retries; this module only speaks aiohttp: a
``ClientConnectorError`` or ``ConnectionTimeoutError`` proves the request never left, any other
``ClientError`` or ``TimeoutError`` means it may have been sent. httpx is much slower under
concurrency (encode/httpx#3215; see ``bench/balance.py``), so a busy service should prefer this
adapter. A request counts as in flight until its response body has been received to the end
(read or not) or the response is released or closed (``async with response``,
``response.release()``); its latency is the time to then (seconds). A body that arrived with
the headers (a small one, the common case) ends the request at once. Otherwise the adapter
watches the body with ``response.content.on_eof`` and wraps that response's ``release`` and
``close`` until it ends: an error already set on the body when it is released (the server went
away mid-body) is a failure of the endpoint, a release while the task is being cancelled is
neither success nor failure. A response never released is never counted as finished, as its
connection is never returned to the pool.

Cost: the common request (one attempt, no retry, no failure) runs inline in :meth:`request`,
without a :class:`~tailguard.balance._attempts.Call` or the ``Retry`` driver, and leaves no
reference cycle behind, so aiohttp's per-request objects are freed by reference counting
(``bench/balance.py`` measures it against bare aiohttp).

This is the only module of ``tailguard.balance`` that imports aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable
from types import TracebackType
from typing import Any, Literal

import aiohttp
from multidict import CIMultiDict

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.balance._attempts import IDEMPOTENT_METHODS, Call, Outcome
from tailguard.balance._endpoint import Endpoint
from tailguard.balance.balancer import (
    DEFAULT_FAILURE_STATUSES,
    DEFAULT_RETRY_STATUSES,
    Balancer,
    RetrySpec,
    build_balancer,
    is_idempotent,
)
from tailguard.balance.health import OutlierDetection
from tailguard.balance.pickers import Picker, PowerOfTwo
from tailguard.events import HookRegistry
from tailguard.resilience import BreakerConfig
from tailguard.resilience.timeout import has_deadline

__all__ = ["BalancedSession"]

_REPLAYABLE = (bytes, bytearray, str, dict, list, tuple)


class _BodyWatch:
    """Ends a streamed response's :class:`Outcome` when its body ends, or when the response is
    released or closed first (it wraps that response's ``release`` and ``close``).

    Once the outcome has ended the wrappers are taken off again, so the response no longer
    refers to this object: aiohttp's own per-request objects are freed by reference counting,
    and a cycle left behind by every request would hand each one to the cyclic garbage
    collector instead (a full collection of a busy heap costs milliseconds).
    """

    __slots__ = ("outcome", "response")

    def __init__(self, response: aiohttp.ClientResponse, outcome: Outcome) -> None:
        self.response = response
        self.outcome = outcome
        response.release = self.release  # type: ignore[method-assign]
        response.close = self.close  # type: ignore[method-assign]
        response.content.on_eof(self.eof)

    def eof(self) -> None:
        self.outcome.end()
        self._unwrap()

    def _unwrap(self) -> None:
        attributes = vars(self.response)
        attributes.pop("release", None)
        attributes.pop("close", None)

    def settle(self) -> None:
        """The response is released or closed: end the outcome as its body and task say."""
        outcome = self.outcome
        if not outcome.done:
            error = self.response.content.exception()
            if error is not None:  # the body failed before it ended
                outcome.end(error)
            else:
                try:
                    task = asyncio.current_task()
                except RuntimeError:  # released outside a loop (garbage collection)
                    task = None
                if task is not None and task.cancelling():
                    outcome.end(asyncio.CancelledError())
                else:
                    outcome.end()  # released or closed with the body unread, or read in part
        self._unwrap()

    def release(self) -> Any:
        self.settle()
        return self.response.release()  # the class's own, now that the wrapper is off

    def close(self) -> None:
        self.settle()
        self.response.close()


class _Request(Call[aiohttp.ClientResponse]):
    """One ``BalancedSession.request``: ``path`` appended to each picked endpoint's URL."""

    __slots__ = ("kwargs", "method", "owner", "path")

    def __init__(
        self,
        owner: BalancedSession,
        method: str,
        path: str,
        kwargs: dict[str, Any],
        idempotent: bool,
        key: str | None,
    ) -> None:
        super().__init__(owner.balancer, owner, idempotent, key)
        self.owner = owner
        self.method = method
        self.path = path
        self.kwargs = kwargs

    def send(self, endpoint: Endpoint) -> Awaitable[aiohttp.ClientResponse]:
        url = endpoint.address.rstrip("/") + self.path
        return self.owner.session.request(self.method, url, **self.kwargs)


class BalancedSession:
    """Balance aiohttp requests over ``endpoints`` (base URLs, or a ready :class:`Balancer`;
    the other settings are as for :class:`~tailguard.balance.BalancedTransport`).

    ``session``: an ``aiohttp.ClientSession`` to send through (it stays the caller's to
    close); by default one is created on first use and closed by :meth:`close`. Paths are
    appended to the picked base URL. ``key=`` on a request is the :class:`IPHash` key.
    """

    def __init__(
        self,
        endpoints: Balancer | Iterable[str | Endpoint],
        *,
        picker: Callable[[list[Endpoint | str]], Picker] = PowerOfTwo,
        retry: RetrySpec = 3,
        outlier: OutlierDetection | bool = True,
        breaker: BreakerConfig | None = None,
        retry_statuses: Collection[int] = DEFAULT_RETRY_STATUSES,
        failure_statuses: Collection[int] = DEFAULT_FAILURE_STATUSES,
        session: aiohttp.ClientSession | None = None,
        name: str = "balancer",
        clock: Clock = SYSTEM_CLOCK,
        hooks: HookRegistry | None = None,
    ) -> None:
        self.balancer = build_balancer(
            endpoints,
            picker=picker,
            retry=retry,
            outlier=outlier,
            breaker=breaker,
            name=name,
            clock=clock,
            hooks=hooks,
            adapter="BalancedSession",
        )
        self.retry_statuses = frozenset(retry_statuses)
        self.failure_statuses = frozenset(failure_statuses)
        self._session = session
        self._owned = session is None

    # -- the Adapter protocol --------------------------------------------------------------

    def status(self, result: aiohttp.ClientResponse) -> int:
        return result.status

    def error_kind(self, exc: Exception) -> Literal["unsent", "sent"] | None:
        if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
            return "unsent"
        if isinstance(exc, aiohttp.InvalidURL | aiohttp.ClientResponseError):
            return None  # a bad URL, or raise_for_status: not the endpoint's failure
        if isinstance(exc, aiohttp.ClientError | TimeoutError):
            return "sent"
        return None

    async def discard(self, result: aiohttp.ClientResponse) -> None:
        result.release()

    def body_done(self, result: aiohttp.ClientResponse) -> bool:
        return result.content.is_eof()  # the whole body came with the headers: common

    def track(self, result: aiohttp.ClientResponse, outcome: Outcome) -> None:
        if self.body_done(result):
            outcome.end()
        else:
            _BodyWatch(result, outcome)

    # -- aiohttp ---------------------------------------------------------------------------

    @property
    def session(self) -> aiohttp.ClientSession:
        """The underlying session (created on first use when none was given)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(
        self, method: str, path: str, *, key: str | None = None, **kwargs: Any
    ) -> aiohttp.ClientResponse:
        """``method path`` on a picked endpoint; ``kwargs`` go to ``ClientSession.request``.
        The response is the caller's to read or release, as with aiohttp."""
        idempotent = method in IDEMPOTENT_METHODS and not kwargs  # a plain GET: at once
        if not idempotent:
            data = kwargs.get("data")
            idempotent = data is None or isinstance(data, _REPLAYABLE)  # else sent only once
            if idempotent and method.upper() not in IDEMPOTENT_METHODS:
                headers = kwargs.get("headers")  # a mapping or (name, value) pairs
                idempotent = bool(headers) and is_idempotent(method, CIMultiDict(headers).keys())
        balancer = self.balancer
        if balancer.retry is not None and has_deadline():
            return await _Request(self, method, path, kwargs, idempotent, key).run()
        # The first attempt, as Call.run makes it, inlined for the common case: a response
        # that is neither retried nor failed costs no Call (a few microseconds of Python per
        # request against aiohttp's tens: see bench/balance.py). Anything else is handed to one.
        try:
            lease = balancer.acquire(key=key)
        except BaseException:  # every breaker open: still a request
            balancer.count_request()
            raise
        url = lease.endpoint.address.rstrip("/") + path
        try:
            response = await self.session.request(method, url, **kwargs)
        except BaseException as exc:
            call = _Request(self, method, path, kwargs, idempotent, key)
            return await call.after_error(lease, exc)
        status = response.status
        if not (idempotent and status in self.retry_statuses):
            ok = status not in self.failure_statuses
            if response.content.is_eof():  # the whole body came with the headers
                balancer.finish(lease, ok=ok)
            else:  # in flight until its body ends or the response is released
                _BodyWatch(response, Outcome(balancer, lease, self, ok))
            balancer.count_request(lease.started)
            return response
        call = _Request(self, method, path, kwargs, idempotent, key)
        return await call.after(lease, response)  # a retryable status: held, retried

    # The verbs return request()'s coroutine rather than await it in one of their own, as
    # aiohttp's do: one frame fewer on every resumption of the request.

    def get(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, aiohttp.ClientResponse]:
        """``await session.get(path)``: :meth:`request` with ``GET``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, aiohttp.ClientResponse]:
        """``await session.post(path)``: :meth:`request` with ``POST``."""
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, aiohttp.ClientResponse]:
        """``await session.put(path)``: :meth:`request` with ``PUT``."""
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Coroutine[Any, Any, aiohttp.ClientResponse]:
        """``await session.delete(path)``: :meth:`request` with ``DELETE``."""
        return self.request("DELETE", path, **kwargs)

    async def close(self) -> None:
        """Close the session if this object created it."""
        if self._owned and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    aclose = close

    async def __aenter__(self) -> BalancedSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"BalancedSession({self.balancer!r})"
