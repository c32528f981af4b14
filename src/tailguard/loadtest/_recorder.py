"""Where a run's requests are counted: per action and per second, latencies as HDR counts.

Each action has the counts of the current second (a request belongs to the second it completed
in); when a second ends they are folded into the action's running :class:`Stats` and into one
:class:`Second` of the timeline, whose histogram is kept packed. Memory grows with the number of
actions, distinct latency buckets and seconds, never with the number of requests.
"""

from __future__ import annotations

from collections.abc import Callable

from tailguard.loadtest.histogram import HIGHEST_US, Histogram
from tailguard.loadtest.results import Second, Stats

__all__ = ["ActionRecorder", "Recorder", "status_kind"]

_STATUS_KINDS = {status: f"status_{status}" for status in range(100, 600)}


def status_kind(status: int) -> str | None:
    """``None`` for a success (2xx, 3xx), else the error kind ``status_<code>``."""
    if 200 <= status < 400:
        return None
    return _STATUS_KINDS.get(status) or f"status_{status}"


class ActionRecorder:
    """One action's counts: the current second's (``counts``: HDR index -> count,
    ``requests``, ``errors``) and the run's so far (``stats``, up to the last whole second)."""

    __slots__ = ("counts", "errors", "name", "requests", "stats")

    def __init__(self, name: str) -> None:
        self.name = name
        self.counts: dict[int, int] = {}
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.stats = Stats()

    def fold(self) -> None:
        stats = self.stats
        stats.requests += self.requests
        for kind, count in self.errors.items():
            stats.errors_by_kind[kind] = stats.errors_by_kind.get(kind, 0) + count
        stats.histogram.add(self.counts)
        self.counts = {}
        self.requests = 0
        self.errors = {}


class Recorder:
    """Counts of a run that started at ``start`` (seconds, on the clock the callers pass as
    ``now``). ``on_second`` is called with each whole second as it closes."""

    def __init__(self, start: float, *, on_second: Callable[[Second], None] | None = None) -> None:
        self.start = start
        self.on_second = on_second
        self.actions: dict[str, ActionRecorder] = {}
        self.totals = Stats()
        self.timeline: list[Second] = []
        self.second_end = start + 1.0

    def action(self, name: str) -> ActionRecorder:
        """The recorder of the action ``name`` (created on first use)."""
        action = self.actions.get(name)
        if action is None:
            action = self.actions[name] = ActionRecorder(name)
        return action

    def record(
        self, action: ActionRecorder, now: float, latency: float | None, kind: str | None
    ) -> None:
        """One request of ``action`` completed at ``now``: ``latency`` in seconds (``None``
        when there is none to count: the request never reached the server), ``kind`` the
        error kind or ``None`` for a success."""
        if now >= self.second_end:
            self.roll(now)
        action.requests += 1
        if kind is not None:
            action.errors[kind] = action.errors.get(kind, 0) + 1
        if latency is not None:
            us = int(latency * 1_000_000.0)
            if us < 2048:
                index = us if us > 0 else 0
            else:
                if us > HIGHEST_US:
                    us = HIGHEST_US
                bucket = (us | 2047).bit_length() - 11
                index = ((bucket + 1) << 10) + (us >> bucket) - 1024
            counts = action.counts
            counts[index] = counts.get(index, 0) + 1

    def roll(self, now: float) -> None:
        """Close every whole second that ended at or before ``now``."""
        while now >= self.second_end:
            self._close_second()
            self.second_end += 1.0

    def finish(self, now: float) -> None:
        """Close the seconds up to ``now`` and the partial one ``now`` is in."""
        self.roll(now)
        if any(a.requests for a in self.actions.values()) or now > self.second_end - 1.0:
            self._close_second()
            self.second_end += 1.0

    def _close_second(self) -> None:
        hist = Histogram()
        requests = errors = 0
        totals = self.totals
        for action in self.actions.values():
            if not action.requests:
                continue
            requests += action.requests
            for kind, count in action.errors.items():
                errors += count
                totals.errors_by_kind[kind] = totals.errors_by_kind.get(kind, 0) + count
            hist.add(action.counts)
            action.fold()
        totals.requests += requests
        totals.histogram.add(hist)
        second = Second.of(len(self.timeline), requests, errors, hist)
        self.timeline.append(second)
        if self.on_second is not None:
            self.on_second(second)
