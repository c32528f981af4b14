"""Suite-wide pytest configuration: the real-service fixtures live in ``tests/services.py``."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.services", "tailguard.observe.pytest_plugin"]


@pytest.fixture
def frozen_heap() -> Iterator[None]:
    """Move what earlier tests left on the heap out of the collector's way for one test.

    For the benchmark smoke tests, which allocate a lot: late in the suite every collection
    walked the leftovers of a thousand tests, and the rate-limit smoke test took 60 s instead
    of its 21 s alone.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
