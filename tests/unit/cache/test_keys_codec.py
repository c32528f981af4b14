"""CacheKey escaping and versions; codecs and their refusals."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from tailguard.cache import CacheKey, JsonCodec, MsgpackCodec, SignedPickleCodec
from tailguard.errors import CacheValueError, ConfigurationError, KeyTooLong


def test_the_guides_key_layout() -> None:
    key = CacheKey("api", version="v2").build("user", 42, "profile", date=dt.date(2024, 1, 15))
    assert key == "api:v2:user:42:profile:2024-01-15"


def test_separators_inside_parts_cannot_collide() -> None:
    k = CacheKey("api")
    keys = {
        k.build("user:1"),
        k.build("user", "1"),
        k.build("1:user"),
        k.build("1", "user"),
        k.build("user\\", "1"),
        k.build("user\\:1"),
    }
    assert len(keys) == 6
    assert k.build("a:b") == "api:v1:a\\:b"


def test_bumping_the_version_moves_the_whole_namespace() -> None:
    v1 = CacheKey("api", version=1)
    v2 = v1.bump(2)
    assert v1.build("user", 1) != v2.build("user", 1)
    assert v2.prefix == "api:2:"
    assert v2.build("user", 1).startswith(v2.prefix)


def test_bad_keys_and_namespaces_get_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"CacheKey\.namespace"):
        CacheKey("a:b")
    with pytest.raises(ConfigurationError, match=r"CacheKey\.version"):
        CacheKey("api", version="")
    with pytest.raises(TypeError, match="None"):
        CacheKey("api").build("user", None)
    with pytest.raises(TypeError, match="at least one part"):
        CacheKey("api").build()
    with pytest.raises(KeyTooLong, match="over the limit of 64") as info:
        CacheKey("api", max_bytes=64).build("x" * 100)
    assert isinstance(info.value, ValueError)
    assert info.value.size > 64


@dataclasses.dataclass
class Profile:
    id: int
    name: str
    tags: list[str]


@pytest.mark.parametrize("codec", [MsgpackCodec(), JsonCodec()], ids=["msgpack", "json"])
def test_codecs_round_trip_and_decode_into_a_type(codec: MsgpackCodec | JsonCodec) -> None:
    for value in (0, "", [], None, {"a": [1, 2.5, "x"]}, True):
        assert codec.decode(codec.encode(value)) == value
    profile = Profile(1, "ada", ["admin"])
    assert codec.decode(codec.encode(profile), Profile) == profile
    with pytest.raises(CacheValueError, match="cannot encode"):
        codec.encode(object())


def test_signed_pickle_refuses_tampered_or_foreign_payloads() -> None:
    codec = SignedPickleCodec(b"0123456789abcdef-secret")
    data = codec.encode({1, 2, 3})
    assert codec.decode(data) == {1, 2, 3}
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    with pytest.raises(CacheValueError, match="bad signature"):
        codec.decode(tampered)
    other = SignedPickleCodec(b"another-secret-of-16+")
    with pytest.raises(CacheValueError, match="bad signature"):
        other.decode(data)
    with pytest.raises(ConfigurationError, match="secret"):
        SignedPickleCodec(b"short")
