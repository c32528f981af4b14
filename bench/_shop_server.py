"""Server processes for ``bench/shop.py``: the shop under uvicorn, and its simulated dependencies.

``python -m bench._shop_server shop [--no-prepare]`` builds the shop with
``shop.entrypoints.app.create_app(load_settings())`` (the ``SHOP_*`` environment the parent
set), binds ``127.0.0.1:0``, prints ``PORT <n> <loop>`` on stdout and serves it with uvicorn,
one worker, lifespan on (the shop's parts are built there, and ``prepare`` migrates and seeds
an empty database), access log off, as ``shop serve`` would.

``python -m bench._shop_server simulators REPLICAS MEDIAN_MS`` serves ``REPLICAS`` recommender
replicas with a constant latency of ``MEDIAN_MS`` and one payment gateway (its default
behaviour), each on a free loopback port of one event loop, then prints
``URLS <recommender,...> <payments>``.

Both stop on SIGTERM, SIGINT or the end of their stdin: the parent holds the other end of that
pipe, so a server never outlives the benchmark that started it, even one killed outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from bench._http import server_loop


def _orphan_guard(stop: Any) -> None:
    """Call ``stop()`` when stdin ends (the parent is gone or done), then exit for sure."""

    def guard() -> None:
        # os.read on the descriptor, not sys.stdin: a thread blocked in the buffered reader
        # holds its lock, which aborts the interpreter's shutdown after a SIGTERM.
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        stop()
        time.sleep(5)
        os._exit(1)

    threading.Thread(target=guard, name="orphan-guard", daemon=True).start()


def serve_shop(prepare: bool) -> None:
    import uvicorn

    from shop.config import load_settings
    from shop.entrypoints.app import create_app

    app = create_app(load_settings(), prepare=prepare)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    loop = server_loop()
    config = uvicorn.Config(
        app,
        http="httptools",
        loop=loop,
        lifespan="on",
        access_log=False,
        log_level="warning",
        workers=1,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    _orphan_guard(stop)
    print(f"PORT {port} {loop}", flush=True)
    server.run(sockets=[sock])


async def _simulators(replicas: int, median_ms: float) -> None:
    from shop.simulators import (
        Behaviour,
        create_payments_app,
        create_recommendations_app,
        serve_in_background,
    )

    latency = median_ms / 1000
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    _orphan_guard(lambda: loop.call_soon_threadsafe(done.set))
    async with contextlib.AsyncExitStack() as stack:
        recommenders = []
        for i in range(replicas):
            app = create_recommendations_app(
                Behaviour(latency_median=latency, latency_p99=latency),
                seed=i,
                name=f"recommender-{i + 1}",
            )
            recommenders.append(await stack.enter_async_context(await serve_in_background(app)))
        pay_app = create_payments_app(Behaviour(latency_median=0.010, latency_p99=0.040))
        payments = await stack.enter_async_context(await serve_in_background(pay_app))
        print(f"URLS {','.join(s.url for s in recommenders)} {payments.url}", flush=True)
        await done.wait()


def serve_simulators(replicas: int, median_ms: float) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(_simulators(replicas, median_ms))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_simulators(replicas, median_ms))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["shop"] and args[1:] in ([], ["--no-prepare"]):
        serve_shop(prepare=args[1:] != ["--no-prepare"])
    elif args[:1] == ["simulators"] and len(args) == 3:
        serve_simulators(int(args[1]), float(args[2]))
    else:
        sys.exit(
            "usage: python -m bench._shop_server shop [--no-prepare] | simulators REPLICAS MEDIAN_MS"
        )
