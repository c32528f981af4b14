"""How a key becomes bytes and a 64-bit digest, the same in every process and language: what
shard strategies route by and where balancing places endpoints and clients on its ring.

A key is an ``int``, a ``str`` or ``bytes``. Its bytes are: ``bytes`` as given, a ``str`` in
UTF-8, an ``int`` as its decimal text (so ``42``, ``"42"`` and ``b"42"`` are one key). The
digest is BLAKE2b with an 8-byte digest, read as a big-endian unsigned integer::

    int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")

Never Python's ``hash()``: for ``str`` and ``bytes`` it is salted per process
(``PYTHONHASHSEED``), so two instances would route one key to different shards (or send one
client to different endpoints).
"""

from __future__ import annotations

from hashlib import blake2b

__all__ = ["MASK64", "Key", "digest64", "key_bytes"]

Key = int | str | bytes
MASK64 = (1 << 64) - 1

_from_bytes = int.from_bytes
_fresh = blake2b(digest_size=8).copy


def key_bytes(key: Key) -> bytes:
    """The bytes a key is digested from (see the module docstring)."""
    if type(key) is str:
        return key.encode()
    if type(key) is bytes:
        return key
    if type(key) is int:
        return b"%d" % key
    return _slow_key_bytes(key)


def _slow_key_bytes(key: object) -> bytes:
    if isinstance(key, bool):  # an int, but True landing with 1 is never what was meant
        raise TypeError(f"key {key!r}: a bool is not a key; use an int, str or bytes")
    if isinstance(key, int):
        return b"%d" % int(key)
    if isinstance(key, str):
        return str(key).encode()
    if isinstance(key, bytes | bytearray | memoryview):
        return bytes(key)
    raise TypeError(f"key {key!r}: expected an int, str or bytes, not {type(key).__name__}")


def digest64(key: Key) -> int:
    """The key's stable 64-bit digest, in ``[0, 2**64)``: BLAKE2b-64 of :func:`key_bytes`."""
    hasher = _fresh()  # a copy of a blank hasher: cheaper than building one with options
    if type(key) is str:
        hasher.update(key.encode())
    elif type(key) is int:
        hasher.update(b"%d" % key)
    elif type(key) is bytes:
        hasher.update(key)
    else:
        hasher.update(_slow_key_bytes(key))
    return _from_bytes(hasher.digest(), "big")
