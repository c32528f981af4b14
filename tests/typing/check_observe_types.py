"""Checked by mypy (``make typecheck``), never run: @monitor keeps the wrapped signature."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from tailguard.observe import monitor


@monitor("checkout")
async def checkout(cart_id: int, *, coupon: str | None = None) -> dict[str, int]:
    return {"cart": cart_id}


@monitor
def tax(amount: float) -> float:
    return amount * 0.2


assert_type(checkout(1, coupon="x"), Coroutine[Any, Any, dict[str, int]])  # type: ignore[unused-coroutine]
assert_type(tax(2.0), float)
checkout("1")  # type: ignore[arg-type, unused-coroutine]
tax(1.0, 2.0)  # type: ignore[call-arg]
