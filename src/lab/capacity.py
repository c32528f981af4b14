"""Step 4 of the demo: a short concurrency sweep of the shop, a Universal Scalability Law fit,
and the guide's capacity plan for twice the measured peak, from the measured figures."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.experiments.cache import read
from lab.load import closed
from lab.stack import Lab

__all__ = ["sweep_and_plan"]

LEVELS = (1, 2, 4, 8, 16, 32)
SECONDS = 1.0


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sweep_and_plan(lab: Lab, out: Path, *, log: Callable[[str], None]) -> dict[str, Any]:
    """Sweep the catalogue and profile reads over LEVELS of concurrency; fit; plan."""
    from tailguard.capacity import fit_usl, plan
    from tailguard.capacity.plot import plot_usl

    shop = await lab.shop("capacity")
    try:
        points = []
        for users in LEVELS:
            cpu_before = shop.process.cpu_seconds()
            result = await closed(shop, read, users=users, duration=SECONDS, user_ids=range(1, 201))
            cpu = shop.process.cpu_seconds() - cpu_before
            numbers = result.totals.histogram.figures()
            points.append(
                {
                    "concurrency": users,
                    "throughput": round(result.rps, 1),
                    "p50_ms": float(numbers.get("p50", 0.0)),
                    "p99_ms": float(numbers.get("p99", 0.0)),
                    "cpu_per_request": cpu / max(result.totals.requests, 1),
                }
            )
            log(
                f"demo: sweep: {users:3} users: {result.rps:8.0f} requests/s, "
                f"p99 {numbers.get('p99')} ms"
            )
        rss_mb = _rss_mb(shop.process.popen.pid)
    finally:
        await lab.stop(shop)
    fit = fit_usl([p["concurrency"] for p in points], [p["throughput"] for p in points])
    plot = out / "usl.png"
    plot_usl(fit, [p["concurrency"] for p in points], [p["throughput"] for p in points], plot)
    best = max(points, key=lambda p: p["throughput"])
    peak = fit.peak_throughput if fit.peak_throughput != float("inf") else best["throughput"]
    # Memory per request in flight: the process's resident memory over the concurrency it
    # served at its best point (an upper bound: most of it is the process, not the requests).
    memory_mb = rss_mb / max(best["concurrency"], 1)
    sized = plan(
        rps=2 * peak,
        latency_ms=max(best["p50_ms"], 0.001),
        cpu_per_request=max(best["cpu_per_request"], 1e-6),
        memory_mb=memory_mb,
    )
    summary = (
        f"USL fit over {len(points)} levels: sigma={fit.sigma:.4f} kappa={fit.kappa:.6f} "
        f"lambda={fit.lambda_:.1f}/s, peak {peak:.0f} requests/s at N*={fit.peak_concurrency:.1f} "
        f"(r2={fit.r_squared:.3f}).\n"
        f"Plan for 2x the peak ({2 * peak:.0f} requests/s; p50 {best['p50_ms']:.1f} ms, "
        f"{best['cpu_per_request'] * 1000:.3f} CPU-ms and {memory_mb:.1f} MB per request in "
        f"flight, measured): {sized.expected.to_dict()}"
    )
    log("demo: " + summary.replace("\n", "\ndemo: "))
    return {
        "sweep": points,
        "usl": fit.to_dict(),
        "plan": sized.to_dict(),
        "summary": summary,
        "plot": str(plot),
        "cpus": os.cpu_count(),
    }
