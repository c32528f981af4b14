"""Value codecs: msgspec MessagePack by default, JSON on request, signed pickle only by opt-in.

A codec turns a value into bytes and back, optionally into a given type
(``decode(data, type=Profile)``), which msgspec validates. Pickle can run code when it loads,
so :class:`SignedPickleCodec` refuses any payload without a valid HMAC of a secret you give it.
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from typing import Any, Protocol

from tailguard.errors import CacheValueError, ConfigurationError

__all__ = ["Codec", "JsonCodec", "MsgpackCodec", "SignedPickleCodec"]


class Codec(Protocol):
    """Bytes in, values out. ``type`` (optional) is what ``decode`` should produce."""

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes, type: Any = None) -> Any: ...


class _MsgspecCodec:
    """A msgspec format (``msgspec.msgpack`` or ``msgspec.json``), with one decoder per type."""

    _format = "msgpack"

    def __init__(self) -> None:
        import importlib

        self._module: Any = importlib.import_module(f"msgspec.{self._format}")
        self._encoder = self._module.Encoder()
        self._decoders: dict[Any, Any] = {}

    def encode(self, value: Any) -> bytes:
        try:
            data: bytes = self._encoder.encode(value)
        except TypeError as exc:
            kind = type(value).__name__
            raise CacheValueError(f"cannot encode {kind} as {self._format}: {exc}") from exc
        return data

    def decode(self, data: bytes, type: Any = None) -> Any:
        decoder = self._decoders.get(type)
        if decoder is None:
            decoder = self._decoders[type] = (
                self._module.Decoder() if type is None else self._module.Decoder(type)
            )
        return decoder.decode(data)


class MsgpackCodec(_MsgspecCodec):
    """MessagePack through msgspec: compact and fast; decodes into ``type`` when given
    (dataclasses, msgspec Structs, TypedDicts, ...)."""

    _format = "msgpack"


class JsonCodec(_MsgspecCodec):
    """JSON through msgspec: readable in ``redis-cli``; decodes into ``type`` when given."""

    _format = "json"


class SignedPickleCodec:
    """Pickle, for values msgspec cannot carry, signed with HMAC-SHA256 of ``secret``: a
    payload whose signature does not match is refused, never unpickled."""

    _DIGEST = 32

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise ConfigurationError(
                "SignedPickleCodec.secret", "<hidden>", "at least 16 random bytes"
            )
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def encode(self, value: Any) -> bytes:
        payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        return self._sign(payload) + payload

    def decode(self, data: bytes, type: Any = None) -> Any:
        signature, payload = data[: self._DIGEST], data[self._DIGEST :]
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise CacheValueError("refusing to unpickle a cache value with a bad signature")
        return pickle.loads(payload)
