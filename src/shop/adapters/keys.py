"""Every Redis key a shop writes starts with one of :func:`namespace_prefixes`: what to delete
to remove a namespace (tests, the demo's throwaway shops)."""

from __future__ import annotations

__all__ = ["namespace_prefixes"]


def namespace_prefixes(namespace: str) -> tuple[str, ...]:
    """The key prefixes of ``namespace``: ``ns:`` (cache, carts, rate limits), ``{ns}`` (the
    event stream and its dead letters), ``{ns:`` (the sales analytics)."""
    return (f"{namespace}:", "{" + namespace + "}", "{" + namespace + ":")
