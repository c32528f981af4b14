"""Checked by mypy (``make typecheck``), never run: @traced keeps the wrapped signature."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, assert_type

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tailguard.observe.tracing import (
    current_trace_id,
    exemplar,
    memory_exporter,
    setup_tracing,
    traced,
)


@traced
async def fetch_profile(user_id: int, *, fields: str = "all") -> dict[str, str]:
    return {"id": str(user_id), "fields": fields}


@traced("tax", attributes={"currency": "EUR", "rate": 0.2}, record_args=True)
def tax(amount: float) -> float:
    return amount * 0.2


@traced(name="noop", tracer_provider=TracerProvider())
def noop() -> None:
    pass


async def main() -> None:
    coro = fetch_profile(1)
    _ = assert_type(coro, Coroutine[Any, Any, dict[str, str]])
    coro.close()
    assert_type(await fetch_profile(1, fields="name"), dict[str, str])
    assert_type(tax(2.0), float)
    assert_type(noop(), None)
    assert_type(setup_tracing("shop", exporter="memory"), TracerProvider)
    assert_type(memory_exporter(), InMemorySpanExporter)
    assert_type(current_trace_id(), str | None)
    assert_type(exemplar(), dict[str, str] | None)

    _ = fetch_profile("not an int")  # type: ignore[arg-type]
    _ = fetch_profile(1, color="red")  # type: ignore[call-arg]
    tax(1.0, 2.0)  # type: ignore[call-arg]
    setup_tracing("shop", exporter="jaeger")  # type: ignore[arg-type]
    traced(attributes={"bad": object()})  # type: ignore[dict-item]
