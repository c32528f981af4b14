"""Process-wide switches, flipped by :mod:`tailguard.testing` (never needed in production)."""

from __future__ import annotations

__all__ = ["CONFIG"]


class _Config:
    __slots__ = ("backoff_enabled",)

    def __init__(self) -> None:
        # When False, Retry skips its backoff waits (tests run without sleeping).
        self.backoff_enabled = True


CONFIG = _Config()
