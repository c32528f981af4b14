"""Rendezvous (HRW) hashing: named and weighted nodes, minimal movement on add and remove."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.errors import ConfigurationError
from tailguard.shard import Rendezvous, movement, moves

KEYS = [f"user:{i}" for i in range(50_000)]


def nodes(count: int) -> list[str]:
    return [f"db-{i}" for i in range(count)]


def test_node_and_shard_agree_and_spread_evenly() -> None:
    ring = Rendezvous(nodes(8))
    assert ring.n == 8
    assert ring.nodes == tuple(nodes(8))
    counts = Counter(map(ring.node, KEYS))
    assert set(counts) == set(nodes(8))
    for count in counts.values():
        assert abs(count - len(KEYS) / 8) < 0.05 * len(KEYS) / 8
    assert all(ring.nodes[ring.shard(k)] == ring.node(k) for k in KEYS[:1000])


def test_int_and_text_of_one_id_are_one_key() -> None:
    ring = Rendezvous(nodes(5))
    assert ring.node(42) == ring.node("42") == ring.node(b"42")


@pytest.mark.parametrize("size", [4, 8, 16])
def test_adding_a_node_moves_about_one_in_n_plus_one_all_to_it(size: int) -> None:
    moved = movement(Rendezvous(nodes(size)), Rendezvous(nodes(size + 1)), KEYS)
    assert moved.fraction == pytest.approx(1 / (size + 1), abs=0.012)
    assert {target for _, target in moved.plan} == {f"db-{size}"}


def test_removing_a_middle_node_moves_only_its_keys() -> None:
    before = Rendezvous(nodes(5))
    after = Rendezvous([n for n in nodes(5) if n != "db-2"])
    held = sum(1 for k in KEYS if before.node(k) == "db-2")
    moved = movement(before, after, KEYS)
    assert moved.moved == held, "compared by name: renumbering the others moves nothing"
    assert {source for source, _ in moved.plan} == {"db-2"}
    assert all(m.source == "db-2" for m in moves(before, after, KEYS[:2000]))


def test_weights_give_proportional_shares() -> None:
    ring = Rendezvous({"small": 1.0, "big": 3.0})
    counts = Counter(map(ring.node, KEYS))
    assert counts["big"] / len(KEYS) == pytest.approx(0.75, abs=0.015)


def test_equal_weights_route_like_no_weights() -> None:
    plain, weighted = Rendezvous(nodes(6)), Rendezvous(dict.fromkeys(nodes(6), 2.5))
    assert all(plain.node(k) == weighted.node(k) for k in KEYS[:3000])


@given(key=st.text() | st.integers() | st.binary(), weighted=st.booleans())
def test_ranked_starts_with_the_owner_and_lists_every_node(key: object, weighted: bool) -> None:
    ring = Rendezvous({"a": 1.0, "b": 2.0, "c": 0.5} if weighted else ["a", "b", "c"])
    order = ring.ranked(key)  # type: ignore[arg-type]
    assert order[0] == ring.node(key)  # type: ignore[arg-type]
    assert sorted(order) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("nodes_arg", "match"),
    [
        ([], "at least one node"),
        ("db-a", "a list of node names"),
        (["a", "a", "b"], "unique node names"),
        (["a", ""], "non-empty str"),
        ([1, 2], "non-empty str"),
        ({"a": 0}, "weight of 'a'"),
        ({"a": -1.0}, "finite number > 0"),
        ({"a": float("inf")}, "finite number > 0"),
        ({"a": True}, "finite number > 0"),
    ],
)
def test_bad_nodes_are_configuration_errors(nodes_arg: object, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Rendezvous(nodes_arg)  # type: ignore[arg-type]


def test_repr_and_equality() -> None:
    assert repr(Rendezvous(["a", "b"])) == "Rendezvous(['a', 'b'])"
    assert repr(Rendezvous({"a": 1, "b": 2})) == "Rendezvous({'a': 1.0, 'b': 2.0})"
    assert Rendezvous(["a", "b"]) == Rendezvous({"a": 1.0, "b": 1.0})
    assert hash(Rendezvous(["a"])) == hash(Rendezvous(["a"]))
