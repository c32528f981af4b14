"""movement(): fractions, the migration plan, bounded samples and the lazy moves()."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tailguard.errors import ConfigurationError
from tailguard.shard import JumpHash, Modulo, Move, Movement, StableHash, movement, moves


def test_modulo_four_to_five_moves_four_in_five_with_a_plan() -> None:
    result = movement(Modulo(4), Modulo(5), range(100_000))
    assert (result.total, result.moved, result.fraction) == (100_000, 80_000, 0.8)
    assert sum(result.plan.values()) == result.moved
    assert list(result.plan) == sorted(result.plan)
    # id 4 was on 0 (4 % 4) and goes to 4 (4 % 5): the plan says so, with it as a sample
    assert result.samples[(0, 4)][0] == 4
    assert all(len(keys) <= 3 for keys in result.samples.values())


def test_jump_hash_four_to_five_moves_a_fifth() -> None:
    assert movement(JumpHash(4), JumpHash(5), range(100_000)).fraction == pytest.approx(
        0.2, abs=0.01
    )


def test_samples_are_bounded_and_keys_are_read_once_lazily() -> None:
    consumed = 0

    def ids() -> Iterator[int]:
        nonlocal consumed
        for i in range(50_000):
            consumed += 1
            yield i

    result = movement(StableHash(8), StableHash(9), ids(), samples=1)
    assert consumed == 50_000 == result.total
    assert all(len(keys) == 1 for keys in result.samples.values())
    assert movement(Modulo(2), Modulo(3), range(10), samples=0).samples == {}


def test_moves_streams_the_moved_keys() -> None:
    first = list(itertools.islice(moves(Modulo(4), Modulo(5), itertools.count()), 3))
    assert first == [Move(4, 0, 4), Move(5, 1, 0), Move(6, 2, 1)]


def test_nothing_moves_when_nothing_changes() -> None:
    same = movement(JumpHash(7), JumpHash(7), range(1000))
    assert (same.moved, same.fraction, same.plan) == (0, 0.0, {})
    assert movement(Modulo(2), Modulo(3), []).fraction == 0.0


def test_a_movement_reads_as_a_summary() -> None:
    text = str(movement(Modulo(2), Modulo(3), range(6)))
    assert text.splitlines()[0] == "4 of 6 keys move (66.7%)"
    assert "  0 -> 2: 1 (e.g. 2)" in text
    assert isinstance(movement(Modulo(2), Modulo(3), range(6)), Movement)


@pytest.mark.parametrize("samples", [-1, 1.5, True])
def test_samples_must_be_a_count(samples: object) -> None:
    with pytest.raises(ConfigurationError, match="samples="):
        movement(Modulo(2), Modulo(3), range(3), samples=samples)  # type: ignore[arg-type]
