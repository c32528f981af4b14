"""``@profile_performance``: a latency histogram always, a profile of the slow calls.

Profile before optimizing, but a profiler on every call costs more than most calls. So a
decorated function is only timed (two clock reads and a histogram observation, well under a
microsecond), until a call takes longer than ``threshold`` seconds. That arms the profiler:
the next ``profile_next`` calls run under pyinstrument, and those that are slow again are
written to ``directory`` as HTML, with a log line naming the file. ``sample_rate`` profiles a
fraction of all calls regardless, and keeps their profiles. At most ``keep`` files are kept
per function, across processes (the oldest go first), so a slow dependency cannot fill the
disk; a profile that cannot be written is logged, never raised into the call. The slow call
that arms the profiler is not itself profiled (profiling every call costs what this avoids):
the calls after it are, which catches a slowness that lasts.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from prometheus_client import CollectorRegistry

from tailguard.errors import ConfigurationError
from tailguard.observe import _names
from tailguard.observe._fast import FastHistogram
from tailguard.observe._registry import REGISTRY, family

__all__ = ["PROFILE_DURATION", "Profiled", "profile_performance"]

P = ParamSpec("P")
R = TypeVar("R")

PROFILE_DURATION = "tailguard_profiled_duration_seconds"
_log = logging.getLogger("tailguard.observe.profiling")
_perf = time.perf_counter
BATCH = 1024  # idle observations held at most before they are counted (or a scrape)


class Profiled:
    """The profiling state of one decorated function: ``armed`` calls left to profile, the
    ``files`` written (newest last)."""

    def __init__(
        self,
        name: str,
        *,
        threshold: float,
        directory: Path,
        sample_rate: float,
        profile_next: int,
        keep: int,
        interval: float,
        observe: Callable[[float], None],
    ) -> None:
        self.name = name
        self.observe = observe  # the function's histogram child
        self.threshold = threshold
        self.directory = directory
        self.sample_rate = sample_rate
        self.profile_next = profile_next
        self.keep = keep
        self.interval = interval
        self.armed = 0
        self.busy = False  # one profiled call at a time per function
        self.files: list[Path] = []
        self._seq = 0  # files of one second stay apart
        self._slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80]

    def wants_profile(self) -> bool:
        if self.busy:
            return False
        return self.armed > 0 or (self.sample_rate > 0 and random.random() < self.sample_rate)

    def begin(self) -> tuple[Any, bool] | None:
        """A started profiler for this call, and whether it was sampled; or None."""
        if not self.wants_profile():
            return None
        sampled = not self.armed
        profiler = self.start()
        return None if profiler is None else (profiler, sampled)

    def end(self, elapsed: float, begun: tuple[Any, bool] | None) -> None:
        """Record a call of ``elapsed`` seconds, and its profile if one was running."""
        self.observe(elapsed)
        if begun is not None:
            self.finish(begun[0], elapsed, begun[1])
        elif elapsed > self.threshold:
            self.slow(elapsed)

    def start(self) -> Any:
        self.busy = True
        if self.armed > 0:
            self.armed -= 1
        try:
            from pyinstrument import Profiler

            profiler = Profiler(interval=self.interval, async_mode="enabled")
            profiler.start()
        except Exception as exc:  # no pyinstrument, or another profiler owns this thread
            self.busy = False
            _log.warning("cannot profile %s: %s", self.name, exc)
            return None
        return profiler

    def finish(self, profiler: Any, elapsed: float, sampled: bool) -> None:
        """Stop the profiler, and save its profile if wanted. Never raises: a profile that
        cannot be written (a read-only disk) must not fail the call it profiled."""
        try:
            profiler.stop()
            if sampled or elapsed > self.threshold:
                self._save(profiler, elapsed)
        except Exception as exc:
            _log.warning("profile of %s not saved: %s", self.name, exc)
        finally:
            self.busy = False

    def slow(self, elapsed: float) -> None:
        """An unprofiled call was slow: arm the profiler for the next calls."""
        if self.armed == 0 and self.profile_next > 0:
            self.armed = self.profile_next
            _log.warning(
                "%s took %.3f s (threshold %.3f s): profiling the next %d call(s)",
                self.name, elapsed, self.threshold, self.profile_next,
            )  # fmt: skip

    def _save(self, profiler: Any, elapsed: float) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self._seq += 1
        name = f"{self._slug}-{stamp}-{os.getpid()}-{self._seq}-{int(elapsed * 1000)}ms.html"
        path = self.directory / name
        path.write_text(profiler.output_html(), encoding="utf-8")
        self.files.append(path)
        # ``keep`` counts every process's files of this function (workers, restarts): oldest go.
        mine = sorted(
            self.directory.glob(f"{self._slug}-[0-9]*T*.html"),
            key=lambda p: (p.stat().st_mtime, p.name),
        )
        for old in mine[: max(0, len(mine) - self.keep)]:
            old.unlink(missing_ok=True)
        self.files = [p for p in self.files if p.exists()]
        _log.warning("profile of %s (%.3f s) written to %s", self.name, elapsed, path)


def profile_performance(
    threshold: float = 0.5,
    *,
    directory: str | Path = "profiles",
    sample_rate: float = 0.0,
    profile_next: int = 3,
    keep: int = 20,
    interval: float = 0.001,
    name: str | None = None,
    registry: CollectorRegistry | None = None,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Time every call into ``tailguard_profiled_duration_seconds{name}`` and profile slow ones.

    ``threshold`` (seconds): a call slower than this arms the profiler for the next
    ``profile_next`` calls; profiled calls slower than it are saved to ``directory``.
    ``sample_rate`` (0..1): the fraction of calls profiled and saved whatever their time.
    ``keep``: the most profile files kept per function. ``interval`` (seconds): the
    profiler's sampling interval. The decorated function's state is ``fn.profiled``.
    """
    if not threshold > 0:
        raise ConfigurationError("profile_performance.threshold", threshold, "seconds > 0")
    if not 0.0 <= sample_rate <= 1.0:
        raise ConfigurationError("profile_performance.sample_rate", sample_rate, "0 <= rate <= 1")
    if keep < 1 or profile_next < 0:
        raise ConfigurationError(
            "profile_performance.keep/profile_next", (keep, profile_next), "keep >= 1, next >= 0"
        )
    reg = registry if registry is not None else REGISTRY
    histogram = family(
        reg,
        PROFILE_DURATION,
        lambda r: FastHistogram(
            PROFILE_DURATION,
            "Latency of @profile_performance functions, in seconds.",
            ["name"],
            buckets=_names.LATENCY_BUCKETS,
            registry=r,
        ),
    )

    def decorate(fn: Callable[P, R]) -> Callable[P, R]:
        label = name if name is not None else f"{fn.__module__}.{fn.__qualname__}"
        state = Profiled(
            label, threshold=threshold, directory=Path(directory), sample_rate=sample_rate,
            profile_next=profile_next, keep=keep, interval=interval,
            observe=histogram.labels(label).observe,
        )  # fmt: skip
        sampling = sample_rate > 0.0
        # An unprofiled call that was fast is appended to the histogram's pending
        # observations, counted at the next scrape: one C call. Everything else (armed,
        # sampling, slow) goes through the state.
        child = histogram.labels(label)
        pending, drain = child.pending, child.drain

        if inspect.iscoroutinefunction(fn):
            afn = cast(Callable[P, Awaitable[Any]], fn)

            async def profiled_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                begun = state.begin()
                start = _perf()
                try:
                    return await afn(*args, **kwargs)
                finally:
                    state.end(_perf() - start, begun)

            @functools.wraps(fn)
            async def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                if state.armed or sampling:
                    return await profiled_async(*args, **kwargs)
                start = _perf()
                try:
                    return await afn(*args, **kwargs)
                finally:
                    elapsed = _perf() - start
                    if elapsed <= threshold:
                        pending.append(elapsed)
                        if len(pending) >= BATCH:
                            drain()
                    else:
                        state.end(elapsed, None)

            run_async.profiled = state  # type: ignore[attr-defined]
            return cast(Callable[P, R], run_async)

        def profiled(*args: P.args, **kwargs: P.kwargs) -> R:
            begun = state.begin()
            start = _perf()
            try:
                return fn(*args, **kwargs)
            finally:
                state.end(_perf() - start, begun)

        # The same lines as run_async's on purpose: a function shared by the two would be one
        # more call on every call, which is what this path exists to avoid.
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if state.armed or sampling:
                return profiled(*args, **kwargs)
            start = _perf()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = _perf() - start
                if elapsed <= threshold:
                    pending.append(elapsed)
                    if len(pending) >= BATCH:
                        drain()
                else:
                    state.end(elapsed, None)

        run.profiled = state  # type: ignore[attr-defined]
        return run

    return decorate
