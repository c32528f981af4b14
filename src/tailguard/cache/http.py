"""``HttpCaching``: the L4 tier, as response headers that browsers and CDNs act on.

Pure ASGI middleware (``HttpCaching(app, max_age=60, ...)``, or ``app.add_middleware``). For a
successful ``GET``/``HEAD`` it adds:

* ``Cache-Control: public, max-age=..., s-maxage=..., stale-while-revalidate=...,
  stale-if-error=...`` (unless the app set its own ``Cache-Control``);
* a strong ``ETag`` (a BLAKE2b digest of the body), and answers ``304 Not Modified`` with no
  body when the request's ``If-None-Match`` names it;
* ``Surrogate-Key`` with the tags ``surrogate_keys(scope)`` gives, so that a CDN (Fastly,
  Varnish xkey) can purge every response about one product with one request.

To compute the ETag the body is buffered, up to ``max_etag_bytes``; a larger or streamed
response passes through untouched apart from its headers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from tailguard.errors import ConfigurationError

__all__ = ["HttpCaching"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    """RFC 9110 If-None-Match: ``*`` or a list of tags, weak ones compared weakly."""
    if if_none_match.strip() == b"*":
        return True
    tags = {t.strip().removeprefix(b"W/") for t in if_none_match.split(b",")}
    return etag.removeprefix(b"W/") in tags


class HttpCaching:
    """Add caching headers, ETags and 304s to an ASGI app's successful GET/HEAD responses.

    Durations are seconds. ``private=True`` writes ``private`` instead of ``public`` (and
    drops ``s-maxage``): for per-user responses that a CDN must not share.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_age: int = 60,
        s_maxage: int | None = None,
        stale_while_revalidate: int | None = None,
        stale_if_error: int | None = None,
        private: bool = False,
        etag: bool = True,
        surrogate_keys: Callable[[Scope], Iterable[str]] | None = None,
        max_etag_bytes: int = 1024 * 1024,
    ) -> None:
        for setting, value in (
            ("max_age", max_age),
            ("s_maxage", s_maxage),
            ("stale_while_revalidate", stale_while_revalidate),
            ("stale_if_error", stale_if_error),
        ):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ConfigurationError(f"HttpCaching.{setting}", value, "whole seconds >= 0")
        self.app = app
        parts = ["private" if private else "public", f"max-age={max_age}"]
        if s_maxage is not None and not private:
            parts.append(f"s-maxage={s_maxage}")
        if stale_while_revalidate is not None:
            parts.append(f"stale-while-revalidate={stale_while_revalidate}")
        if stale_if_error is not None:
            parts.append(f"stale-if-error={stale_if_error}")
        self.cache_control = ", ".join(parts).encode()
        self.private_control = f"private, max-age={max_age}".encode()
        self.etag = etag
        self.surrogate_keys = surrogate_keys
        self.max_etag_bytes = max_etag_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        if_none_match = next(
            (v for k, v in scope.get("headers", ()) if k == b"if-none-match"), None
        )
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        passthrough = False

        async def send_wrapper(message: Message) -> None:
            nonlocal start, size, passthrough
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    passthrough = True
                    await send(message)
                    return
                start = self._decorate(message, scope)
                if not self.etag or scope["method"] == "HEAD":  # HEAD has no body to hash
                    passthrough = True
                    await send(start)
                return
            if message["type"] != "http.response.body" or passthrough:
                await send(message)
                return
            assert start is not None
            body = message.get("body", b"")
            chunks.append(body)
            size += len(body)
            more = message.get("more_body", False)
            # A streamed response (more to come in the first message) or one too big to hash
            # goes on as it comes: never hold an event stream back to compute an ETag.
            if (more and len(chunks) == 1) or size > self.max_etag_bytes:
                passthrough = True
                await send(start)
                await send(
                    {"type": "http.response.body", "body": b"".join(chunks), "more_body": more}
                )
                return
            if more:
                return
            await self._finish(start, b"".join(chunks), if_none_match, send)

        await self.app(scope, receive, send_wrapper)

    def _decorate(self, start: Message, scope: Scope) -> Message:
        headers = list(start.get("headers", ()))
        names = {k.lower() for k, _ in headers}
        if b"cache-control" not in names:
            personal = b"set-cookie" in names or any(
                k == b"authorization" for k, _ in scope.get("headers", ())
            )  # never let a shared cache (a CDN) keep what belongs to one user
            headers.append(
                (b"cache-control", self.private_control if personal else self.cache_control)
            )
        if self.surrogate_keys is not None and b"surrogate-key" not in names:
            tags = " ".join(self.surrogate_keys(scope))
            if tags:
                headers.append((b"surrogate-key", tags.encode()))
        return {**start, "headers": headers}

    async def _finish(
        self, start: Message, body: bytes, if_none_match: bytes | None, send: Send
    ) -> None:
        headers = list(start["headers"])
        etag = next((v for k, v in headers if k.lower() == b"etag"), None)
        if etag is None:
            etag = _etag(body)
            headers.append((b"etag", etag))
        if if_none_match is not None and _matches(if_none_match, etag):
            kept = [
                (k, v)
                for k, v in headers
                if k.lower() not in (b"content-length", b"content-type", b"content-encoding")
            ]
            await send({"type": "http.response.start", "status": 304, "headers": kept})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
