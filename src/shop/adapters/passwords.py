"""Password hashing with argon2 (argon2-cffi's defaults, RFC 9106's second recommendation)."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["DEMO_PASSWORD", "demo_hash", "hash_password", "verify_password"]

DEMO_PASSWORD = "demo"
"""The password every seeded user signs in with."""

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted: two calls give two hashes)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for a wrong or malformed hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def demo_hash() -> str:
    """The demo password's hash, computed once per process: seeding N users costs one hash."""
    return hash_password(DEMO_PASSWORD)
