"""The running task, found without ``get_running_loop`` on Python 3.11.

On 3.11, ``asyncio.get_running_loop()`` (and so ``current_task()``) calls ``getpid()`` on every
call, a system call that costs more than the rest of a policy. We remember the last loop seen
and trust it only while it is running in this very thread (``loop._thread_id``), which is
exactly when it is this thread's running loop. 3.12 made ``current_task`` fast; we use it there.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from threading import get_ident
from typing import Any

__all__ = ["running_task"]

running_task: Callable[[], asyncio.Task[Any] | None]

if sys.version_info >= (3, 12) or not hasattr(asyncio.tasks, "_current_tasks"):
    running_task = asyncio.current_task
else:  # pragma: no cover - exercised on 3.11 only
    _current_tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] = (
        asyncio.tasks._current_tasks
    )
    _last: list[Any] = [None]

    def running_task() -> asyncio.Task[Any] | None:
        loop = _last[0]
        if loop is None or getattr(loop, "_thread_id", None) != get_ident():
            loop = _last[0] = asyncio.get_running_loop()
        return _current_tasks.get(loop)
