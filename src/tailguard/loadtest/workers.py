"""Runs in their own event loops: one in this process, or ``workers`` processes side by side.

::

    result = run_processes("http://127.0.0.1:8000/", workers=4, rate=20_000, duration=30)

Each worker process (multiprocessing ``spawn``) runs its own event loop, uvloop when installed,
on its share of the load: worker ``w`` of ``W`` is an execution segment (``segment.py``), so
users and arrivals split exactly. The workers start together (each signals it is ready, then
all are released at once), report each whole second as it closes (for live progress), and send
their results back; the merged result recomputes every figure from the merged histograms.

These are process entry points, so they own their event loop (``asyncio.Runner``); library
code elsewhere never starts one.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import queue as queues
import traceback
from collections.abc import Callable
from typing import Any

from tailguard.errors import ConfigurationError
from tailguard.loadtest.engine import run
from tailguard.loadtest.results import Result, Second, merge
from tailguard.loadtest.segment import Segment

__all__ = ["LOOPS", "is_url", "loop_factory", "run_blocking", "run_processes"]

LOOPS = ("auto", "uvloop", "asyncio")
_READY_WITHIN = 60.0  # seconds a worker may take to start (spawn imports everything afresh)


def loop_factory(loop: str = "auto") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to run on: ``uvloop`` (when installed, for ``auto``), else asyncio's."""
    if loop not in LOOPS:
        raise ConfigurationError("loop", loop, " or ".join(LOOPS))
    if loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if loop == "uvloop":
            raise ConfigurationError(
                "loop", loop, "uvloop installed (pip install uvloop)"
            ) from None
        return None
    return uvloop.new_event_loop


def is_url(target: str) -> bool:
    return "://" in target


def run_blocking(target: str, *, loop: str = "auto", start: Any = None, **options: Any) -> Result:
    """Run ``target`` (a URL, or the path of a scenario file) in a new event loop in this
    process; ``options`` are :func:`tailguard.loadtest.run`'s. ``start``: an event to wait for
    once everything is loaded (the worker processes' common start)."""
    subject: Any = target
    if not is_url(target):
        from tailguard.loadtest.scenario import load_scenario

        subject = load_scenario(target)
        options.setdefault("label", target)
    if start is not None:
        start()
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(run(subject, **options))


def run_processes(
    target: str,
    *,
    workers: int,
    segment: Segment | str = "1/1",
    loop: str = "auto",
    on_second: Callable[[Second], None] | None = None,
    **options: Any,
) -> Result:
    """Run ``target`` in ``workers`` processes, each on its share of (this segment of) the
    load, and merge their results. ``on_second`` sees each worker's seconds as they close."""
    seg = segment if isinstance(segment, Segment) else Segment.parse(segment)
    if not (isinstance(workers, int) and workers >= 1):
        raise ConfigurationError("workers", workers, "an integer >= 1")
    loop_factory(loop)  # a bad name fails here, not in every worker
    if workers == 1:
        return run_blocking(target, loop=loop, segment=seg, on_second=on_second, **options)
    ctx = multiprocessing.get_context("spawn")
    messages: Any = ctx.Queue()
    go = ctx.Event()
    procs = [
        ctx.Process(
            target=_worker,
            args=(k, target, loop, {**options, "segment": str(sub)}, messages, go),
            name=f"tailguard-loadtest-{k}",
            daemon=True,
        )
        for k, sub in enumerate(seg.split(workers))
    ]
    results: dict[int, Result] = {}
    try:
        for proc in procs:
            proc.start()
        ready = 0
        while ready < workers:
            kind, k, payload = _receive(messages, procs, results, _READY_WITHIN)
            if kind == "error":
                raise RuntimeError(f"worker {k}: {payload}")
            ready += kind == "ready"
        go.set()
        while len(results) < workers:
            kind, k, payload = _receive(messages, procs, results, None)
            if kind == "second" and on_second is not None:
                on_second(payload)
            elif kind == "result":
                results[k] = payload
            elif kind == "error":
                raise RuntimeError(f"worker {k}: {payload}")
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join()
    merged = merge([results[k] for k in sorted(results)])
    merged.settings.update(workers=workers, segment=str(seg))
    merged.notes = [note for k in sorted(results) for note in results[k].notes]
    return merged


def _receive(
    messages: Any, procs: list[Any], results: dict[int, Result], within: float | None
) -> tuple[str, int, Any]:
    waited = 0.0
    while True:
        try:
            message: tuple[str, int, Any] = messages.get(timeout=0.5)
            return message
        except queues.Empty:
            waited += 0.5
        for k, proc in enumerate(procs):
            if k not in results and proc.exitcode is not None:
                raise RuntimeError(f"worker {k} exited ({proc.exitcode}) without a result")
        if within is not None and waited > within:
            raise RuntimeError(f"the workers did not start within {within:g} s")


def _worker(
    index: int, target: str, loop: str, options: dict[str, Any], messages: Any, go: Any
) -> None:
    def ready() -> None:
        messages.put(("ready", index, None))
        go.wait()

    def on_second(second: Second) -> None:
        messages.put(("second", index, second))

    try:
        result = run_blocking(target, loop=loop, start=ready, on_second=on_second, **options)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            messages.put(("error", index, "".join(traceback.format_exception_only(exc)).strip()))
        raise SystemExit(1) from None
    messages.put(("result", index, result))
