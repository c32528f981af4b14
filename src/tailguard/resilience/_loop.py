"""The running task, found without ``get_running_loop`` on Python 3.11.

On 3.11, ``asyncio.get_running_loop()`` (and so ``current_task()``) calls ``getpid()`` on every
call, a system call that costs more than the rest of a policy. ``current_tasks`` is asyncio's
own loop -> running task map; a caller that remembers a loop may look its task up there while
``loop._thread_id == threading.get_ident()``, which holds exactly when that loop is running in
this thread, i.e. is this thread's running loop. 3.12 made ``current_task`` fast, and there
``current_tasks`` is None.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from collections.abc import Callable
from threading import get_ident
from typing import Any

__all__ = ["current_tasks", "running_task"]

current_tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
running_task: Callable[[], asyncio.Task[Any] | None] = asyncio.current_task

_tasks_map = getattr(asyncio.tasks, "_current_tasks", None)
if sys.version_info < (3, 12) and isinstance(_tasks_map, dict):
    current_tasks = _tasks_map
    _last: list[Any] = [lambda: None]  # a weak reference to the last loop seen

    def _running_task_311() -> asyncio.Task[Any] | None:
        assert current_tasks is not None
        loop = _last[0]()
        if loop is None or getattr(loop, "_thread_id", None) != get_ident():
            loop = asyncio.get_running_loop()
            _last[0] = weakref.ref(loop)
        return current_tasks.get(loop)

    running_task = _running_task_311
