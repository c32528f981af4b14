"""What every policy shares: the ``call`` shape and the decorator that keeps signatures."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from tailguard.events import HookRegistry, hooks

__all__ = ["Policy", "PolicyBase", "exception_matcher"]

P = ParamSpec("P")
T = TypeVar("T")

ExceptionSpec = (
    type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
)


class Policy(Protocol):
    """A resilience policy: runs ``fn(*args, **kwargs)`` under its rule."""

    name: str

    def call(
        self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any
    ) -> Awaitable[Any]: ...


class PolicyBase:
    """Mixin: ``@policy`` on an ``async def`` runs every call through ``policy.call``."""

    __slots__ = ()

    name: str
    _hooks: HookRegistry

    async def call(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:  # pragma: no cover - every policy overrides it
        raise NotImplementedError

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        call = self.call

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            return await call(fn, *args, **kwargs)

        return guarded

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def resolve_hooks(registry: HookRegistry | None) -> HookRegistry:
    return hooks if registry is None else registry


def exception_matcher(spec: ExceptionSpec, setting: str) -> Callable[[BaseException], bool]:
    """Turn exception types, or a predicate, into one predicate; reject anything else."""
    from tailguard.errors import ConfigurationError

    if isinstance(spec, type) and issubclass(spec, BaseException):
        return lambda exc: isinstance(exc, spec)
    if isinstance(spec, tuple):
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in spec):
            raise ConfigurationError(setting, spec, "exception types or a predicate")
        return lambda exc: isinstance(exc, spec)
    if callable(spec):
        return cast(Callable[[BaseException], bool], spec)
    raise ConfigurationError(setting, spec, "exception types or a predicate")
