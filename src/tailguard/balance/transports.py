"""``BalancedTransport``: an ``httpx.AsyncBaseTransport`` that spreads requests over base URLs.

::

    transport = BalancedTransport(["http://10.0.0.7:8000", "http://10.0.0.8:8000"])
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
        response = await client.get("/products/42")    # host rewritten to the picked endpoint

The request's scheme, host and port are replaced by the picked endpoint's (its path and query
are kept; a base URL with a path prefixes it). Each endpoint gets its own inner transport
(``transport()``, default ``httpx.AsyncHTTPTransport()``), so connections are pooled per
endpoint. The shared logic (picking, in-flight and latency, health, breakers, retries on another
endpoint) is :class:`~tailguard.balance.Balancer`'s; this module only speaks httpx: which errors
prove a request never left (``ConnectError``, ``ConnectTimeout``, ``PoolTimeout``), which ones
mean it may have been sent (any other ``TransportError``). A request counts as in flight until
its response body has been read to the end or the response is closed (``client.get()`` reads
it; with ``client.stream()`` it is the ``async with`` block's end or ``response.aclose()``); its
latency is the time to then (seconds), and an error while reading the body is a failure of the
endpoint (a cancellation is neither success nor failure). A response left open is never
counted as finished, as its connection is never returned to the pool.

This is the only module of ``tailguard.balance`` that imports httpx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterable
from typing import Literal

import httpx

from tailguard._clock import SYSTEM_CLOCK, Clock
from tailguard.balance._attempts import Outcome, check_address
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

__all__ = ["BalancedTransport"]


class _Tracked(httpx.AsyncByteStream):
    """A response body that ends its lease once: read to its end, failed, or closed."""

    def __init__(self, stream: httpx.AsyncByteStream, outcome: Outcome) -> None:
        self._stream = stream
        self._outcome = outcome

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except GeneratorExit:
            raise  # abandoned part way: aclose() ends it
        except BaseException as exc:  # a failure, or a cancellation (neither)
            self._outcome.end(exc)
            raise
        self._outcome.end()

    async def aclose(self) -> None:
        self._outcome.end()
        await self._stream.aclose()


class BalancedTransport(httpx.AsyncBaseTransport):
    """Balance an ``httpx.AsyncClient`` over ``endpoints`` (base URLs, or a ready
    :class:`Balancer` shared with other adapters; then ``picker``, ``retry``, ``outlier``,
    ``breaker``, ``name``, ``clock`` and ``hooks`` are its own and ignored here).

    ``picker``: a picker class or factory over the endpoints (default :class:`PowerOfTwo`).
    ``retry_statuses``: responses retried on another endpoint (idempotent requests only);
    ``failure_statuses``: responses counted as failures by health and breakers (5xx).
    ``key``: ``key(request)`` for :class:`IPHash` (a client IP, a user id).
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
        key: Callable[[httpx.Request], str | None] | None = None,
        transport: Callable[[], httpx.AsyncBaseTransport] = httpx.AsyncHTTPTransport,
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
            adapter="BalancedTransport",
        )
        self.retry_statuses = frozenset(retry_statuses)
        self.failure_statuses = frozenset(failure_statuses)
        self._key = key
        self._factory = transport
        self._inner: dict[str, tuple[httpx.URL, httpx.AsyncBaseTransport]] = {}

    # -- the Adapter protocol --------------------------------------------------------------

    def status(self, result: httpx.Response) -> int:
        return result.status_code

    def error_kind(self, exc: Exception) -> Literal["unsent", "sent"] | None:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
            return "unsent"
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            return None  # our request was wrong, not the endpoint
        if isinstance(exc, httpx.TransportError):
            return "sent"
        return None

    async def discard(self, result: httpx.Response) -> None:
        await result.aclose()

    def body_done(self, result: httpx.Response) -> bool:
        stream = result.stream
        return isinstance(stream, httpx.ByteStream) or not isinstance(stream, httpx.AsyncByteStream)

    def track(self, result: httpx.Response, outcome: Outcome) -> None:
        stream = result.stream
        if isinstance(stream, httpx.ByteStream) or not isinstance(stream, httpx.AsyncByteStream):
            outcome.end()  # the body is already in memory
        else:
            result.stream = _Tracked(stream, outcome)

    # -- httpx -----------------------------------------------------------------------------

    def _endpoint(self, endpoint: Endpoint) -> tuple[httpx.URL, httpx.AsyncBaseTransport]:
        found = self._inner.get(endpoint.address)
        if found is None:  # an endpoint added since: checked here
            url = httpx.URL(check_address("BalancedTransport.endpoints", endpoint.address))
            found = self._inner[endpoint.address] = (url, self._factory())
        return found

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # A streamed body can be sent once; a bytes body (or one already read) again.
        replayable = isinstance(request.stream, httpx.ByteStream)
        idempotent = replayable and is_idempotent(request.method, request.headers.keys())
        key = self._key(request) if self._key is not None else None

        async def send(endpoint: Endpoint) -> httpx.Response:
            base, inner = self._endpoint(endpoint)
            prefix = base.raw_path.rstrip(b"/")
            url = request.url.copy_with(
                scheme=base.scheme,
                host=base.host,
                port=base.port,
                raw_path=prefix + request.url.raw_path if prefix else request.url.raw_path,
            )
            headers = request.headers.copy()
            headers["Host"] = base.netloc.decode("ascii")
            attempt = httpx.Request(
                request.method,
                url,
                headers=headers,
                stream=request.stream,
                extensions=request.extensions,
            )
            return await inner.handle_async_request(attempt)

        return await self.balancer.call(send, self, idempotent=idempotent, key=key)

    async def aclose(self) -> None:
        inner, self._inner = self._inner, {}
        for _, transport in inner.values():
            await transport.aclose()

    def __repr__(self) -> str:
        return f"BalancedTransport({self.balancer!r})"
