"""``CacheKey``: namespaced, versioned keys that user input cannot make collide.

``CacheKey("api", version="v2").build("user", 42, "profile", date="2024-01-15")`` gives
``api:v2:user:42:profile:2024-01-15``, the guide's layout. Inside a part, ``\\`` and ``:`` are
escaped (``\\\\`` and ``\\:``), so the parts ``("user:1",)`` and ``("user", "1")`` give
different keys. Bumping ``version`` moves a whole namespace to a new prefix: the old keys are
never read again and expire on their own, with no scan of Redis.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from tailguard.errors import ConfigurationError, KeyTooLong

__all__ = ["MAX_KEY_BYTES", "SEPARATOR", "CacheKey", "escape_part"]

SEPARATOR: Final = ":"
MAX_KEY_BYTES: Final = 1024  # bytes: Redis allows 512 MB, but long keys cost memory and time


def escape_part(part: object) -> str:
    """One key part as text, with the escape and separator characters escaped."""
    if part is None:
        raise TypeError("a cache key part cannot be None (it would read as the text 'None')")
    if isinstance(part, dt.date):  # datetimes too
        text = part.isoformat()
    elif isinstance(part, bytes):
        text = part.decode("utf-8", "backslashreplace")
    else:
        text = str(part)
    if "\\" in text or SEPARATOR in text:
        text = text.replace("\\", "\\\\").replace(SEPARATOR, "\\" + SEPARATOR)
    return text


class CacheKey:
    """A key builder for one ``namespace`` at one ``version``; keys at most ``max_bytes`` long.

    ``prefix`` (``"api:v2:"``) is what every key of this builder starts with: the unit that a
    version bump retires and that cross-instance invalidation subscribes to.
    """

    __slots__ = ("max_bytes", "namespace", "prefix", "version")

    def __init__(
        self, namespace: str, *, version: str | int = "v1", max_bytes: int = MAX_KEY_BYTES
    ) -> None:
        for setting, value in (("namespace", namespace), ("version", str(version))):
            if not value or SEPARATOR in value or "\\" in value:
                raise ConfigurationError(
                    f"CacheKey.{setting}", value, f"non-empty text without {SEPARATOR!r} or '\\'"
                )
        if max_bytes < 1:
            raise ConfigurationError("CacheKey.max_bytes", max_bytes, "bytes >= 1")
        self.namespace = namespace
        self.version = str(version)
        self.max_bytes = max_bytes
        self.prefix = f"{namespace}{SEPARATOR}{self.version}{SEPARATOR}"

    def build(self, *parts: object, date: dt.date | str | None = None) -> str:
        """``prefix`` + the escaped ``parts`` (+ ``date`` as the last part), joined by ``:``."""
        if not parts:
            raise TypeError("CacheKey.build() needs at least one part")
        if date is not None:
            parts = (*parts, date)
        key = self.prefix + SEPARATOR.join(map(escape_part, parts))
        size = len(key.encode())
        if size > self.max_bytes:
            raise KeyTooLong(key, size, self.max_bytes)
        return key

    def bump(self, version: str | int) -> CacheKey:
        """The same namespace at another ``version`` (the old keys are retired)."""
        return CacheKey(self.namespace, version=version, max_bytes=self.max_bytes)

    def __repr__(self) -> str:
        return f"CacheKey({self.namespace!r}, version={self.version!r})"
