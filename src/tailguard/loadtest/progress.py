"""What the terminal shows: live progress while a run goes, a summary when it is over.

:class:`Progress` takes each whole second as it closes (``on_second``): on a terminal it keeps
one live rich line (requests/s, errors, p50/p99 so far, time left); elsewhere (CI logs, pipes)
it prints one plain line per second; ``quiet`` shows nothing. With several worker processes,
their seconds arrive separately and are added up. rich is imported only for a terminal.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from tailguard.loadtest.histogram import Histogram
from tailguard.loadtest.results import Result, Second

__all__ = ["Progress", "summary"]


class Progress:
    """Progress of a run of ``duration`` seconds fed by ``sources`` processes; each line starts
    with ``prefix``. ``live``: a rich live line (default: when ``stream`` is a terminal)."""

    def __init__(
        self,
        *,
        duration: float,
        sources: int = 1,
        stream: TextIO | None = None,
        quiet: bool = False,
        live: bool | None = None,
        prefix: str = "",
    ) -> None:
        self.duration = duration
        self.prefix = prefix
        self.sources = sources
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.live = (not quiet) and (self.stream.isatty() if live is None else live)
        self.requests = 0
        self.errors = 0
        self.histogram = Histogram()
        self._per_t: dict[int, list[int]] = {}  # t -> [requests, errors, sources reported]
        self._live: Any = None

    def __call__(self, second: Second) -> None:
        if self.quiet:
            return
        self.requests += second.requests
        self.errors += second.errors
        self.histogram.add(second.histogram)
        entry = self._per_t.setdefault(second.t, [0, 0, 0])
        entry[0] += second.requests
        entry[1] += second.errors
        entry[2] += 1
        if entry[2] == self.sources:
            del self._per_t[second.t]
            for t in [t for t in self._per_t if t < second.t]:
                del self._per_t[t]  # a source fell silent: do not wait for it forever
            self._show(second.t, entry[0], entry[1])

    def line(self, t: int, requests: int, errors: int) -> str:
        p = self.histogram.percentiles_us([50.0, 99.0])
        share = 100.0 * self.errors / self.requests if self.requests else 0.0
        left = max(self.duration - (t + 1), 0.0)
        return (
            f"{self.prefix}{t + 1:>4}s {requests:>8,} req/s  errors {errors:,} "
            f"({share:.2f}% so far)  p50 {p[50.0] / 1000:.2f} ms  p99 {p[99.0] / 1000:.2f} ms  "
            f"{left:.0f}s left"
        )

    def _show(self, t: int, requests: int, errors: int) -> None:
        text = self.line(t, requests, errors)
        if not self.live:
            print(text, file=self.stream, flush=True)
            return
        if self._live is None:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream)
            self._live = Live(console=console, auto_refresh=False, transient=False)
            self._live.start()
        from rich.text import Text

        self._live.update(Text(text, style="bold"), refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def summary(result: Result) -> str:
    """The run in a few lines of text: totals and each action, errors by kind, SLOs, notes."""
    data = result.to_dict()
    settings = data["settings"]
    load = f"{settings['users']} users" if result.model == "closed" else f"{settings['rate']:g}/s"
    head = (
        f"{data['target']}  {result.model} model, {load}, {data['duration_s']:.1f} s, "
        f"{settings['workers']} worker(s), segment {settings['segment']}"
    )
    columns = ("requests", "errors", "rps", "p50", "p90", "p99", "p999", "max")
    rows = [("", *columns[:3], *(f"{c} ms" for c in columns[3:]))]
    for name, stats in [("total", data["totals"]), *data["actions"].items()]:
        latency = stats["latency_ms"]
        rows.append(
            (
                name if len(name) <= 40 else name[:39] + "…",
                f"{stats['requests']:,}",
                f"{stats['errors']:,}",
                f"{stats['rps']:,.1f}",
                *(f"{latency[c]:.2f}" for c in columns[3:]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [head, ""]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    kinds = data["totals"]["errors_by_kind"]
    if kinds:
        lines += ["", "errors: " + ", ".join(f"{kind} {n:,}" for kind, n in kinds.items())]
    if result.slos:
        lines += [""] + [f"SLO {outcome}" for outcome in result.slos]
    lines += [f"note: {note}" for note in result.notes]
    return "\n".join(lines) + "\n"
