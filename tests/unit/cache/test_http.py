"""HttpCaching: Cache-Control, strong ETags, 304 on If-None-Match, Surrogate-Key."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from tailguard.cache import HttpCaching
from tailguard.errors import ConfigurationError


def make_app() -> FastAPI:
    app = FastAPI()

    @app.api_route("/products/{pid}", methods=["GET", "HEAD"])
    async def product(pid: int) -> dict[str, Any]:
        return {"id": pid, "name": f"product {pid}"}

    @app.get("/private")
    async def private() -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"me": 1}, headers={"cache-control": "no-store"})

    @app.get("/boom")
    async def boom() -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": "x"}, status_code=500)

    @app.post("/products")
    async def create() -> dict[str, int]:
        return {"id": 1}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> Any:
            for _ in range(4):
                yield b"x" * 1000

        return StreamingResponse(chunks(), media_type="text/plain")

    return app


def client(**kw: Any) -> httpx.AsyncClient:
    wrapped = HttpCaching(make_app(), **kw)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t")


async def test_cache_control_etag_and_surrogate_keys() -> None:
    def tags(scope: dict[str, Any]) -> list[str]:
        return ["products", f"product-{scope['path'].rsplit('/', 1)[-1]}"]

    async with client(
        max_age=60, s_maxage=300, stale_while_revalidate=30, stale_if_error=600,
        surrogate_keys=tags,
    ) as c:  # fmt: skip
        r = await c.get("/products/7")
    assert r.status_code == 200
    assert json.loads(r.content) == {"id": 7, "name": "product 7"}
    assert r.headers["cache-control"] == (
        "public, max-age=60, s-maxage=300, stale-while-revalidate=30, stale-if-error=600"
    )
    assert r.headers["etag"].startswith('"')
    assert len(r.headers["etag"]) == 34
    assert r.headers["surrogate-key"] == "products product-7"


async def test_if_none_match_gets_a_304_without_a_body() -> None:
    async with client() as c:
        first = await c.get("/products/1")
        etag = first.headers["etag"]
        again = await c.get("/products/1", headers={"if-none-match": etag})
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert "cache-control" in again.headers
        listed = await c.get("/products/1", headers={"if-none-match": f'"x", W/{etag}'})
        assert listed.status_code == 304
        star = await c.get("/products/1", headers={"if-none-match": "*"})
        assert star.status_code == 304
        other = await c.get("/products/2", headers={"if-none-match": etag})
        assert other.status_code == 200
        assert other.headers["etag"] != etag


async def test_the_apps_own_cache_control_errors_and_posts_are_left_alone() -> None:
    async with client() as c:
        private = await c.get("/private")
        assert private.headers["cache-control"] == "no-store"
        boom = await c.get("/boom")
        assert boom.status_code == 500
        assert "etag" not in boom.headers
        assert "cache-control" not in boom.headers
        post = await c.post("/products")
        assert "cache-control" not in post.headers


async def test_private_responses_and_large_streams() -> None:
    async with client(private=True, s_maxage=300, max_etag_bytes=1500) as c:
        r = await c.get("/stream")
    assert r.content == b"x" * 4000  # streamed through, no ETag over the limit
    assert "etag" not in r.headers
    assert r.headers["cache-control"] == "private, max-age=60"


async def test_head_gets_headers_without_a_body_etag() -> None:
    async with client() as c:
        r = await c.head("/products/3")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=60"
    assert "etag" not in r.headers  # no body here to hash: it would not match GET's


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="max_age"):
        HttpCaching(make_app(), max_age=-1)
