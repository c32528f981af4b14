"""Is the stack ready: HTTP probes of each program and HAProxy's view of each instance."""

from __future__ import annotations

import urllib.error
import urllib.request

from shop.deploy._control import HAProxyRuntime, Supervisor
from shop.deploy.plan import Plan

__all__ = ["PROBE_TIMEOUT", "http_status", "not_ready"]

PROBE_TIMEOUT = 2.0  # seconds per HTTP probe


def http_status(url: str) -> int | None:
    """The status of a GET of ``url`` (None: no answer within PROBE_TIMEOUT seconds)."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def not_ready(plan: Plan, supervisor: Supervisor, haproxy: HAProxyRuntime) -> list[str]:
    """What is not ready yet (empty: all is): simulators answer ``/healthz``, instances
    ``/readyz``, the worker runs, HAProxy sees every instance UP, the frontend answers."""
    waiting = []
    for name, url in [
        ("payments", plan.payments_url + "/healthz"),
        *((f"recommender-{j}", u + "/healthz") for j, u in enumerate(plan.recommender_urls)),
        *(
            (name, u + "/readyz")
            for name, u in zip(plan.instance_names, plan.instance_urls, strict=True)
        ),
    ]:
        if http_status(url) != 200:
            waiting.append(f"{name} ({url})")
    if plan.config.worker:
        worker = supervisor.process("worker")
        if worker.state != "RUNNING":
            waiting.append(f"worker ({worker.state})")
    if waiting:
        return waiting
    try:
        servers = haproxy.servers()
    except OSError:
        return ["haproxy (runtime socket)"]
    # DRAIN: UP with weight 0 (given no new requests, on purpose)
    waiting += [
        f"haproxy sees {n} {s.status}"
        for n, s in servers.items()
        if s.status not in ("UP", "DRAIN")
    ]
    if not waiting and http_status(plan.url + "/healthz") != 200:
        waiting.append(f"the frontend ({plan.url}/healthz)")
    return waiting
