"""Scenarios as plain Python: a :class:`User` class with weighted ``async`` tasks and think time.

::

    class RealisticLoadTest(User):
        wait_time = between(1, 5)                  # seconds between two tasks of one user

        @task(6)
        async def browse(self) -> None:
            await self.client.get(f"/products/{self.random.randint(1, 100)}",
                                  name="GET /products/{id}")

        @task(3)
        async def add_to_cart(self) -> None:
            await self.client.post("/cart/items", json={"product_id": 1, "quantity": 1})

Each simulated user is one instance: ``on_start`` runs once before its first task (log in, keep
a token in ``self``), then the user picks a task at random by weight, awaits it, waits
``wait_time`` seconds, and again, until the run ends; then ``on_stop``. ``self.client`` is the
HTTP client bound to the target's base URL (:class:`tailguard.loadtest.client.Client`); its
requests are recorded under the ``name`` they give, else the running task's name.

``wait_time`` is :func:`between`, :func:`constant`, a number of seconds, or any function of the
user (written like a method). ``weight`` picks among several User classes of one scenario;
``host`` is the default base URL; ``slos`` are SLO expressions checked after the run.
A class without tasks is a base for others and is never run.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import random
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from tailguard.errors import ConfigurationError

if TYPE_CHECKING:
    from tailguard.loadtest.client import Client

__all__ = ["User", "between", "constant", "load_scenario", "task"]

TaskFn = TypeVar("TaskFn", bound=Callable[..., Awaitable[Any]])
WaitTime = Callable[..., float] | float


@overload
def task(weight: TaskFn, /) -> TaskFn: ...


@overload
def task(weight: int = 1, /) -> Callable[[TaskFn], TaskFn]: ...


def task(weight: int | TaskFn = 1, /) -> TaskFn | Callable[[TaskFn], TaskFn]:
    """Mark an ``async def`` method of a :class:`User` as a task picked with ``weight``
    (a positive integer; ``@task`` alone is weight 1)."""
    if callable(weight):
        return task(1)(weight)
    if not isinstance(weight, int) or weight < 1:
        raise ConfigurationError("task weight", weight, "a positive integer")

    def mark(fn: TaskFn) -> TaskFn:
        probe: Any = fn  # iscoroutinefunction's TypeGuard would narrow fn's own type
        if not inspect.iscoroutinefunction(probe):
            raise ConfigurationError("task", getattr(fn, "__qualname__", fn), "an async def method")
        fn._tailguard_weight = weight  # type: ignore[attr-defined]
        return fn

    return mark


def between(low: float, high: float) -> Callable[[User], float]:
    """Think time drawn uniformly from ``low`` .. ``high`` seconds (the user's own random)."""
    if not 0 <= low <= high:
        raise ConfigurationError("between", (low, high), "0 <= low <= high (seconds)")

    def wait_time(user: User) -> float:
        return user.random.uniform(low, high)

    return wait_time


def constant(seconds: float) -> Callable[[User], float]:
    """The same think time, ``seconds``, after every task."""
    if not seconds >= 0:
        raise ConfigurationError("constant", seconds, "seconds >= 0")

    def wait_time(user: User) -> float:
        return float(seconds)

    return wait_time


class User:
    """A simulated user: subclass it, add ``@task`` methods. See the module docstring."""

    wait_time: ClassVar[WaitTime] = 0.0
    weight: ClassVar[int] = 1
    host: ClassVar[str | None] = None
    slos: ClassVar[Sequence[str]] = ()
    tasks: ClassVar[tuple[tuple[str, Callable[..., Awaitable[Any]], int], ...]] = ()

    client: Client
    index: int
    random: random.Random

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, tuple[str, Callable[..., Awaitable[Any]], int]] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                weight = getattr(value, "_tailguard_weight", None)
                if weight is not None:
                    found[name] = (name, value, weight)
                elif name in found:  # overridden by a plain method: no longer a task
                    del found[name]
        cls.tasks = tuple(found.values())
        if not isinstance(cls.weight, int) or cls.weight < 1:
            raise ConfigurationError(f"{cls.__name__}.weight", cls.weight, "a positive integer")

    def __init__(self, client: Client, *, index: int = 0, seed: int | None = None) -> None:
        self.client = client
        self.index = index
        self.random = random.Random(seed)
        self._cumulative: list[int] = []
        total = 0
        for _, _, weight in self.tasks:
            total += weight
            self._cumulative.append(total)

    async def on_start(self) -> None:
        """Runs once per user before its first task (its requests are named ``on_start``)."""

    async def on_stop(self) -> None:
        """Runs once per user after its last task, if the run leaves time for it."""

    def pick_task(self) -> tuple[str, Callable[[], Awaitable[Any]]]:
        """A task chosen at random by weight: its name and the bound method."""
        if not self.tasks:
            raise ConfigurationError(type(self).__name__, "no tasks", "at least one @task")
        ((name, fn, _),) = self.random.choices(self.tasks, cum_weights=self._cumulative)
        return name, fn.__get__(self)

    def think_time(self) -> float:
        """The seconds to wait after a task, from ``wait_time``."""
        wait = self.wait_time
        seconds = wait() if callable(wait) else wait
        return max(float(seconds), 0.0)


def runnable(classes: Sequence[type[User]]) -> list[type[User]]:
    """The classes that have tasks; ``ConfigurationError`` when none has."""
    found = [cls for cls in classes if cls.tasks]
    if not found:
        names = ", ".join(cls.__name__ for cls in classes) or "none"
        raise ConfigurationError("scenario", names, "a User subclass with at least one @task")
    return found


def assign(classes: Sequence[type[User]], users: range) -> list[type[User]]:
    """The class of each user number in ``users``, by class weight (smooth weighted round
    robin over all user numbers, so any slice of the numbers gets the same mix)."""
    current = [0] * len(classes)
    total = sum(cls.weight for cls in classes)
    out: list[type[User]] = []
    for number in range(users.stop):
        for k, cls in enumerate(classes):
            current[k] += cls.weight
        best = max(range(len(classes)), key=current.__getitem__)
        current[best] -= total
        if number >= users.start:
            out.append(classes[best])
    return out


def load_scenario(path: str | Path) -> list[type[User]]:
    """The runnable User classes defined in the Python file ``path``, in definition order."""
    path = Path(path)
    if not path.is_file():
        raise ConfigurationError("scenario", str(path), "an existing Python file")
    name = "tailguard_scenario_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError("scenario", str(path), "a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look classes up here
    spec.loader.exec_module(module)
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, User) and value.__module__ == name
    ]
    return runnable(classes)
