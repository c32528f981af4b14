"""Modulo, StableHash and JumpHash: ranges, determinism, spread, resize movement, bad input."""

from __future__ import annotations

from collections import Counter
from hashlib import blake2b

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.errors import ConfigurationError
from tailguard.shard import JumpHash, Modulo, StableHash, digest64, jump, movement

KEYS = 100_000
INTS = range(KEYS)
TEXTS = [f"tenant-{i}" for i in range(KEYS)]
keys_st = st.integers(0, 2**64 - 1) | st.text() | st.binary()


def assert_even(counts: Counter[int], n: int, total: int, tolerance: float = 0.04) -> None:
    assert sorted(counts) == list(range(n)), "every shard gets keys, and no other shard exists"
    expected = total / n
    for shard, count in counts.items():
        assert abs(count - expected) <= tolerance * expected, (shard, count, expected)


# -- the digest ----------------------------------------------------------------------------


def test_digest_is_blake2b_64_big_endian_of_the_keys_text() -> None:
    expected = int.from_bytes(blake2b(b"tenant-42", digest_size=8).digest(), "big")
    assert digest64("tenant-42") == digest64(b"tenant-42") == expected
    assert digest64(42) == digest64("42") == digest64(b"42")
    assert digest64(bytearray(b"x")) == digest64(b"x")  # type: ignore[arg-type]
    assert digest64(memoryview(b"x")) == digest64(b"x")  # type: ignore[arg-type]
    assert 0 <= digest64("") < 2**64


@pytest.mark.parametrize("key", [True, 1.5, None, ("a",), object()])
def test_a_key_must_be_int_str_or_bytes(key: object) -> None:
    for strategy in (StableHash(4), JumpHash(4)):
        with pytest.raises(TypeError, match="key"):
            strategy.shard(key)  # type: ignore[arg-type]


# -- Modulo --------------------------------------------------------------------------------


def test_modulo_is_the_guides_user_id_sharding() -> None:
    assert [Modulo(4).shard(i) for i in range(6)] == [0, 1, 2, 3, 0, 1]
    assert Modulo(4).shard(-1) == 3, "never negative"
    assert Modulo(1).shard(123) == 0


@pytest.mark.parametrize("key", ["42", b"42", 4.0, True])
def test_modulo_takes_int_ids_only(key: object) -> None:
    with pytest.raises(TypeError, match="Modulo shards int ids"):
        Modulo(4).shard(key)  # type: ignore[arg-type]


def test_modulo_points_text_keys_to_a_hash_strategy() -> None:
    with pytest.raises(TypeError, match="use StableHash or JumpHash"):
        Modulo(4).shard("tenant-42")  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [Modulo, StableHash, JumpHash])
@pytest.mark.parametrize("n", [0, -1, 2.0, "4", True, None])
def test_a_shard_count_is_an_int_of_at_least_one(cls: type, n: object) -> None:
    with pytest.raises(ConfigurationError, match=r"^n=.*expected a number of shards"):
        cls(n)


# -- StableHash ----------------------------------------------------------------------------


def test_stable_hash_is_the_digest_modulo_n() -> None:
    assert StableHash(8).shard("tenant-42") == digest64("tenant-42") % 8
    assert StableHash(8).shard(42) == StableHash(8).shard("42")
    assert StableHash(1).shard("anything") == 0


def test_stable_hash_spreads_text_and_sequential_ids_evenly() -> None:
    assert_even(Counter(map(StableHash(8).shard, TEXTS)), 8, KEYS)
    assert_even(Counter(map(StableHash(8).shard, INTS)), 8, KEYS)


def test_stable_hash_moves_as_much_as_modulo_on_a_resize() -> None:
    assert movement(StableHash(4), StableHash(5), TEXTS).fraction == pytest.approx(0.8, abs=0.01)


# -- JumpHash ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "n", "bucket"),
    [  # published by other implementations of the paper's C++ code
        (123456, 1000, 984),
        (10863919174838991, 11, 6),
        (2016238256797177309, 11, 3),
        (1673758223894951030, 11, 5),
    ],
)
def test_jump_matches_known_vectors(key: int, n: int, bucket: int) -> None:
    assert jump(key, n) == bucket
    assert JumpHash(n).shard(key) == bucket


def test_jump_hash_reads_ints_as_64_bit_keys_and_digests_text() -> None:
    assert JumpHash(16).shard(-1) == jump(2**64 - 1, 16), "two's complement, as Guava's long"
    assert JumpHash(16).shard(2**64 + 5) == jump(5, 16)
    assert JumpHash(16).shard("tenant-42") == jump(digest64("tenant-42"), 16)
    assert JumpHash(16).shard(b"tenant-42") == JumpHash(16).shard("tenant-42")


def test_jump_hash_spreads_sequential_ids_and_text_evenly() -> None:
    assert_even(Counter(map(JumpHash(8).shard, INTS)), 8, KEYS)
    assert_even(Counter(map(JumpHash(10).shard, TEXTS)), 10, KEYS)


@given(key=keys_st, n=st.integers(1, 2000))
def test_jump_hash_growing_by_one_moves_keys_only_to_the_new_shard(key: object, n: int) -> None:
    before, after = JumpHash(n).shard(key), JumpHash(n + 1).shard(key)  # type: ignore[arg-type]
    assert 0 <= before < n
    assert after in (before, n)


@given(key=st.integers(0, 2**64 - 1), n=st.integers(1, 2**31))
def test_jump_is_in_range_for_any_64_bit_key(key: int, n: int) -> None:
    assert 0 <= jump(key, n) < n


@pytest.mark.parametrize(("old", "new"), [(4, 5), (8, 9), (16, 17)])
def test_jump_hash_moves_one_in_n_plus_one_but_modulo_most(old: int, new: int) -> None:
    jumped = movement(JumpHash(old), JumpHash(new), INTS)
    assert jumped.fraction == pytest.approx(1 / new, abs=0.01)
    assert {target for _, target in jumped.plan} == {old}, "every moved key goes to the new one"
    assert movement(Modulo(old), Modulo(new), INTS).fraction == pytest.approx(old / new, abs=0.01)


def test_strategies_are_values() -> None:
    assert JumpHash(4) == JumpHash(4) != JumpHash(5)
    assert repr(StableHash(8)) == "StableHash(n=8)"
    assert len({Modulo(3), Modulo(3)}) == 1
