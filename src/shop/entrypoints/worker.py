"""``shop worker``: the event worker as its own process, on the Redis stream.

SIGTERM or SIGINT lets the delivery in hand finish and acknowledges what was applied; what was
read and not applied stays pending, and another worker claims it after SHOP_EVENTS_CLAIM_IDLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from shop.bootstrap import bootstrap_worker
from shop.config import Settings

__all__ = ["run_worker"]


async def run_worker(settings: Settings, *, consumer: str | None = None) -> int:
    """Consume until a stop signal; the exit code."""
    async with bootstrap_worker(settings, consumer=consumer) as worker:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, worker.stop)
        print(
            f"shop worker {worker.consumer}: consuming {getattr(worker.stream, 'stream', '?')} "
            f"(claim after {worker.claim_idle:g} s idle, dead after "
            f"{worker.max_deliveries} deliveries)",
            flush=True,
        )
        await worker.run()
        s = worker.stats
        print(
            f"shop worker {worker.consumer}: stopped; applied {s.applied}, failed {s.failed}, "
            f"claimed {s.claimed}, dead-lettered {s.dead}",
            flush=True,
        )
    return 0
