"""``RateLimitMiddleware``: pure ASGI rate limiting by client IP, API key or user.

::

    app.add_middleware(
        RateLimitMiddleware,
        limits={"/login": GCRA("5/minute"), "/products/{id}": GCRA("100/minute"),
                "*": GCRA("1000/minute")},
        identify="ip", trusted_proxies=["10.0.0.0/8"],
    )

A request is matched to the first route template that fits its path (``{name}`` matches one
path segment; ``*`` is the default), keyed by template and identity, and checked. Refused: a
``429`` with ``Retry-After`` and the IETF ``RateLimit`` / ``RateLimit-Policy`` headers
(draft-ietf-httpapi-ratelimit-headers); admitted: the same headers on the response.

When the limiter's storage fails, a circuit breaker decides in one fast failure, and then
without trying, until it recovers: ``fail_open=True`` (the default) lets requests through,
``False`` answers ``503``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from typing import Any, Literal

from tailguard.errors import ConfigurationError, Rejected
from tailguard.ratelimit.algorithms import Algorithm, Decision
from tailguard.resilience import CircuitBreaker, Pipeline, Timeout

__all__ = ["RateLimitMiddleware", "client_ip", "rate_limit_headers"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Identify = Literal["ip", "api_key"] | Callable[[Scope], str | None]

_log = logging.getLogger("tailguard.ratelimit")
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _header(scope: Scope, name: bytes) -> str | None:
    """The header's value; several lines of it are joined with ", " (RFC 9110 5.3)."""
    values = [bytes(v).decode("latin-1") for k, v in scope.get("headers", ()) if k == name]
    return ", ".join(values) if values else None


def _bare_ip(text: str) -> str:
    """An address without its port or brackets: ``[2001:db8::1]:443`` -> ``2001:db8::1``."""
    text = text.strip()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    if text.count(":") == 1:  # IPv4 with a port (a bare IPv6 address has several colons)
        return text.split(":", 1)[0]
    return text


def client_ip(scope: Scope, trusted: Iterable[_Network] = ()) -> str | None:
    """The client's address: the TCP peer, or, when the peer is a trusted proxy, the rightmost
    address in ``X-Forwarded-For`` that is not itself a trusted proxy."""
    peer = scope.get("client")
    address: str | None = str(peer[0]) if peer else None
    networks = list(trusted)
    if address is None or not networks:
        return address

    def is_trusted(text: str) -> bool:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    if not is_trusted(address):
        return address
    forwarded = _header(scope, b"x-forwarded-for")
    if not forwarded:
        return address
    for hop in reversed([_bare_ip(h) for h in forwarded.split(",") if h.strip()]):
        if not is_trusted(hop):
            return hop
        address = hop
    return address


def _compile(template: str) -> re.Pattern[str]:
    """``/products/{id}`` -> a pattern for one path segment per ``{name}``; a trailing slash
    is optional, so that ``/login/`` cannot slip past the limit on ``/login``."""
    parts = re.split(r"(\{[^/{}]+\})", template.rstrip("/") or "/")
    pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{pattern}/?$")


