"""``Pipeline(*policies)``: policies composed outermost first, at the cost of their own calls.

``Pipeline(Timeout(1), Retry(), CircuitBreaker(), Bulkhead())`` runs each call as
``timeout(retry(breaker(bulkhead(fn))))``: one deadline over all attempts, each attempt
through the breaker and the bulkhead. Composition happens once, at construction: a call passes
the inner policies' ``call`` methods down as arguments, so no closure is built per call.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from tailguard.errors import ConfigurationError
from tailguard.resilience._policy import Policy, PolicyBase

__all__ = ["Pipeline"]

P = ParamSpec("P")
T = TypeVar("T")


class Pipeline(PolicyBase):
    """Compose ``policies``, the first one outermost. Nested pipelines are flattened."""

    __slots__ = ("_chain", "name", "policies")

    def __init__(self, *policies: Policy, name: str = "pipeline") -> None:
        flat: list[Policy] = []
        for p in policies:
            if isinstance(p, Pipeline):
                flat.extend(p.policies)
            elif callable(getattr(p, "call", None)):
                flat.append(p)
            else:
                raise ConfigurationError("Pipeline policy", p, "a policy with a call() method")
        if not flat:
            raise ConfigurationError("Pipeline", policies, "at least one policy")
        self.policies: tuple[Policy, ...] = tuple(flat)
        self.name = name
        # outer.call(inner1.call, inner2.call, ..., fn, *args): built once, a C-level partial.
        self._chain = functools.partial(flat[0].call, *(p.call for p in flat[1:]))

    def call(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, T]:
        """``await pipeline.call(fn, *args, **kwargs)``: run ``fn`` through every policy."""
        return self._chain(fn, *args, **kwargs)  # type: ignore[return-value]  # cast() costs a call

    def __call__(self, fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        chain = functools.partial(self._chain, fn)

        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            return await chain(*args, **kwargs)  # type: ignore[no-any-return]

        return guarded

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(map(repr, self.policies))})"
