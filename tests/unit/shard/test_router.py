"""ShardRouter at the adapter seam: fake targets (names), real asyncio, short real timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tailguard.errors import ConfigurationError, DeadlineExceeded
from tailguard.shard import ByMonth, Gathered, JumpHash, Modulo, ShardError, ShardRouter

TARGETS = ["db-0", "db-1", "db-2", "db-3"]


def router(**options: object) -> ShardRouter[int, str]:
    return ShardRouter(Modulo(4), TARGETS, **options)  # type: ignore[arg-type]


async def echo(target: str, shard: int) -> str:
    await asyncio.sleep(0)
    return f"{target}@{shard}"


# -- routing -------------------------------------------------------------------------------


def test_a_key_goes_to_its_shards_target() -> None:
    r = router()
    assert (r.shard(6), r.target(6), len(r)) == (2, "db-2", 4)
    assert r.split([5, 1, 2, 9, 4]) == {0: [4], 1: [5, 1, 9], 2: [2]}
    assert repr(r) == "ShardRouter(Modulo(n=4), 4 targets)"


@pytest.mark.parametrize("targets", [TARGETS[:3], [*TARGETS, "db-4"], "abcd"])
def test_one_target_per_shard(targets: list[str]) -> None:
    with pytest.raises(ConfigurationError, match=r"^targets=.*expected 4, one per shard"):
        ShardRouter(JumpHash(4), targets)


def test_by_month_needs_no_router() -> None:
    with pytest.raises(ConfigurationError, match="ByMonth names shards by month"):
        ShardRouter(ByMonth("events"), TARGETS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "setting"),
    [({"concurrency": 0}, "concurrency"), ({"timeout": 0}, "timeout"),
     ({"timeout": float("nan")}, "timeout"), ({"concurrency": 1.5}, "concurrency")],
)  # fmt: skip
def test_bad_defaults_are_configuration_errors(options: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigurationError, match=f"^{setting}="):
        router(**options)


# -- gather --------------------------------------------------------------------------------


async def test_gather_runs_on_every_shard_in_shard_order() -> None:
    gathered = await router().gather(echo)
    assert gathered.complete
    assert gathered.failed == []
    assert list(gathered.results.items()) == [(i, f"db-{i}@{i}") for i in range(4)]
    assert gathered.values() == [f"db-{i}@{i}" for i in range(4)]
    assert list(gathered.elapsed) == [0, 1, 2, 3]


async def test_gather_on_some_shards() -> None:
    gathered = await router().gather(echo, shards=[3, 1, 3])
    assert list(gathered.results) == [1, 3]
    assert (await router().gather(echo, shards=[])).results == {}
    with pytest.raises(ConfigurationError, match=r"shard=4: expected a shard number in \[0, 4\)"):
        await router().gather(echo, shards=[4])


@pytest.mark.parametrize(("concurrency", "expected"), [(1, 1), (2, 2), (None, 4)])
async def test_concurrency_bounds_the_shards_in_flight(
    concurrency: int | None, expected: int
) -> None:
    running = peak = 0

    async def query(target: str, shard: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return shard

    gathered = await router().gather(query, concurrency=concurrency)
    assert gathered.complete
    assert peak == expected
    peak = 0
    assert (await router(concurrency=3).gather(query)).complete
    assert peak == 3


async def test_a_slow_shard_times_out_and_the_rest_answer() -> None:
    async def query(target: str, shard: int) -> str:
        await asyncio.sleep(10 if shard == 2 else 0)
        return target

    gathered = await router().gather(query, timeout=0.05)
    assert not gathered.complete
    assert gathered.failed == [2]
    assert list(gathered.results) == [0, 1, 3]
    error = gathered.errors[2]
    assert isinstance(error, DeadlineExceeded)
    assert isinstance(error, TimeoutError)
    assert str(error) == "'shard 2' timed out after 0.05s"
    assert 0.04 < gathered.elapsed[2] < 1.0
    # the router's default applies when the call gives none
    assert (await router(timeout=0.05).gather(query)).failed == [2]


async def test_a_timeout_the_query_raises_itself_is_not_a_deadline() -> None:
    async def query(target: str, shard: int) -> str:
        raise TimeoutError("the driver's own")

    gathered = await router().gather(query, timeout=5)
    assert all(type(e) is TimeoutError for e in gathered.errors.values())


async def test_errors_are_reported_per_shard_as_a_partial_result() -> None:
    async def query(target: str, shard: int) -> str:
        if shard in (1, 3):
            raise ConnectionRefusedError(f"{target} is down")
        return target

    gathered = await router().gather(query)
    assert gathered.results == {0: "db-0", 2: "db-2"}
    assert {s: str(e) for s, e in gathered.errors.items()} == {
        1: "db-1 is down",
        3: "db-3 is down",
    }


async def test_without_partial_results_the_first_failure_raises_and_cancels_the_rest() -> None:
    cancelled: list[int] = []

    async def query(target: str, shard: int) -> str:
        if shard == 1:
            await asyncio.sleep(0.01)
            raise ConnectionRefusedError(f"{target} is down")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(shard)
            raise
        return target

    with pytest.raises(ShardError, match="shard 1 failed: ConnectionRefusedError: db-1") as info:
        await router().gather(query, return_partial=False)
    assert info.value.shard == 1
    assert isinstance(info.value.__cause__, ConnectionRefusedError)
    assert info.value.error is info.value.__cause__
    assert sorted(cancelled) == [0, 2, 3]


async def test_without_partial_results_a_timeout_raises_too() -> None:
    async def query(target: str, shard: int) -> str:
        await asyncio.sleep(10 if shard == 0 else 0)
        return target

    with pytest.raises(ShardError, match="shard 0 failed: DeadlineExceeded") as info:
        await router().gather(query, timeout=0.02, return_partial=False)
    assert isinstance(info.value.error, DeadlineExceeded)
    assert (await router().gather(echo, return_partial=False)).complete


async def test_cancelling_a_gather_cancels_every_shard_call() -> None:
    started, cancelled = asyncio.Event(), []
    r = router(concurrency=2)

    async def query(target: str, shard: int) -> str:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(shard)
            raise
        return target

    before = asyncio.all_tasks()
    task = asyncio.create_task(r.gather(query))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == [0, 1], "the two in flight; the two waiting never started"
    assert asyncio.all_tasks() == before, "no shard task is left behind"


# -- merging -------------------------------------------------------------------------------


def test_merged_concatenates_or_merges_sorted_shards() -> None:
    gathered: Gathered[list[int]] = Gathered(
        {0: [9, 5, 1], 1: [8, 7], 3: [6, 2]}, {2: OSError("down")}, {}
    )
    assert gathered.merged() == [9, 5, 1, 8, 7, 6, 2]
    assert gathered.merged(limit=4) == [9, 5, 1, 8]
    assert gathered.merged(key=lambda x: x, reverse=True) == [9, 8, 7, 6, 5, 2, 1]
    assert gathered.merged(key=lambda x: x, reverse=True, limit=3) == [9, 8, 7]
    assert gathered.merged(limit=0) == []
    with pytest.raises(ConfigurationError, match="limit="):
        gathered.merged(limit=-1)


# -- sessions (SQLAlchemy, on in-memory SQLite) ---------------------------------------------


@pytest.fixture
async def engines() -> AsyncIterator[list[AsyncEngine]]:
    made = [create_async_engine("sqlite+aiosqlite://") for _ in range(3)]
    yield made
    for engine in made:
        await engine.dispose()


async def test_a_session_opens_on_the_keys_shard(engines: list[AsyncEngine]) -> None:
    r = ShardRouter(JumpHash(3), engines)
    for key in (1, 2, 3, "tenant-42"):
        async with r.session(key, expire_on_commit=False) as session:
            assert session.bind is engines[r.shard(key)]
    async with r.session_at(2) as session:
        assert session.bind is engines[2]
    with pytest.raises(ConfigurationError, match="shard=3"):
        async with r.session_at(3):
            pass