class RateLimitMiddleware:
    """Rate-limit an ASGI app by route template and identity (see the module docstring).

    ``identify``: ``"ip"`` (default), ``"api_key"`` (the ``api_key_header``), or a function of
    the ASGI scope returning the identity (None: not limited). ``trusted_proxies``: networks
    whose ``X-Forwarded-For`` is believed. ``breaker``: the storage's circuit breaker (default:
    open after 1 failure, probe after 5 s); ``storage_timeout`` (seconds) bounds one check.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Mapping[str, Algorithm],
        identify: Identify = "ip",
        api_key_header: str = "x-api-key",
        trusted_proxies: Iterable[str] = (),
        fail_open: bool = True,
        breaker: CircuitBreaker | None = None,
        storage_timeout: float | None = 0.25,
    ) -> None:
        if not limits:
            raise ConfigurationError("RateLimitMiddleware.limits", limits, "at least one route")
        for template, limiter in limits.items():
            if not isinstance(limiter, Algorithm):
                raise ConfigurationError(f"limits[{template!r}]", limiter, "a rate limiter")
        if identify not in ("ip", "api_key") and not callable(identify):
            raise ConfigurationError(
                "RateLimitMiddleware.identify", identify, '"ip", "api_key" or a function'
            )
        self.app = app
        self._routes = [(t, _compile(t), lim) for t, lim in limits.items() if t != "*"]
        self._default = limits.get("*")
        self._identify = identify
        self._api_key_header = api_key_header.lower().encode()
        try:
            self._trusted = [ipaddress.ip_network(n, strict=False) for n in trusted_proxies]
        except ValueError as exc:
            raise ConfigurationError(
                "RateLimitMiddleware.trusted_proxies", list(trusted_proxies), "IPs or networks"
            ) from exc
        self.fail_open = fail_open
        self.breaker = breaker or CircuitBreaker(
            "ratelimit-storage", failure_threshold=1, recovery_time=5.0
        )
        # The first failure is fast too: a client retrying a dead server is cut short.
        self._guard = (
            Pipeline(self.breaker, Timeout(storage_timeout, name="ratelimit-storage"))
            if storage_timeout is not None
            else Pipeline(self.breaker)
        )

    def _route(self, path: str) -> tuple[str, Algorithm] | None:
        for template, pattern, limiter in self._routes:
            if pattern.match(path):
                return template, limiter
        return ("*", self._default) if self._default is not None else None

    def _who(self, scope: Scope) -> str | None:
        if self._identify == "ip":
            return client_ip(scope, self._trusted)
        if self._identify == "api_key":
            return _header(scope, self._api_key_header)
        return self._identify(scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        route = self._route(scope.get("path", ""))
        who = self._who(scope) if route is not None else None
        if route is None or who is None:
            await self.app(scope, receive, send)
            return
        template, limiter = route
        try:
            decision = await self._guard.call(limiter.check, f"{template}|{who}")
        except Rejected as exc:  # the storage's breaker is open: decided without trying
            await self._unavailable(scope, receive, send, exc.retry_after)
            return
        except Exception as exc:
            _log.warning("rate limit storage failed: %s", exc)
            await self._unavailable(scope, receive, send, None)
            return
        headers = _rate_headers(template, limiter, decision)
        if not decision.allowed:
            if scope["type"] == "websocket":  # refuse the handshake (a 403 to the client)
                await send({"type": "websocket.close", "code": 1008})
                return
            await _respond(send, 429, {"detail": "rate limit exceeded",
                                       "retry_after": decision.retry_after}, headers)  # fmt: skip
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _unavailable(
        self, scope: Scope, receive: Receive, send: Send, retry_after: float | None
    ) -> None:
        if self.fail_open:
            await self.app(scope, receive, send)
            return
        headers = [] if retry_after is None else [(b"retry-after", _seconds(retry_after))]
        await _respond(send, 503, {"detail": "rate limiting unavailable"}, headers)


def _sf_string(text: str) -> str:
    """``text`` as a structured-field string (RFC 8941): printable ASCII only, quoted."""
    safe = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '"' + safe.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _seconds(value: float) -> bytes:
    return str(max(0, math.ceil(value))).encode()


def rate_limit_headers(name: str, limiter: Algorithm, decision: Decision) -> list[tuple[str, str]]:
    """The ``RateLimit-Policy`` and ``RateLimit`` headers (and ``Retry-After`` when refused) for
    ``decision``, as (name, value) pairs: for a limit checked outside the middleware (in a
    framework dependency keyed by the signed-in user), answering as the middleware does.
    ``name`` names the policy in the headers (the middleware uses the route template)."""
    return [(k.decode(), v.decode()) for k, v in _rate_headers(name, limiter, decision)]


def _rate_headers(
    template: str, limiter: Algorithm, decision: Decision
) -> list[tuple[bytes, bytes]]:
    rate = limiter.rates[decision.policy]
    name = _sf_string(template)
    policy = f"{name};q={rate.limit};w={math.ceil(rate.period)}"
    reset = decision.retry_after if not decision.allowed else decision.reset_after
    state = f"{name};r={decision.remaining};t={math.ceil(reset)}"
    headers = [(b"ratelimit-policy", policy.encode()), (b"ratelimit", state.encode())]
    if not decision.allowed:
        headers.append((b"retry-after", _seconds(decision.retry_after)))
    return headers


async def _respond(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
