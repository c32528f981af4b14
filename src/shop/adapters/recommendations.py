"""The recommendation service client: aiohttp through ``BalancedSession`` over its replicas."""

from __future__ import annotations

from typing import Any, Protocol

from shop.adapters._health import check_health

__all__ = ["HttpRecommender", "Recommender", "RecommenderUnavailable"]


class RecommenderUnavailable(Exception):
    """The recommender failed or answered something unusable."""


class Recommender(Protocol):
    """Product ids recommended for a user."""

    async def for_user(self, user_id: int, limit: int) -> list[int]: ...

    async def ping(self) -> None: ...


class HttpRecommender:
    """``GET /recommendations/{user_id}`` on a replica the balancer picks (PowerOfTwo by
    default, so a slow replica gets little traffic); a GET is retried on another replica."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def for_user(self, user_id: int, limit: int) -> list[int]:
        """Up to ``limit`` product ids; RecommenderUnavailable when no replica answered well."""
        import aiohttp

        try:
            response = await self.session.get(
                f"/recommendations/{user_id}", params={"limit": str(limit)}
            )
            async with response:
                if response.status != 200:
                    raise RecommenderUnavailable(f"recommender answered {response.status}")
                payload = await response.json(content_type=None)
        except (aiohttp.ClientError, ValueError) as exc:
            raise RecommenderUnavailable(f"recommender: {exc!r}") from exc
        try:
            return [int(pid) for pid in payload["product_ids"]][:limit]
        except (KeyError, TypeError, ValueError) as exc:
            raise RecommenderUnavailable(f"recommender sent {payload!r}") from exc

    async def ping(self) -> None:
        """Raise RecommenderUnavailable unless a replica answers its health check."""
        await check_health(self.session, "recommender", RecommenderUnavailable)
