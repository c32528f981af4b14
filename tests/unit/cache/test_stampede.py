"""Stampede protection: ``SingleFlight`` (the in-process half; TieredCache's use of it is in
``test_tiered.py``)."""

from __future__ import annotations

import asyncio
import traceback

import pytest

from tailguard.cache import MemoryTier, TieredCache
from tailguard.cache.stampede import SingleFlight


class OutOfStock(ValueError):
    """An exception whose ``__init__`` does not take its own ``args``."""

    def __init__(self, sku: int) -> None:
        super().__init__(f"sku {sku} is out of stock")
        self.sku = sku


async def fail_together(flight: SingleFlight, exc: Exception, callers: int) -> list[BaseException]:
    gate = asyncio.Event()

    async def broken() -> int:
        await gate.wait()
        raise exc

    tasks = [asyncio.create_task(flight.run("k", broken)) for _ in range(callers)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, BaseException) for r in results)
    return [r for r in results if isinstance(r, BaseException)]


async def test_followers_raise_their_own_exception_caused_by_the_leaders() -> None:
    original = OutOfStock(7)
    original.add_note("while loading the basket")
    leader, *followers = await fail_together(SingleFlight(), original, callers=3)
    assert leader is original
    assert len({id(e) for e in followers}) == 2
    for mine in followers:
        assert mine is not original
        assert type(mine) is OutOfStock  # `except ValueError` / `except OutOfStock` still work
        assert mine.__cause__ is original
        assert (mine.args, mine.sku) == (original.args, 7)
        assert mine.__notes__ == ["while loading the basket"]
        assert mine.__notes__ is not original.__notes__
    # the loader's frame is in the leader's traceback once, and no follower's frames are
    frames = [f.name for f in traceback.extract_tb(original.__traceback__)]
    assert frames.count("broken") == 1
    assert frames.count("run") == 1  # the leader's own SingleFlight.run


async def test_through_get_or_load_callers_still_catch_the_original_type() -> None:
    cache = TieredCache([MemoryTier()])
    gate = asyncio.Event()

    async def broken() -> int:
        await gate.wait()
        raise OutOfStock(3)

    tasks = [asyncio.create_task(cache.get_or_load("k", broken, ttl=60)) for _ in range(2)]
    await asyncio.sleep(0)
    gate.set()
    leader, follower = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(follower, BaseException)
    with pytest.raises(ValueError, match="sku 3") as caught:
        raise follower
    assert caught.value is not leader
    assert caught.value.__cause__ is leader


class Stubborn(Exception):
    """Cannot be made again from its ``args``: followers share the leader's, as before."""

    def __new__(cls, code: int, reason: str) -> Stubborn:
        return super().__new__(cls, code, reason)

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code}: {reason}")


async def test_an_exception_that_cannot_be_remade_is_shared() -> None:
    original = Stubborn(503, "busy")
    results = await fail_together(SingleFlight(), original, callers=2)
    assert results == [original, original]
    assert original.__cause__ is None
