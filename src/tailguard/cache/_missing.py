"""``MISSING``: the one value that means "not in the cache" (every other value is a hit)."""

from __future__ import annotations

from typing import Final

__all__ = ["MISSING"]


class _Missing:
    """The type of ``MISSING``."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What ``get`` returns for a miss (unless given a ``default``)."""
