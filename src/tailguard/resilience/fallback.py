"""``Fallback``: answer with a default value, or a handler's answer, when the call fails."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeVar

from tailguard.errors import ConfigurationError
from tailguard.events import FallbackUsed, HookRegistry
from tailguard.resilience._policy import ExceptionSpec, exception_matcher, resolve_hooks

__all__ = ["Fallback"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_UNSET: Any = object()


class Fallback(Generic[R]):
    """On a failure matching ``on`` (default ``Exception``), return ``value``, or the result of
    ``handler(exc)`` (sync or async). ``CancelledError`` always propagates.

    ``Fallback("anonymous")``, ``Fallback(handler=lambda exc: cached_profile)``. A call returns
    ``T | R`` (the call's type or the fallback's); give ``R`` when it cannot be inferred, as in
    ``Fallback[list[str]]([])``.
    """

    __slots__ = ("_handler", "_hooks", "_on", "_value", "name")

    def __init__(
        self,
        value: R = _UNSET,
        *,
        handler: Callable[[BaseException], R | Awaitable[R]] | None = None,
        on: ExceptionSpec = Exception,
        name: str = "fallback",
        hooks: HookRegistry | None = None,
    ) -> None:
        if (value is _UNSET) == (handler is None):
            raise ConfigurationError(
                "Fallback", {"value": value, "handler": handler}, "exactly one of value, handler"
            )
        self._value = value
        self._handler = handler
        self._on = exception_matcher(on, "Fallback.on")
        self.name = name
        self._hooks = resolve_hooks(hooks)

    async def call(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T | R:
        try:
            return await fn(*args, **kwargs)
        except Exception as exc:
            if not self._on(exc):
                raise
            self._hooks.emit(FallbackUsed(self.name, type(exc).__name__))
            if self._handler is None:
                return self._value
            answer = self._handler(exc)
            if inspect.isawaitable(answer):
                return await answer
            return answer

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T | R]]:
        call = self.call

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T | R:
            return await call(fn, *args, **kwargs)

        return guarded

    def __repr__(self) -> str:
        return f"Fallback(name={self.name!r})"
